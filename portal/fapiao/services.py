"""Fapiao requests: asked for by a buyer for a paid order or a paid contract invoice of its own
organisation, issued by staff with the tax authority's number, the issue date and the e-fapiao
PDF (checked to be a PDF, size-bounded, kept with its SHA-256), or rejected; an issued fapiao
may be voided (红冲). One request stands per order or invoice at a time: a rejected or voided
one makes way for a new one. Every change is audited; refusals are FapiaoError, nothing changed.
"""

import hashlib
import re
import secrets
from datetime import date, timedelta

from flask_babel import gettext as _
from sqlalchemy import select

from portal.audit import services as audit
from portal.buyers import uscc
from portal.contracts.models import Invoice, InvoiceStatus
from portal.core.errors import ServiceError
from portal.core.text import clean_text
from portal.extensions import db
from portal.fapiao.models import STANDING, FapiaoKind, FapiaoRequest, FapiaoStatus
from portal.offsets.models import Order, OrderStatus
from portal.timeutil import beijing_today, utcnow

#: An e-fapiao (全电发票 / OFD-converted PDF) is tens of kilobytes; a scan a few hundred.
MAX_PDF_BYTES = 2 * 1024 * 1024
_ID_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
#: 发票号码: 8 digits (earlier electronic fapiao) or 20 (全面数字化的电子发票).
_NUMBER = re.compile(r"[0-9]{8}|[0-9]{20}")
_PHONE = re.compile(r"[0-9+\-() ]{5,40}")
_ACCOUNT = re.compile(r"[0-9 ]{6,40}")


class FapiaoError(ServiceError):
    """A refused fapiao request or staff action: nothing was stored."""


# --- asking ---------------------------------------------------------------------------------------


def _locked_subject(subject):
    model = Order if isinstance(subject, Order) else Invoice
    return db.session.scalars(
        select(model)
        .where(model.id == subject.id)
        .with_for_update(of=model)
        .execution_options(populate_existing=True)
    ).one()


def _is_paid(subject) -> bool:
    if isinstance(subject, Order):
        return subject.status == OrderStatus.FULFILLED
    return subject.status == InvoiceStatus.PAID


def standing_request(subject) -> FapiaoRequest | None:
    """The request that stands for ``subject`` (an order or an invoice), if any."""
    column = FapiaoRequest.order_id if isinstance(subject, Order) else FapiaoRequest.invoice_id
    return db.session.scalar(
        select(FapiaoRequest).where(column == subject.id, FapiaoRequest.status.in_(STANDING))
    )


def requests_for(subject) -> list[FapiaoRequest]:
    """Every request for ``subject``, the newest first."""
    column = FapiaoRequest.order_id if isinstance(subject, Order) else FapiaoRequest.invoice_id
    return list(
        db.session.scalars(
            select(FapiaoRequest).where(column == subject.id).order_by(FapiaoRequest.id.desc())
        )
    )


def may_request(subject) -> bool:
    """Whether a fapiao may be asked for ``subject`` now (paid, no request standing)."""
    return _is_paid(subject) and standing_request(subject) is None


def _text(value, field, label, max_length, required):
    return clean_text(
        value, field=field, label=label, max_length=max_length, required=required, error=FapiaoError
    )


def _details(kind, details: dict) -> dict:
    """The tax details as stored, or FapiaoError naming the first field at fault."""
    if kind not in tuple(FapiaoKind):
        raise FapiaoError(
            "invalid_kind", _("Choose a general (普票) or a special (专票) VAT fapiao."), field="kind"
        )
    title = _text(details.get("title"), "title", _("Buyer name (抬头)"), 200, True)
    taxpayer_id = details.get("taxpayer_id")
    code = uscc.normalise(taxpayer_id) if isinstance(taxpayer_id, str) else ""
    if uscc.problem(code):
        raise FapiaoError(
            "invalid_taxpayer_id",
            _(
                "The taxpayer id must be the buyer's 18-character unified social credit code; "
                "%(value)s is not a valid one.",
                value=str(taxpayer_id or "")[:40] or "—",
            ),
            field="taxpayer_id",
        )
    special = kind == FapiaoKind.SPECIAL
    address = _text(details.get("address"), "address", _("Registered address"), 200, special)
    phone = _text(details.get("phone"), "phone", _("Phone"), 40, special)
    bank = _text(details.get("bank"), "bank", _("Bank"), 100, special)
    account = _text(details.get("bank_account"), "bank_account", _("Bank account"), 40, special)
    if phone and not _PHONE.fullmatch(phone):
        raise FapiaoError(
            "invalid_phone",
            _("The phone number must be 5 to 40 characters: digits, spaces, +, - and brackets."),
            field="phone",
        )
    if account and not _ACCOUNT.fullmatch(account):
        raise FapiaoError(
            "invalid_bank_account",
            _("The bank account must be 6 to 40 digits (spaces allowed)."),
            field="bank_account",
        )
    return {
        "title": title,
        "taxpayer_id": code,
        "address": address,
        "phone": phone,
        "bank": bank,
        "bank_account": account,
    }


