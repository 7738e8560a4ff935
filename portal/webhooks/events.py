"""What each event tells: one function per event type, called by the domain in the transaction
of the change. The ``data`` objects name things by the numbers buyers know (certificate, order,
contract and invoice numbers), never by row ids, and carry amounts as decimal strings in CNY."""

from portal.core import tasks
from portal.core.i18n import absolute_url
from portal.webhooks.models import EventType
from portal.webhooks.services import emit


def _money(amount) -> dict:
    return {"amount": f"{amount:.2f}", "currency": "CNY"}


def _certificate_url(certificate) -> str:
    return absolute_url("certificates.show", number=certificate.number)


def _emit(organisation_id, event_type, data) -> None:
    """``data`` is a function: it is only built when an endpoint wants the event."""
    if emit(organisation_id, event_type, data) is not None:
        tasks.soon("webhooks.deliver")


def certificate_issued(certificate) -> None:
    _emit(
        certificate.organisation_id,
        EventType.CERTIFICATE_ISSUED,
        lambda: {
            "certificate": {
                "number": certificate.number,
                "quantity": certificate.quantity,
                "purpose": certificate.purpose,
                "beneficiary": certificate.beneficiary,
                "source": certificate.source,
                "url": _certificate_url(certificate),
            }
        },
    )


def certificate_revoked(certificate) -> None:
    _emit(
        certificate.organisation_id,
        EventType.CERTIFICATE_REVOKED,
        lambda: {
            "certificate": {
                "number": certificate.number,
                "reason": certificate.revoked_reason,
                "revoked_at": certificate.revoked_at.isoformat().replace("+00:00", "Z"),
                "url": _certificate_url(certificate),
            }
        },
    )


def order_fulfilled(order, certificate) -> None:
    _emit(
        order.organisation_id,
        EventType.ORDER_FULFILLED,
        lambda: {
            "order": {
                "id": order.public_id,
                "quantity": order.quantity,
                "amount": _money(order.amount),
                "certificate": {"number": certificate.number, "url": _certificate_url(certificate)},
            }
        },
    )


def contract_delivered(contract, tranche, quantity, mode, certificate) -> None:
    _emit(
        contract.organisation_id,
        EventType.CONTRACT_DELIVERED,
        lambda: {
            "contract": contract.number,
            "tranche": tranche.seq,
            "quantity": quantity,
            "mode": str(mode),
            "certificate": None
            if certificate is None
            else {"number": certificate.number, "url": _certificate_url(certificate)},
        },
    )


def _invoice(invoice, contract) -> dict:
    return {
        "number": invoice.number,
        "contract": contract.number,
        "quantity": invoice.quantity,
        "amount": _money(invoice.amount),
        "issued_on": invoice.issued_on.isoformat(),
        "due_on": invoice.due_on.isoformat(),
        "status": invoice.status,
    }


def invoice_issued(invoice, contract) -> None:
    _emit(invoice.organisation_id, EventType.INVOICE_ISSUED, lambda: {"invoice": _invoice(invoice, contract)})


def invoice_paid(invoice) -> None:
    _emit(
        invoice.organisation_id,
        EventType.INVOICE_PAID,
        lambda: {"invoice": _invoice(invoice, invoice.contract)},
    )


def registry_confirmed(instruction, certificate) -> None:
    """The registry confirmed the retirement of one batch's serials of ``certificate``."""
    _emit(
        certificate.organisation_id,
        EventType.REGISTRY_CONFIRMED,
        lambda: {
            "certificate": {"number": certificate.number, "url": _certificate_url(certificate)},
            "registry": {
                "name": str(instruction.registry_name),
                "batch_code": instruction.batch.code,
                "quantity": instruction.quantity,
                "reference": instruction.registry_reference,
                "date": instruction.registry_date.isoformat(),
                "serials": instruction.registry_serials,
            },
        },
    )
