"""Requests for quote: sent by a buyer, answered, assigned, declined or converted by sales staff.

Every change is audited (subject ``rfq``, the request's number) and told by mail to whoever must
act next: a new request or a buyer's reply to the sales team (the assigned salesperson, or all of
it while nobody is), staff answers to the buyer's contact and the user who sent it. Mail goes to
the outbox in the same transaction, so a refused or rolled-back change sends nothing.

Converting makes the offtake contract draft with :func:`portal.contracts.services.create_draft`
(the one way a contract is built), prefilled from the request; the request then names the draft
and :func:`request_for_contract` finds the request from the draft. A request is locked while it
changes, so two staff converting at once make one draft: the second finds it converted.
"""

from datetime import timedelta

from flask_babel import gettext as _
from sqlalchemy import Integer, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from portal.audit import services as audit
from portal.buyers import policy
from portal.buyers.models import Organisation, Role, User
from portal.contracts import services as contracts
from portal.contracts.models import Contract
from portal.core import mail
from portal.core.i18n import absolute_url
from portal.extensions import db
from portal.rfq.models import (
    OPEN_STATUSES,
    QuoteRequest,
    QuoteRequestMessage,
    QuoteRequestTranche,
    RfqStatus,
)
from portal.rfq.reading import RfqError, Wanted, message_text, parse_request, reason_text
from portal.timeutil import beijing_today, utcnow

__all__ = [
    "RfqError",
    "all_requests",
    "assign",
    "convert",
    "create_request",
    "decline",
    "draft_terms",
    "find",
    "parse_request",
    "reply",
    "request_for_contract",
    "requests_of",
    "salespeople",
]


# --- finding ----------------------------------------------------------------------------------------


def find(number) -> QuoteRequest | None:
    if not isinstance(number, str) or len(number) > 20:
        return None
    return db.session.scalar(select(QuoteRequest).filter_by(number=number.strip().upper()))


def requests_of(organisation: Organisation, limit: int = 200) -> list[QuoteRequest]:
    return list(
        db.session.scalars(
            select(QuoteRequest)
            .filter_by(organisation_id=organisation.id)
            .order_by(QuoteRequest.id.desc())
            .limit(limit)
        )
    )


def all_requests(
    *, status: str | None = None, assigned: User | None = None, unassigned: bool = False, limit=500
):
    query = (
        select(QuoteRequest)
        .options(selectinload(QuoteRequest.assigned_to), selectinload(QuoteRequest.contract))
        .order_by(QuoteRequest.id.desc())
        .limit(limit)
    )
    if status:
        query = query.filter_by(status=status)
    if assigned is not None:
        query = query.filter_by(assigned_to_id=assigned.id)
    elif unassigned:
        query = query.where(QuoteRequest.assigned_to_id.is_(None))
    return list(db.session.scalars(query))


def request_for_contract(contract: Contract) -> QuoteRequest | None:
    """The request a contract draft was made from, if any."""
    return db.session.scalar(select(QuoteRequest).filter_by(contract_id=contract.id))


def salespeople() -> list[User]:
    return list(
        db.session.scalars(select(User).filter_by(role=Role.SALES, is_active=True).order_by(User.email))
    )


def _locked(rfq: QuoteRequest) -> QuoteRequest:
    db.session.execute(select(QuoteRequest.id).where(QuoteRequest.id == rfq.id).with_for_update())
    db.session.refresh(rfq)
    return rfq


# --- sending ----------------------------------------------------------------------------------------


def create_request(organisation: Organisation, user: User, data: dict, *, actor: str) -> QuoteRequest:
    """A new request from ``user`` of ``organisation``; RfqError (nothing saved) when the input
    is wrong or the organisation may not buy at all (suspended or barred)."""
    refusal = policy.purchase_refusal(organisation, 0)  # a status that buys nothing, whatever the size
    if refusal:
        raise RfqError("buyer_refused", refusal, status=403)
    wanted = parse_request(data)
    rfq = QuoteRequest(
        organisation_id=organisation.id,
        requested_by_id=user.id,
        status=RfqStatus.NEW,
        **_columns(wanted),
        tranches=[
            QuoteRequestTranche(seq=i, due=d, quantity=q) for i, (d, q) in enumerate(wanted.tranches, 1)
        ],
    )
    _insert_numbered(rfq)
    audit.record(actor, "rfq.create", "rfq", rfq.number, after=wanted.as_json())

    def sent(_for_staff):
        return (
            _("Request for quote %(number)s: %(n)s t", number=rfq.number, n=rfq.quantity),
            _(
                "%(buyer)s asks for a quote for %(n)s t.\n\n%(url)s\n",
                buyer=organisation.name_zh,
                n=rfq.quantity,
                url=absolute_url("rfq.staff_request", number=rfq.number),
            ),
        )

    _tell_staff(rfq, sent)
    return rfq