def request_fapiao(subject, organisation, kind, details: dict, *, actor: str) -> FapiaoRequest:
    """``organisation`` asks for a fapiao of ``kind`` for ``subject`` (its own paid order or
    contract invoice) with its tax ``details`` (title, taxpayer_id; for a special fapiao also
    address, phone, bank, bank_account)."""
    if organisation is None or subject is None or subject.organisation_id != organisation.id:
        raise FapiaoError("not_found", _("No such order or invoice of your organisation."), 404)
    if isinstance(subject, Invoice) and subject.contract.signed_at is None:
        raise FapiaoError("not_found", _("No such order or invoice of your organisation."), 404)
    fields = _details(kind, details)
    subject = _locked_subject(subject)  # two requests for one order take turns here
    if not _is_paid(subject):
        raise FapiaoError(
            "not_paid", _("A fapiao can be requested only once the order or invoice is paid."), 409
        )
    if standing_request(subject) is not None:
        raise FapiaoError(
            "already_requested",
            _("A fapiao was already requested for this; ask again only if it is rejected or voided."),
            409,
        )
    request = FapiaoRequest(
        public_id="fp_" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(16)),
        organisation_id=organisation.id,
        order_id=subject.id if isinstance(subject, Order) else None,
        invoice_id=subject.id if isinstance(subject, Invoice) else None,
        kind=kind,
        amount=subject.amount,
        status=FapiaoStatus.REQUESTED,
        requested_by=actor,
        **fields,
    )
    db.session.add(request)
    db.session.flush()
    audit.record(
        actor,
        "fapiao.request",
        "fapiao",
        request.public_id,
        after={
            "for": request.subject_number,
            "kind": kind,
            "amount": request.amount,
            "title": fields["title"],
            "taxpayer_id": fields["taxpayer_id"],
        },
    )
    return request


# --- staff ----------------------------------------------------------------------------------------


def find(public_id) -> FapiaoRequest | None:
    if not isinstance(public_id, str) or len(public_id) > 24:
        return None
    return db.session.scalar(select(FapiaoRequest).filter_by(public_id=public_id))


def staff_list(status: str | None = None, limit: int = 500) -> list[FapiaoRequest]:
    """Requests for staff, the oldest waiting first; ``status`` one of FapiaoStatus or None."""
    query = select(FapiaoRequest).order_by(FapiaoRequest.requested_at, FapiaoRequest.id)
    if status:
        query = query.where(FapiaoRequest.status == status)
    return list(db.session.scalars(query.limit(limit)))


def organisation_list(organisation) -> list[FapiaoRequest]:
    return list(
        db.session.scalars(
            select(FapiaoRequest)
            .filter_by(organisation_id=organisation.id)
            .order_by(FapiaoRequest.id.desc())
            .limit(500)
        )
    )


def _locked(request: FapiaoRequest) -> FapiaoRequest:
    return db.session.scalars(
        select(FapiaoRequest)
        .where(FapiaoRequest.id == request.id)
        .with_for_update(of=FapiaoRequest)
        .execution_options(populate_existing=True)
    ).one()


