"""Delivering a tranche: what a delivery would do (``check_delivery``, for the confirmation), and
doing it (``deliver``): from the reserve, topped up from inventory when short, to the buyer's
holding or retired with a certificate; each delivery issues its invoice."""

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from flask_babel import gettext as _
from sqlalchemy import select

from portal.audit import services as audit
from portal.buyers import policy
from portal.buyers import services as buyers
from portal.certificates import services as certificates
from portal.certificates.models import Purpose, Source
from portal.contracts.common import EARLY_DELIVERY_DAYS, ContractError, _check_key, _locked, _notify, _replay
from portal.contracts.invoices import _invoice
from portal.contracts.models import Contract, ContractStatus, Delivery, DeliveryLine, DeliveryMode, Tranche
from portal.contracts.reserve import _reserve_account, _top_up, reserved
from portal.contracts.terms import MAX_TRANCHES, _text, price_for
from portal.core.database import checkpoint
from portal.core.i18n import absolute_url, date_text, localized
from portal.core.numbers import whole
from portal.extensions import db
from portal.ledger import services as ledger
from portal.ledger.errors import LedgerError
from portal.ledger.models import MAX_QUANTITY
from portal.timeutil import beijing_today
from portal.webhooks import events as webhook_events


def deliver(
    contract: Contract,
    seq,
    quantity,
    *,
    actor: str,
    today: date | None = None,
    idempotency_key: str | None = None,
    digest: str | None = None,
    mode: str | None = None,
    beneficiary: str | None = None,
) -> tuple[Delivery, bool]:
    """Deliver ``quantity`` t of tranche ``seq`` (1-based, in due order; None: what is left of
    it, read under the contract's lock): from the reserve, topped up from inventory when short; to the buyer's holding or retired with a certificate (the
    contract's delivery mode and beneficiary unless this delivery names others, e.g. one
    tranche retired for an event). Issues the delivery's invoice. Commits the top-up, if one was
    needed, before delivering. Returns the delivery and whether it happened now (False:
    replayed for its Idempotency-Key)."""
    today = today or beijing_today()
    _check_key(idempotency_key)
    mode, beneficiary = _delivery_terms(contract, mode, beneficiary)
    contract = _locked(contract)
    if (found := _delivered_for_key(contract, idempotency_key)) is not None:
        return _replay(found, digest)
    wanted = quantity
    tranche, quantity = _deliverable(contract, seq, wanted, today)
    from_inventory = 0
    # Top the reserve up first, in a transaction of its own. Another delivery of this contract
    # may use the new stock before ours runs, so check again after every top-up (a few rounds).
    for _round in range(3):
        short = quantity - reserved(contract)
        if short <= 0:
            break
        with db.session.begin_nested():  # a partial top-up is undone with the refusal
            got = _top_up(contract, actor=actor, limit=short, for_delivery=True)
            if got < short:
                raise ContractError(
                    "insufficient_stock",
                    _(
                        "Only %(n)s t matching the contract's preferences can be delivered now.",
                        n=quantity - short + got,
                    ),
                    status=409,
                )
        from_inventory += short
        checkpoint()  # the top-up stands; the delivery is the next transaction
        contract = _locked(contract)
        if (found := _delivered_for_key(contract, idempotency_key)) is not None:
            return _replay(found, digest)  # a repeat of this request went first meanwhile
        tranche, quantity = _deliverable(contract, seq, wanted, today)
    else:
        raise ContractError("busy", _("Please try again."), status=503)

    try:
        return _hand_over(
            contract,
            tranche,
            quantity,
            from_inventory,
            actor,
            today,
            idempotency_key,
            digest,
            mode,
            beneficiary,
        )
    except LedgerError as exc:
        raise ContractError(exc.code, exc.message, status=409) from None


