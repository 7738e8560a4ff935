"""``/api/v1/contracts…`` on the API blueprint: sales keys draft, sign and deliver; buyer keys
read their own contracts, staff keys read all."""

from flask import g, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select

from portal.access import may
from portal.api.auth import require_key
from portal.api.views import api_error, bp, json_object, money
from portal.buyers.models import Organisation
from portal.certificates.services import certificate_url
from portal.contracts import services
from portal.contracts.models import Contract, ContractStatus, Delivery, Invoice
from portal.core.errors import ServiceError
from portal.core.idempotency import request_digest
from portal.extensions import db


def invoice_json(invoice: Invoice) -> dict:
    return {
        "contract": invoice.contract.number,
        "number": invoice.number,
        "status": invoice.status,
        "quantity": invoice.quantity,
        "unit_price": money(invoice.unit_price),
        "amount": money(invoice.amount),
        "paid": money(invoice.paid_amount),
        "issued_on": invoice.issued_on.isoformat(),
        "due_on": invoice.due_on.isoformat(),
        "overdue": invoice.is_overdue(services.beijing_today()),
        "payments": [
            {
                "method": p.method,
                "amount": money(p.amount),
                "received_on": p.received_on.isoformat(),
                "reference": p.reference,
            }
            for p in invoice.payments
        ],
        "pdf": url_for("contracts.invoice_pdf", number=invoice.number, _external=True),
    }


def delivery_json(delivery: Delivery) -> dict:
    certificate = delivery.certificate
    return {
        "tranche": delivery.tranche.seq,
        "quantity": delivery.quantity,
        "mode": delivery.mode,
        "from_inventory": delivery.from_inventory,
        "delivered_at": delivery.created_at.isoformat(),
        "blocks": [{"batch_code": line.batch.code, "quantity": line.quantity} for line in delivery.lines],
        "certificate": None
        if certificate is None
        else {"number": certificate.number, "url": certificate_url(certificate)},
        "invoice": invoice_json(delivery.invoice) if delivery.invoice is not None else None,
    }


def contract_json(contract: Contract, *, full: bool = True) -> dict:
    terms = services.terms_of(contract).as_json()
    covers = services.cover(contract)
    document = {
        "number": contract.number,
        "status": contract.status,
        "version": contract.version,
        "buyer": {"uscc": contract.organisation.uscc, "name": contract.organisation.name_zh},
        "owner": contract.owner.email,
        **{k: v for k, v in terms.items() if k not in ("tranches", "price_per_t")},
        "price_per_t": money(contract.price_per_t),
        "signed_at": contract.signed_at.isoformat() if contract.signed_at else None,
        "termination_reason": contract.termination_reason or None,
        "contracted": contract.total_quantity,
        "reserved": sum(c.reserved for c in covers),
        "delivered": contract.delivered,
        "uncovered": sum(c.uncovered for c in covers),
        "tranches": [
            {
                "n": c.seq,
                "due": c.tranche.due.isoformat(),
                "contracted": c.tranche.quantity,
                "reserved": c.reserved,
                "delivered": c.tranche.delivered,
                "uncovered": c.uncovered,
                "late": c.late,
                "price_per_t": money(services.price_for(contract, c.tranche.due)),
                "invoiced": money(c.invoiced),
                "paid": money(c.paid),
            }
            for c in covers
        ],
    }
    if full:
        document["deliveries"] = [delivery_json(d) for d in services.deliveries_of(contract)]
    return document


def _error(exc: ServiceError):
    return api_error(exc.status, exc.code, exc.message)


def _visible(number) -> Contract | None:
    """The contract if the caller may see it: staff any, a buyer its own signed ones."""
    contract = services.find(number)
    if contract is None:
        return None
    if not may(g.principal, "view", contract):
        return None
    return contract


def _replayed(created: bool) -> dict:
    return {} if created else {"Idempotent-Replayed": "true"}


def _not_found():
    return api_error(404, "unknown_contract", _("There is no such contract."))


@bp.post("/contracts")
@require_key("contracts.manage")
def create_contract():
    body = json_object()
    uscc = body.get("org_uscc")
    organisation = (
        db.session.scalar(select(Organisation).filter_by(uscc=uscc.strip().upper()))
        if isinstance(uscc, str) and len(uscc) <= 32 and uscc.isascii() and uscc.strip().isalnum()
        else None
    )
    if organisation is None:
        return api_error(400, "unknown_organisation", _("There is no organisation with that code."))
    key = request.headers.get("Idempotency-Key")
    try:
        contract, created = services.create_draft(
            organisation,
            body,
            owner=g.principal.user,
            actor=g.principal.actor,
            idempotency_key=key,
            digest=request_digest(body) if key is not None else None,
        )
    except ServiceError as exc:
        return _error(exc)
    return {"contract": contract_json(contract)}, 201, _replayed(created)