def _columns(wanted: Wanted) -> dict:
    return {
        "quantity": wanted.quantity,
        "standards": ",".join(wanted.standards),
        "project_types": ",".join(wanted.project_types),
        "projects": ",".join(wanted.projects),
        "vintage_from": wanted.vintage_from,
        "vintage_to": wanted.vintage_to,
        "schedule": wanted.schedule,
        "price_expectation": wanted.price_expectation,
        "contact_name": wanted.contact_name,
        "contact_email": wanted.contact_email,
        "contact_phone": wanted.contact_phone,
        "notes": wanted.notes,
    }


def _insert_numbered(rfq: QuoteRequest) -> None:
    """The next ``RFQ-<year>-NNNN`` number; a concurrent insert of the same number makes the
    unique constraint refuse one of them, which tries the next."""
    prefix = f"RFQ-{beijing_today().year}-"
    sequence = func.cast(func.substr(QuoteRequest.number, len(prefix) + 1), Integer)
    for _attempt in range(20):
        last = db.session.scalar(select(func.max(sequence)).where(QuoteRequest.number.like(prefix + "%")))
        rfq.number = f"{prefix}{(last or 0) + 1:04d}"
        try:
            with db.session.begin_nested():
                db.session.add(rfq)
                db.session.flush()
            return
        except IntegrityError:
            if rfq in db.session:
                db.session.expunge(rfq)
    raise RfqError("busy", _("Please try again."), status=503)


# --- answering --------------------------------------------------------------------------------------


def _check_open(rfq: QuoteRequest) -> None:
    if rfq.status == RfqStatus.CONVERTED:
        raise RfqError(
            "already_converted",
            _(
                "Request %(number)s was already turned into contract draft %(contract)s.",
                number=rfq.number,
                contract=rfq.contract.number if rfq.contract else "—",
            ),
            status=409,
        )
    if rfq.status not in OPEN_STATUSES:
        raise RfqError("closed", _("Request %(number)s is closed.", number=rfq.number), status=409)


def reply(rfq: QuoteRequest, author: User, body, *, from_staff: bool, actor: str) -> QuoteRequestMessage:
    """A message on an open request: from staff it moves a new request into discussion and is
    mailed to the buyer; from the buyer it is mailed to the sales team."""
    rfq = _locked(rfq)
    _check_open(rfq)
    text = message_text(body)
    message = QuoteRequestMessage(request_id=rfq.id, author_id=author.id, from_staff=from_staff, body=text)
    db.session.add(message)
    before = rfq.status
    if from_staff and rfq.status == RfqStatus.NEW:
        rfq.status = RfqStatus.DISCUSSION
    rfq.updated_at = utcnow()
    db.session.flush()
    db.session.expire(rfq, ["messages"])
    audit.record(
        actor,
        "rfq.reply",
        "rfq",
        rfq.number,
        before={"status": before},
        after={"status": rfq.status, "message": text},
    )
    if from_staff:
        _tell_buyer(
            rfq,
            lambda: (
                _("Reply to your request for quote %(number)s", number=rfq.number),
                _(
                    "The sales team replied to your request for quote %(number)s:\n\n%(text)s\n\n%(url)s\n",
                    number=rfq.number,
                    text=text,
                    url=absolute_url("rfq.request_page", number=rfq.number),
                ),
            ),
        )
    else:
        _tell_staff(
            rfq,
            lambda _s: (
                _("The buyer replied on %(number)s", number=rfq.number),
                _(
                    "%(buyer)s replied on request for quote %(number)s:\n\n%(text)s\n\n%(url)s\n",
                    buyer=rfq.organisation.name_zh,
                    number=rfq.number,
                    text=text,
                    url=absolute_url("rfq.staff_request", number=rfq.number),
                ),
            ),
        )
    return message


def assign(rfq: QuoteRequest, salesperson_id, *, actor: str) -> QuoteRequest:
    """Give an open request to a salesperson (or to nobody, with an empty choice)."""
    rfq = _locked(rfq)
    _check_open(rfq)
    person = None
    if salesperson_id not in (None, ""):
        person = next((u for u in salespeople() if str(u.id) == str(salesperson_id)), None)
        if person is None:
            raise RfqError(
                "unknown_salesperson", _("Choose a member of the sales team."), field="assigned_to"
            )
    before = rfq.assigned_to.email if rfq.assigned_to else None
    rfq.assigned_to_id = person.id if person else None
    before_status = rfq.status
    if person is not None and rfq.status == RfqStatus.NEW:
        rfq.status = RfqStatus.DISCUSSION
    rfq.updated_at = utcnow()
    db.session.flush()
    db.session.expire(rfq, ["assigned_to"])
    audit.record(
        actor,
        "rfq.assign",
        "rfq",
        rfq.number,
        before={"assigned_to": before, "status": before_status},
        after={"assigned_to": person.email if person else None, "status": rfq.status},
    )
    return rfq