def _delivery_terms(contract: Contract, mode, beneficiary) -> tuple[str, str]:
    """This delivery's mode (the contract's unless it names one) and beneficiary, checked."""
    if mode is None or mode == "":
        mode = contract.delivery_mode
    if not isinstance(mode, str) or mode not in {m.value for m in DeliveryMode}:
        raise ContractError(
            "invalid_delivery", _("Delivery must be to the holding or retired."), field="delivery"
        )
    beneficiary = _text(
        beneficiary,
        field="beneficiary",
        label=_("Beneficiary"),
        max_length=certificates.BENEFICIARY_MAX,
        required=False,
    )
    return mode, beneficiary


@dataclass(frozen=True)
class DeliveryPlan:
    """What a delivery will do, as the confirmation shows it."""

    tranche: Tranche
    quantity: int
    mode: str
    #: Who the certificate names (retired deliveries).
    beneficiary: str
    #: Of the quantity, what the reserve holds now (the rest is taken from inventory).
    from_reserve: int
    unit_price: Decimal
    amount: Decimal
    due_on: date


def check_delivery(
    contract: Contract, seq, quantity, *, mode=None, beneficiary=None, today: date | None = None
) -> DeliveryPlan:
    """What ``deliver`` would do, refused the same way, changing nothing (the contract page asks
    for confirmation with it; ``deliver`` checks again under the contract's lock)."""
    today = today or beijing_today()
    mode, beneficiary = _delivery_terms(contract, mode, beneficiary)
    tranche, n = _deliverable(contract, seq, quantity or None, today)
    unit = price_for(contract, tranche.due)
    return DeliveryPlan(
        tranche=tranche,
        quantity=n,
        mode=mode,
        beneficiary=beneficiary or contract.beneficiary or contract.organisation.name_zh,
        from_reserve=min(n, reserved(contract)),
        unit_price=unit,
        amount=unit * n,
        due_on=today + timedelta(days=contract.payment_days),
    )


def _hand_over(
    contract, tranche, quantity, from_inventory, actor, today, idempotency_key, digest, mode, beneficiary
):
    organisation = contract.organisation
    source = _reserve_account(contract)
    certificate = None
    if mode == DeliveryMode.RETIRE:
        certificate = certificates.retire_into_certificate(
            source,
            organisation,
            quantity,
            beneficiary=beneficiary or contract.beneficiary or organisation.name_zh,
            purpose=Purpose.VOLUNTARY,
            # Public: the certificate says it came from an offtake contract, never which one or
            # its title (the buyer's commercial terms). The link stays in source_ref and the
            # delivery, for the buyer's and the staff's own pages.
            source=Source.CONTRACT,
            source_ref=contract.number,
            actor=actor,
        )
        movement_id = certificate.movement_id
        per_batch = defaultdict(int)
        for block in certificate.blocks:
            per_batch[block.batch_id] += block.serial_end - block.serial_start + 1
    else:
        movement = ledger.transfer(
            quantity,
            source=source,
            destination=buyers.holding_account(organisation),
            reference=f"contract:{contract.number}:deliver:{tranche.seq}",
            actor=actor,
        )
        movement_id = movement.id
        per_batch = defaultdict(int)
        for r in movement.ranges:
            per_batch[r.batch_id] += r.quantity
    delivery = Delivery(
        contract_id=contract.id,
        tranche_id=tranche.id,
        quantity=quantity,
        mode=mode,
        from_inventory=from_inventory,
        movement_id=movement_id,
        certificate_id=certificate.id if certificate else None,
        actor=actor,
        idempotency_key=idempotency_key,
        request_digest=digest,
    )
    delivery.lines = [DeliveryLine(batch_id=b, quantity=q) for b, q in sorted(per_batch.items())]
    db.session.add(delivery)
    tranche.delivered += quantity
    db.session.flush()
    invoice = _invoice(contract, delivery, tranche, today)
    audit.record(
        actor,
        "contract.deliver",
        "contract",
        contract.number,
        after={
            "tranche": tranche.seq,
            "quantity": quantity,
            "mode": mode,
            "from_inventory": from_inventory,
            "movement": movement_id,
            "certificate": certificate.number if certificate else None,
            "invoice": invoice.number,
        },
    )
    webhook_events.contract_delivered(contract, tranche, quantity, mode, certificate)
    webhook_events.invoice_issued(invoice, contract)

    def delivered(for_staff: bool):
        if certificate:
            what = _(
                "retired for %(beneficiary)s (certificate %(cert)s)",
                beneficiary=certificate.beneficiary,
                cert=certificate.number,
            )
        else:
            what = _("moved to the buyer's holding") if for_staff else _("moved to your holding")
        facts = {
            "n": quantity,
            "seq": tranche.seq,
            "number": contract.number,
            "what": what,
            "invoice": invoice.number,
            "amount": invoice.amount,
            "due": date_text(invoice.due_on),
        }
        return (
            _(
                "Delivery under contract %(number)s and invoice %(invoice)s",
                number=contract.number,
                invoice=invoice.number,
            ),
            _(
                "%(n)s t of tranche %(seq)s of contract %(number)s with %(buyer)s were %(what)s.\n\n"
                "Invoice %(invoice)s: %(amount)s yuan, due on %(due)s.\n%(url)s\n",
                buyer=localized(organisation, "name"),
                url=absolute_url("contracts.staff_invoice", number=invoice.number),
                **facts,
            )
            if for_staff
            else _(
                "%(n)s t of tranche %(seq)s of contract %(number)s were %(what)s.\n\n"
                "Invoice %(invoice)s: %(amount)s yuan, due on %(due)s.\n%(url)s\n",
                url=absolute_url("contracts.buyer_invoice", number=invoice.number),
                **facts,
            ),
        )

    _notify(contract, delivered)
    return delivery, True