@bp.post("/contracts/<number>/sign")
@require_key("contracts.manage")
def sign_contract(number):
    contract = services.find(number)
    if contract is None:
        return _not_found()
    try:
        services.sign(contract, actor=g.principal.actor)
    except ServiceError as exc:
        return _error(exc)
    return {"contract": contract_json(contract)}


@bp.post("/contracts/<number>/tranches/<int:n>/deliver")
@require_key("contracts.manage")
def deliver_tranche(number, n):
    contract = services.find(number)
    if contract is None:
        return _not_found()
    body = json_object() if request.content_length else {}
    # No quantity: what is left of the tranche, read once the contract is locked. A null is
    # not a quantity (refused as any other).
    quantity = (body["quantity"] if body["quantity"] is not None else "") if "quantity" in body else None
    key = request.headers.get("Idempotency-Key")
    try:
        delivery, created = services.deliver(
            contract,
            n,
            quantity,
            actor=g.principal.actor,
            idempotency_key=key,
            digest=request_digest({**body, "tranche": n}) if key is not None else None,
            mode=body.get("delivery"),
            beneficiary=body.get("beneficiary"),
        )
    except ServiceError as exc:
        return _error(exc)
    document = {"delivery": delivery_json(delivery), "contract": contract_json(contract, full=False)}
    return document, 201, _replayed(created)


@bp.get("/contracts")
@require_key("contracts.read_own", "contracts.read_all")
def list_contracts():
    # A status no contract can have is refused: answering with none (or, for a buyer, with all)
    # would hide the mistake.
    status = request.args.get("status", "").strip()
    if status and status not in set(ContractStatus):
        statuses = ", ".join(s.value for s in ContractStatus)
        return api_error(400, "invalid_status", _("status is one of %(statuses)s.", statuses=statuses))
    if not may(g.principal, "contracts.read_all"):
        contracts = [
            c for c in services.contracts_of(g.principal.organisation) if c.status == status or not status
        ]
    else:
        contracts = services.all_contracts(status=status or None)
    return {"items": [contract_json(c, full=False) for c in contracts]}


@bp.get("/contracts/<number>")
@require_key("contracts.read_own", "contracts.read_all")
def get_contract(number):
    contract = _visible(number)
    if contract is None:
        return _not_found()
    return {"contract": contract_json(contract)}


# --- invoices (reading, recording a bank transfer, paying online; see docs/api.md) -------------


def _visible_invoice(number) -> Invoice | None:
    invoice = services.find_invoice(number)
    if invoice is None:
        return None
    if not may(g.principal, "view", invoice):
        return None
    return invoice


def _no_invoice():
    return api_error(404, "unknown_invoice", _("There is no such invoice."))


@bp.get("/invoices/<number>")
@require_key("contracts.read_own", "contracts.read_all")
def get_invoice(number):
    invoice = _visible_invoice(number)
    if invoice is None:
        return _no_invoice()
    return {"invoice": invoice_json(invoice)}


@bp.post("/invoices/<number>/payments")
@require_key("invoices.record_payment")
def record_invoice_payment(number):
    """A bank transfer received: ``{"amount": "1234.50", "received_on": "YYYY-MM-DD", "reference"}``."""
    invoice = services.find_invoice(number)
    if invoice is None:
        return _no_invoice()
    body = json_object()
    try:
        services.record_payment(
            invoice,
            body.get("amount"),
            body.get("received_on"),
            body.get("reference"),
            actor=g.principal.actor,
        )
    except ServiceError as exc:
        return _error(exc)
    return {"invoice": invoice_json(invoice)}, 201


@bp.post("/invoices/<number>/pay")
@require_key("invoices.pay")
def pay_invoice_online(number):
    """A PaymentIntent for what is outstanding; the invoice is paid when Stripe's signed webhook
    says so."""
    invoice = _visible_invoice(number)
    if invoice is None:
        return _no_invoice()
    try:
        services.start_online_payment(invoice)
    except ServiceError as exc:
        return _error(exc)
    payment = {"payment_intent": invoice.payment_intent_id, "client_secret": invoice.client_secret}
    return {"invoice": invoice_json(invoice), "payment": payment}, 201