def decline(rfq: QuoteRequest, author: User, reason, *, actor: str) -> QuoteRequest:
    """Refuse an open request with a reason the buyer reads (on its page and by mail)."""
    rfq = _locked(rfq)
    _check_open(rfq)
    text = reason_text(reason)
    before = rfq.status
    rfq.status = RfqStatus.DECLINED
    rfq.decline_reason = text
    rfq.updated_at = utcnow()
    db.session.flush()
    audit.record(
        actor,
        "rfq.decline",
        "rfq",
        rfq.number,
        before={"status": before},
        after={"status": rfq.status, "reason": rfq.decline_reason},
    )
    _tell_buyer(
        rfq,
        lambda: (
            _("Your request for quote %(number)s was declined", number=rfq.number),
            _(
                "The sales team declined your request for quote %(number)s:\n\n%(reason)s\n\n%(url)s\n",
                number=rfq.number,
                reason=rfq.decline_reason,
                url=absolute_url("rfq.request_page", number=rfq.number),
            ),
        ),
    )
    return rfq


# --- converting -------------------------------------------------------------------------------------


def draft_terms(rfq: QuoteRequest, price_per_t) -> dict:
    """The contract terms a request becomes, as ``contracts.services.parse_terms`` reads them:
    the term from today to the last wanted delivery, the schedule as tranches, the wanted
    standard (when exactly one), project types and vintages; the price staff offer."""
    standards = rfq.listed("standards")
    tranches = [{"due": t.due.isoformat(), "quantity": t.quantity} for t in rfq.tranches]
    last = max((t.due for t in rfq.tranches), default=beijing_today())
    return {
        "title": f"{rfq.number} · {rfq.organisation.name_zh}",
        "start": beijing_today().isoformat(),
        "end": max(last, beijing_today() + timedelta(days=1)).isoformat(),
        "price_per_t": price_per_t,
        "standard": standards[0] if len(standards) == 1 else "",
        "project_types": rfq.listed("project_types"),
        "vintage_from": rfq.vintage_from,
        "vintage_to": rfq.vintage_to,
        "delivery": "holding",
        "tranches": tranches,
        "total_quantity": rfq.quantity,
    }


def convert(rfq: QuoteRequest, price_per_t, *, user: User, actor: str) -> Contract:
    """Turn an open request into an offtake contract draft for its organisation, owned by the
    assigned salesperson (or by whoever converts it). Once only: a second conversion is refused
    (409) and changes nothing."""
    rfq = _locked(rfq)
    _check_open(rfq)
    owner = rfq.assigned_to or user
    contract, _created = contracts.create_draft(
        rfq.organisation,
        draft_terms(rfq, price_per_t),
        owner=owner,
        actor=actor,
        idempotency_key=f"rfq:{rfq.number}",
    )
    before = {"status": rfq.status, "assigned_to": owner.email if rfq.assigned_to else None}
    rfq.status = RfqStatus.CONVERTED
    rfq.contract_id = contract.id
    rfq.assigned_to_id = owner.id  # whoever runs the contract now handles the request
    rfq.updated_at = utcnow()
    db.session.flush()
    db.session.expire(rfq, ["contract", "assigned_to"])
    audit.record(
        actor,
        "rfq.convert",
        "rfq",
        rfq.number,
        before=before,
        after={"status": rfq.status, "contract": contract.number, "assigned_to": owner.email},
    )
    _tell_buyer(
        rfq,
        lambda: (
            _("Your request for quote %(number)s is being prepared as a contract", number=rfq.number),
            _(
                "The sales team is preparing an offtake contract for your request for quote %(number)s (%(n)s t). They will send it to you for signing.\n\n%(url)s\n",
                number=rfq.number,
                n=rfq.quantity,
                url=absolute_url("rfq.request_page", number=rfq.number),
            ),
        ),
    )
    return contract


# --- mail -------------------------------------------------------------------------------------------


def _tell_buyer(rfq: QuoteRequest, write) -> None:
    """The request's contact and the user who sent it, in the portal's default language."""
    addresses = {rfq.contact_email.lower(): rfq.contact_email}
    sender = rfq.requested_by
    if sender is not None and sender.is_active:
        addresses.setdefault(sender.email.lower(), sender.email)
    with mail.in_recipient_language(sender):
        subject, body = write()
    for address in addresses.values():
        mail.send(address, subject, body)


def _tell_staff(rfq: QuoteRequest, write) -> None:
    """The assigned salesperson, or the whole sales team while nobody is assigned."""
    people = [rfq.assigned_to] if rfq.assigned_to is not None and rfq.assigned_to.is_active else salespeople()
    for person in people:
        with mail.in_recipient_language(person):
            subject, body = write(True)
        mail.send(person.email, subject, body)