def _delivered_for_key(contract: Contract, key: str | None) -> Delivery | None:
    if key is None:
        return None
    return db.session.scalar(select(Delivery).filter_by(contract_id=contract.id, idempotency_key=key))


def _deliverable(contract: Contract, seq, quantity, today: date) -> tuple[Tranche, int]:
    """The tranche to deliver and the tonnes (``quantity``, or what is left of the tranche when
    it is None), checked; the caller holds the contract's lock, so what is left is current."""
    if contract.status != ContractStatus.ACTIVE:
        raise ContractError("not_active", _("Only an active contract delivers."), status=409)
    refusal = policy.purchase_refusal(contract.organisation, 0)  # suspended or barred
    if refusal:
        raise ContractError("buyer_refused", refusal, status=403)
    number = whole(seq, 1, MAX_TRANCHES)
    tranche = next((t for t in contract.tranches if t.seq == number), None)
    if tranche is None:
        raise ContractError("unknown_tranche", _("There is no such tranche."), status=404)
    if tranche.remaining == 0:
        raise ContractError(
            "tranche_delivered",
            _("Tranche %(seq)s is already delivered in full.", seq=tranche.seq),
            status=409,
        )
    n = tranche.remaining if quantity is None else whole(quantity, 1, MAX_QUANTITY)
    if n is None:
        raise ContractError(
            "invalid_quantity",
            _("The quantity must be a whole number of tonnes above zero."),
            field="quantity",
        )
    if n > tranche.remaining:
        raise ContractError(
            "beyond_due",
            _("Tranche %(seq)s has %(n)s t left to deliver.", seq=tranche.seq, n=tranche.remaining),
            status=409,
            field="quantity",
        )
    if tranche.due > today + timedelta(days=EARLY_DELIVERY_DAYS):
        raise ContractError(
            "not_due_yet",
            _(
                "Tranche %(seq)s is due on %(due)s; it can be delivered from %(days)s days before.",
                seq=tranche.seq,
                due=date_text(tranche.due),
                days=EARLY_DELIVERY_DAYS,
            ),
            status=409,
        )
    return tranche, n