def checked_pdf(data, filename) -> tuple[bytes, str]:
    """The uploaded e-fapiao, if it is a PDF of at most MAX_PDF_BYTES: (bytes, file name).

    A PDF starts with ``%PDF-`` (within its first kilobyte) and ends with ``%%EOF`` (within its
    last): the file is checked by its structure, never opened or rendered here."""
    if not data:
        raise FapiaoError("missing_pdf", _("Attach the e-fapiao as a PDF file."), field="pdf")
    if len(data) > MAX_PDF_BYTES:
        raise FapiaoError(
            "pdf_too_large",
            _("The file is larger than %(mb)s MB.", mb=MAX_PDF_BYTES // (1024 * 1024)),
            413,
            "pdf",
        )
    if b"%PDF-" not in data[:1024] or b"%%EOF" not in data[-1024:]:
        raise FapiaoError("not_a_pdf", _("The file is not a PDF."), field="pdf")
    name = _text((filename or "")[-200:], "pdf", _("File name"), 200, False) or "fapiao.pdf"
    if not name.lower().endswith(".pdf"):
        name += ".pdf"
    return data, name


def issue(
    request: FapiaoRequest, number, issued_on, data, filename, *, actor: str, today: date | None = None
):
    """Staff record the issued fapiao: its number, issue date and the e-fapiao PDF."""
    today = today or beijing_today()
    number = number.strip() if isinstance(number, str) else ""
    if not _NUMBER.fullmatch(number):
        raise FapiaoError(
            "invalid_fapiao_number", _("The fapiao number is 8 or 20 digits."), field="fapiao_number"
        )
    day = _day(issued_on)
    if day > today:
        raise FapiaoError(
            "invalid_issued_on", _("The issue date cannot be in the future."), field="issued_on"
        )
    if day < request.requested_at.date() - timedelta(days=31):
        raise FapiaoError(
            "invalid_issued_on", _("The issue date cannot be long before the request."), field="issued_on"
        )
    data, name = checked_pdf(data, filename)
    request = _locked(request)
    if request.status != FapiaoStatus.REQUESTED:
        raise FapiaoError("not_requested", _("This request no longer waits for a fapiao."), 409)
    request.status = FapiaoStatus.ISSUED
    request.fapiao_number = number
    request.issued_on = day
    request.pdf_filename = name
    request.pdf_size = len(data)
    request.pdf_sha256 = hashlib.sha256(data).hexdigest()
    request.pdf_content = data
    request.decided_by = actor
    request.decided_at = utcnow()
    audit.record(
        actor,
        "fapiao.issued",
        "fapiao",
        request.public_id,
        before={"status": FapiaoStatus.REQUESTED},
        after={
            "status": request.status,
            "fapiao_number": number,
            "issued_on": day.isoformat(),
            "sha256": request.pdf_sha256,
            "size": request.pdf_size,
        },
    )
    return request


def _decide(request: FapiaoRequest, reason, *, to: FapiaoStatus, from_: FapiaoStatus, actor: str):
    reason = _text(reason, "reason", _("Reason"), 300, True)
    request = _locked(request)
    if request.status != from_:
        raise FapiaoError("wrong_status", _("This request is no longer in a state that allows it."), 409)
    request.status = to
    request.reason = reason
    request.decided_by = actor
    request.decided_at = utcnow()
    audit.record(
        actor,
        f"fapiao.{to}",
        "fapiao",
        request.public_id,
        before={"status": from_},
        after={"status": to, "reason": reason},
    )
    return request


def reject(request: FapiaoRequest, reason, *, actor: str) -> FapiaoRequest:
    """Staff refuse a request (wrong details, …) with a reason; the buyer may ask again."""
    return _decide(request, reason, to=FapiaoStatus.REJECTED, from_=FapiaoStatus.REQUESTED, actor=actor)


def void(request: FapiaoRequest, reason, *, actor: str) -> FapiaoRequest:
    """Staff void an issued fapiao (红冲) with a reason; its PDF stays on record, the buyer may ask
    again."""
    return _decide(request, reason, to=FapiaoStatus.VOIDED, from_=FapiaoStatus.ISSUED, actor=actor)


def _day(value) -> date:
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise FapiaoError(
        "invalid_issued_on",
        _("%(field)s must be a date (YYYY-MM-DD).", field=_("Issue date")),
        field="issued_on",
    )
