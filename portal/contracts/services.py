"""Offtake contracts: draft, sign, reserve, deliver, invoice, get paid, amend, terminate, complete.

Locking: every action on a contract locks its row first (``FOR NO KEY UPDATE``), then makes at
most one ledger movement, which locks the reserve account and the batches in the ledger's global
order. Checkout orders never lock contract rows. New stock reserved for many contracts at once
(``reserve_from_batch``) locks their rows together in id order, then the one batch: when the
batch was just issued, no other transaction can see it yet, let alone hold it; when an existing
batch is listed again, the contract rows come first there too, as in every other action. So
contract actions cannot deadlock with orders or with each other. A delivery that needs more than
the reserve holds first tops the reserve up from inventory in a transaction of its own, then
delivers from the reserve in a second one: each transaction makes one movement, as the ledger's
no-deadlock argument needs.

What is reserved covers the undelivered tranches soonest due first; the reserve never holds
more than the contract still has to deliver.
"""

import json
import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

from flask_babel import gettext as _
from sqlalchemy import Integer, and_, case, exists, func, literal, or_, select, update
from sqlalchemy.exc import IntegrityError

from portal.audit import services as audit
from portal.buyers import policy
from portal.buyers import services as buyers
from portal.buyers.models import Organisation, User
from portal.catalog.models import Listing, Project, ProjectType, Region
from portal.certificates import services as certificates
from portal.certificates.models import Purpose, Source
from portal.contracts.models import (
    Contract,
    ContractStatus,
    ContractVersion,
    Delivery,
    DeliveryLine,
    DeliveryMode,
    Invoice,
    InvoicePayment,
    InvoiceStatus,
    PaymentMethod,
    Tranche,
)
from portal.core import mail
from portal.core.errors import ServiceError
from portal.core.i18n import absolute_url, date_text, localized
from portal.core.numbers import money, whole
from portal.extensions import db
from portal.ledger import services as ledger
from portal.ledger.errors import InsufficientCredits, LedgerError
from portal.ledger.models import MAX_QUANTITY, Account, AccountKind, Batch, Block
from portal.payments import services as payments
from portal.revenue import services as revenue
from portal.timeutil import beijing_today, utcnow

log = logging.getLogger(__name__)

MAX_PRICE = Decimal("100000.00")
MAX_TERM_YEARS = 30
MAX_TRANCHES = 120
#: A tranche may be delivered from this many days before it is due.
EARLY_DELIVERY_DAYS = 30
TITLE_MAX = 200
STANDARDS = ("CCER", "VCS")
CENT = Decimal("0.01")


class ContractError(ServiceError):
    """A refused contract action: nothing was changed, reserved, delivered or invoiced."""


# --- reading the terms ---------------------------------------------------------------------------


@dataclass
class Terms:
    """A contract's terms and schedule, checked."""

    title: str
    start: date
    end: date
    price_per_t: Decimal
    escalation_bp: int
    year_prices: dict[str, Decimal]
    standard: str
    project_types: list[str]
    counties: list[str]
    vintage_from: int | None
    vintage_to: int | None
    delivery_mode: str
    beneficiary: str
    payment_days: int
    tranches: list[tuple[date, int]]

    @property
    def total(self) -> int:
        return sum(q for _due, q in self.tranches)

    def as_json(self) -> dict:
        return {
            "title": self.title,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "total_quantity": self.total,
            "price_per_t": str(self.price_per_t),
            "escalation_pct_per_year": str(Decimal(self.escalation_bp) / 100),
            "year_prices": {y: str(p) for y, p in sorted(self.year_prices.items())},
            "standard": self.standard,
            "project_types": self.project_types,
            "counties": self.counties,
            "vintage_from": self.vintage_from,
            "vintage_to": self.vintage_to,
            "delivery": self.delivery_mode,
            "beneficiary": self.beneficiary,
            "payment_days": self.payment_days,
            "tranches": [{"due": d.isoformat(), "quantity": q} for d, q in self.tranches],
        }


def _text(value, *, field: str, label: str, max_length: int, required: bool) -> str:
    """Text as stored (see ``certificates.clean_text``), refused as a ContractError."""
    try:
        return certificates.clean_text(
            value, field=field, label=label, max_length=max_length, required=required
        )
    except ServiceError as exc:
        raise ContractError(exc.code, exc.message, field=exc.field) from None


def _date(value, field: str, label: str) -> date:
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ContractError(
        "invalid_" + field, _("%(field)s must be a date (YYYY-MM-DD).", field=label), field=field
    )


#: The largest amount the money columns hold (NUMERIC(14, 2)).
MAX_AMOUNT = Decimal("999999999999.99")


def parse_money(value, field: str, label: str, ceiling: Decimal = MAX_PRICE) -> Decimal:
    """Yuan as ``numbers.money`` reads them (ASCII digits, at most two decimals), above zero and
    at most ``ceiling`` (by default the highest price per tonne, 100,000)."""
    amount = money(value, CENT, ceiling)
    if amount is None:
        raise ContractError(
            "invalid_" + field,
            _("%(field)s must be an amount in yuan above zero, with at most two decimals.", field=label),
            field=field,
        )
    return amount


def _percent_bp(value) -> int:
    if value in (None, ""):
        return 0
    pct = money(value, Decimal(0), Decimal(50))  # the same format: digits, two decimals
    if pct is None:
        raise ContractError(
            "invalid_escalation",
            _("The yearly escalation must be a percentage from 0 to 50, with at most two decimals."),
            field="escalation_pct_per_year",
        )
    return int(pct * 100)


def _list(value, field: str, message: str) -> list[str]:
    """A list of short codes (or one comma-separated string of them); ContractError otherwise."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        value = value.split(",")
    if (
        not isinstance(value, list | tuple)
        or len(value) > 50
        or not all(isinstance(v, str) and len(v) <= 40 and v.isprintable() for v in value)
    ):
        raise ContractError("invalid_" + field, message, field=field)
    return sorted({v.strip() for v in value if v.strip()})


def _year(value, field: str, label: str) -> int | None:
    if value in (None, ""):
        return None
    year = whole(value, 2000, 2100)
    if year is None:
        raise ContractError(
            "invalid_" + field, _("%(field)s must be a year from 2000 to 2100.", field=label), field=field
        )
    return year


def parse_terms(data: dict) -> Terms:
    """Check everything a draft or an amendment says; ContractError on the first problem."""
    if not isinstance(data, dict):
        raise ContractError("invalid_json", _("Send a JSON object."))
    title = _text(data.get("title"), field="title", label=_("Title"), max_length=TITLE_MAX, required=True)
    beneficiary = _text(
        data.get("beneficiary"),
        field="beneficiary",
        label=_("Beneficiary"),
        max_length=certificates.BENEFICIARY_MAX,
        required=False,
    )
    start = _date(data.get("start"), "start", _("Start"))
    end = _date(data.get("end"), "end", _("End"))
    if start.year < 2000 or end.year > 2100:
        raise ContractError("invalid_term", _("The term must lie between 2000 and 2100."), field="start")
    if end < start:
        raise ContractError("invalid_term", _("The term must end after it starts."), field="end")
    if (end - start).days > MAX_TERM_YEARS * 366:
        raise ContractError(
            "invalid_term", _("A term may be at most %(n)s years.", n=MAX_TERM_YEARS), field="end"
        )
    price = parse_money(data.get("price_per_t"), "price_per_t", _("Price per tonne"))
    escalation = _percent_bp(data.get("escalation_pct_per_year"))

    raw_prices = data.get("year_prices") or {}
    if not isinstance(raw_prices, dict):
        raise ContractError(
            "invalid_year_prices", _("Prices per year must map years to prices."), field="year_prices"
        )
    year_prices = {}
    for year, amount in raw_prices.items():
        y = whole(year, start.year, end.year)
        if y is None:
            raise ContractError(
                "invalid_year_prices",
                _("A price per year must name a year of the term (%(a)s–%(b)s).", a=start.year, b=end.year),
                field="year_prices",
            )
        year_prices[str(y)] = parse_money(amount, "year_prices", _("Price per tonne"))

    standard = data.get("standard") or ""
    if not isinstance(standard, str) or standard not in ("", *STANDARDS):
        raise ContractError("invalid_standard", _("The standard must be CCER or VCS."), field="standard")
    types = _list(data.get("project_types"), "project_types", _("Unknown project type."))
    if any(t not in {p.value for p in ProjectType} for t in types):
        raise ContractError("invalid_project_types", _("Unknown project type."), field="project_types")
    counties = _list(data.get("counties"), "counties", _("Unknown county."))
    if counties:
        known = set(db.session.scalars(select(Region.code).where(Region.code.in_(counties))))
        if any(c not in known for c in counties):
            raise ContractError("invalid_counties", _("Unknown county."), field="counties")
    vintage_from = _year(data.get("vintage_from"), "vintage_from", _("Vintage from"))
    vintage_to = _year(data.get("vintage_to"), "vintage_to", _("Vintage to"))
    if vintage_from and vintage_to and vintage_from > vintage_to:
        raise ContractError(
            "invalid_vintage", _("The vintage window must end after it starts."), field="vintage_to"
        )
    mode = data.get("delivery") or DeliveryMode.HOLDING
    if not isinstance(mode, str) or mode not in {m.value for m in DeliveryMode}:
        raise ContractError(
            "invalid_delivery", _("Delivery must be to the holding or retired."), field="delivery"
        )
    payment_days = data.get("payment_days", 30)
    payment_days = whole(payment_days, 0, 365) if payment_days not in (None, "") else 30
    if payment_days is None:
        raise ContractError(
            "invalid_payment_days", _("Payment terms must be 0 to 365 days."), field="payment_days"
        )

    raw_tranches = data.get("tranches")
    if not isinstance(raw_tranches, list) or not raw_tranches:
        raise ContractError("invalid_tranches", _("Give at least one tranche."), field="tranches")
    if len(raw_tranches) > MAX_TRANCHES:
        raise ContractError(
            "invalid_tranches", _("At most %(n)s tranches.", n=MAX_TRANCHES), field="tranches"
        )
    tranches = []
    for index, raw in enumerate(raw_tranches, 1):
        if not isinstance(raw, dict):
            raise ContractError("invalid_tranches", _("Each tranche needs a due date and a quantity."))
        due = _date(raw.get("due"), "tranches", _("Tranche %(n)s: due date", n=index))
        quantity = whole(raw.get("quantity"), 1, MAX_QUANTITY)
        if quantity is None:
            raise ContractError(
                "invalid_quantity",
                _("Tranche %(n)s: the quantity must be a whole number of tonnes above zero.", n=index),
                field="tranches",
            )
        if not start <= due <= end:
            raise ContractError(
                "tranche_outside_term",
                _("Tranche %(n)s is due on %(due)s, outside the term.", n=index, due=date_text(due)),
                field="tranches",
            )
        tranches.append((due, quantity))
    tranches.sort(key=lambda t: t[0])  # stable: equal dates keep their order
    total = sum(q for _d, q in tranches)
    if total > MAX_QUANTITY:
        raise ContractError("invalid_quantity", _("The total is too large."), field="tranches")
    for due, quantity in tranches:
        unit = yearly_price(price, escalation, year_prices, start.year, due.year)
        if unit > MAX_PRICE:
            raise ContractError(
                "invalid_escalation",
                _(
                    "With this escalation the price in %(year)s would be %(price)s yuan per tonne, above the limit of %(max)s.",
                    year=due.year,
                    price=unit,
                    max=MAX_PRICE,
                ),
                field="escalation_pct_per_year",
            )
        if unit * quantity > MAX_AMOUNT:
            raise ContractError(
                "amount_too_large",
                _("A tranche's invoice would exceed %(max)s yuan; split it.", max=MAX_AMOUNT),
                field="tranches",
            )
    stated = data.get("total_quantity")
    if stated not in (None, "") and whole(stated, 1, MAX_QUANTITY) != total:
        raise ContractError(
            "tranches_total",
            _("The tranches add up to %(sum)s t, not the contract's %(total)s t.", sum=total, total=stated),
            field="tranches",
        )
    return Terms(
        title=title,
        start=start,
        end=end,
        price_per_t=price,
        escalation_bp=escalation,
        year_prices=year_prices,
        standard=standard,
        project_types=types,
        counties=counties,
        vintage_from=vintage_from,
        vintage_to=vintage_to,
        delivery_mode=mode,
        beneficiary=beneficiary,
        payment_days=payment_days,
        tranches=tranches,
    )


def terms_of(contract: Contract) -> Terms:
    return Terms(
        title=contract.title,
        start=contract.start,
        end=contract.end,
        price_per_t=contract.price_per_t,
        escalation_bp=contract.escalation_bp,
        year_prices={y: Decimal(p) for y, p in json.loads(contract.year_prices or "{}").items()},
        standard=contract.standard,
        project_types=[t for t in contract.project_types.split(",") if t],
        counties=[c for c in contract.counties.split(",") if c],
        vintage_from=contract.vintage_from,
        vintage_to=contract.vintage_to,
        delivery_mode=contract.delivery_mode,
        beneficiary=contract.beneficiary,
        payment_days=contract.payment_days,
        tranches=[(t.due, t.quantity) for t in contract.tranches],
    )


def _apply(contract: Contract, terms: Terms) -> None:
    contract.title = terms.title
    contract.start, contract.end = terms.start, terms.end
    contract.total_quantity = terms.total
    contract.price_per_t = terms.price_per_t
    contract.escalation_bp = terms.escalation_bp
    contract.year_prices = json.dumps({y: str(p) for y, p in sorted(terms.year_prices.items())})
    contract.standard = terms.standard
    contract.project_types = ",".join(terms.project_types)
    contract.counties = ",".join(terms.counties)
    contract.vintage_from, contract.vintage_to = terms.vintage_from, terms.vintage_to
    contract.delivery_mode = terms.delivery_mode
    contract.beneficiary = terms.beneficiary
    contract.payment_days = terms.payment_days


# --- prices ---------------------------------------------------------------------------------------


def price_for(contract: Contract, due: date) -> Decimal:
    """The price per tonne of a tranche due on ``due``: the fixed price of that calendar year if
    one is set, else the start price escalated once per calendar year since the start year
    (compounding, rounded half to even to the fen)."""
    return yearly_price(
        contract.price_per_t,
        contract.escalation_bp,
        json.loads(contract.year_prices or "{}"),
        contract.start.year,
        due.year,
    )


def yearly_price(
    price: Decimal, escalation_bp: int, year_prices: dict, start_year: int, year: int
) -> Decimal:
    fixed = year_prices.get(str(year))
    if fixed is not None:
        return Decimal(fixed)
    factor = (Decimal(1) + Decimal(escalation_bp) / 10000) ** max(0, year - start_year)
    return (price * factor).quantize(CENT, rounding=ROUND_HALF_EVEN)


# --- numbers --------------------------------------------------------------------------------------


def _next_number(column, prefix: str, width: int) -> str:
    """The prefix and one more than the highest sequence used with it (compared as numbers:
    ``…-10000`` follows ``…-9999``)."""
    sequence = func.cast(func.substr(column, len(prefix) + 1), Integer)
    last = db.session.scalar(select(func.max(sequence)).where(column.like(prefix + "%")))
    return f"{prefix}{(last or 0) + 1:0{width}d}"


def _insert_numbered(obj, column, prefix: str, width: int, existing=None):
    """Give ``obj`` the next number and insert it; a concurrent insert of the same number makes
    the unique constraint refuse one of them, which tries the next number. When another unique
    constraint refused it (a concurrent repeat of the same Idempotency-Key), ``existing()``
    finds the winner's row, which is returned instead; None when ``obj`` was inserted."""
    for _attempt in range(20):
        obj.number = _next_number(column, prefix, width)
        try:
            with db.session.begin_nested():
                db.session.add(obj)
                db.session.flush()
            return None
        except IntegrityError:
            db.session.expunge(obj) if obj in db.session else None
            if existing is not None and (found := existing()) is not None:
                return found
    raise ContractError("busy", _("Please try again."), status=503)


# --- finding and locking --------------------------------------------------------------------------


def find(number) -> Contract | None:
    if not isinstance(number, str) or len(number) > 20:
        return None
    return db.session.scalar(select(Contract).filter_by(number=number.strip().upper()))


def find_invoice(number) -> Invoice | None:
    if not isinstance(number, str) or len(number) > 20:
        return None
    return db.session.scalar(select(Invoice).filter_by(number=number.strip().upper()))


def _locked(contract: Contract) -> Contract:
    db.session.execute(select(Contract.id).where(Contract.id == contract.id).with_for_update(key_share=True))
    db.session.refresh(contract)
    # The tranches as they are now, in one query (another transaction may have delivered).
    db.session.execute(
        select(Tranche).filter_by(contract_id=contract.id).execution_options(populate_existing=True)
    ).all()
    return contract


def _reserve_account(contract: Contract) -> Account:
    """The contract's reserve, opened at signing with the contract's volume as its capacity
    (amendments only ever raise it: see ``amend``)."""
    account = db.session.scalar(select(Account).filter_by(kind=AccountKind.RESERVE, ref=contract.reserve_ref))
    if account is None:
        account = ledger.open_account(AccountKind.RESERVE, contract.reserve_ref, contract.total_quantity)
    return account


def reserved(contract: Contract) -> int:
    account = db.session.scalar(select(Account).filter_by(kind=AccountKind.RESERVE, ref=contract.reserve_ref))
    return 0 if account is None else ledger.balance(account)


def _matching(contract: Contract):
    """SQL condition on Batch: listed for sale and within the contract's preferences."""
    project = [Project.id == Batch.project_id]
    if contract.standard:
        project.append(Project.standard == contract.standard)
    types = [t for t in contract.project_types.split(",") if t]
    if types:
        project.append(Project.type.in_(types))
    counties = [c for c in contract.counties.split(",") if c]
    if counties:
        project.append(Project.region_id.in_(select(Region.id).where(Region.code.in_(counties))))
    condition = [
        exists().where(Listing.batch_id == Batch.id, Listing.is_active.is_(True)),
        exists().where(and_(*project)),
    ]
    if contract.vintage_from:
        condition.append(Batch.vintage_start >= date(contract.vintage_from, 1, 1))
    if contract.vintage_to:
        condition.append(Batch.vintage_end <= date(contract.vintage_to, 12, 31))
    return and_(*condition)


# --- drafting ------------------------------------------------------------------------------------


def _replay(found, digest: str | None):
    """The earlier result for a repeated Idempotency-Key, or 422 when the request differs."""
    if found.request_digest != digest:
        raise ContractError(
            "idempotency_key_reused",
            _("This Idempotency-Key was used for a different request."),
            status=422,
        )
    return found, False


def _check_key(idempotency_key) -> None:
    if idempotency_key is not None and not 1 <= len(idempotency_key) <= 200:
        raise ContractError("invalid_idempotency_key", _("An Idempotency-Key has 1 to 200 characters."))


def create_draft(
    organisation: Organisation,
    data: dict,
    *,
    owner: User,
    actor: str,
    idempotency_key: str | None = None,
    digest: str | None = None,
) -> tuple[Contract, bool]:
    """A new draft, and whether it was created now (False: replayed for its Idempotency-Key)."""
    if organisation is None:
        raise ContractError("unknown_organisation", _("There is no such organisation."), field="org_uscc")
    _check_key(idempotency_key)

    def earlier():
        if idempotency_key is None:
            return None
        return db.session.scalar(
            select(Contract).filter_by(created_by=actor, idempotency_key=idempotency_key)
        )

    if (found := earlier()) is not None:
        return _replay(found, digest)
    terms = parse_terms(data)
    contract = Contract(
        organisation_id=organisation.id,
        owner_id=owner.id,
        status=ContractStatus.DRAFT,
        version=0,
        created_by=actor,
        idempotency_key=idempotency_key,
        request_digest=digest,
    )
    _apply(contract, terms)
    contract.tranches = [Tranche(seq=i, due=d, quantity=q) for i, (d, q) in enumerate(terms.tranches, 1)]
    if (
        found := _insert_numbered(contract, Contract.number, f"OC-{beijing_today().year}-", 4, earlier)
    ) is not None:
        return _replay(found, digest)
    audit.record(actor, "contract.draft", "contract", contract.number, after=terms.as_json())
    return contract, True


def check_editable(contract: Contract) -> None:
    """ContractError unless ``contract`` is a draft (the edit form asks before showing itself)."""
    if contract.status != ContractStatus.DRAFT:
        raise ContractError(
            "signed_contract",
            _("A signed contract can only be changed by an amendment."),
            status=409,
        )


def check_amendable(contract: Contract) -> None:
    """ContractError unless ``contract`` is active (the amendment form asks before showing itself)."""
    if contract.status != ContractStatus.ACTIVE:
        raise ContractError("not_active", _("Only an active contract can be amended."), status=409)


def update_draft(contract: Contract, data: dict, *, actor: str) -> Contract:
    contract = _locked(contract)
    check_editable(contract)
    terms = parse_terms(data)
    before = terms_of(contract).as_json()
    _apply(contract, terms)
    contract.tranches.clear()
    db.session.flush()
    contract.tranches.extend(Tranche(seq=i, due=d, quantity=q) for i, (d, q) in enumerate(terms.tranches, 1))
    db.session.flush()
    audit.record(actor, "contract.edit", "contract", contract.number, before=before, after=terms.as_json())
    return contract


def _snapshot(contract: Contract, reason: str, actor: str) -> ContractVersion:
    document = terms_of(contract).as_json()
    document.update(
        {
            "number": contract.number,
            "version": contract.version,
            "buyer": {"uscc": contract.organisation.uscc, "name": contract.organisation.name_zh},
            "owner": contract.owner.email,
        }
    )
    version = ContractVersion(
        contract_id=contract.id,
        version=contract.version,
        terms=json.dumps(document, ensure_ascii=False, sort_keys=True),
        reason=reason,
        actor=actor,
    )
    db.session.add(version)
    return version


def versions(contract: Contract) -> list[ContractVersion]:
    return list(
        db.session.scalars(
            select(ContractVersion).filter_by(contract_id=contract.id).order_by(ContractVersion.version)
        )
    )


def sign(contract: Contract, *, actor: str) -> Contract:
    """Draft → active: version 1 is kept, the reserve account opened and filled as far as stock
    matching the preferences allows (soonest tranches first)."""
    contract = _locked(contract)
    if contract.status != ContractStatus.DRAFT:
        raise ContractError("not_draft", _("Only a draft can be signed."), status=409)
    refusal = policy.purchase_refusal(contract.organisation, contract.total_quantity, contract=True)
    if refusal:
        raise ContractError("buyer_refused", refusal, status=403)
    contract.status = ContractStatus.ACTIVE
    contract.version = 1
    contract.signed_at = utcnow()
    _snapshot(contract, "signed", actor)
    _reserve_account(contract)
    got = _top_up(contract, actor=actor)
    audit.record(
        actor,
        "contract.sign",
        "contract",
        contract.number,
        after={"version": 1, "total": contract.total_quantity, "reserved": got},
    )

    def signed(for_staff: bool):
        return (
            _("Offtake contract %(number)s is signed", number=contract.number),
            _(
                "Offtake contract %(number)s (%(title)s) with %(buyer)s for %(total)s t is signed and "
                "active. %(reserved)s t are reserved for its deliveries.\n\n%(url)s\n",
                number=contract.number,
                title=contract.title,
                buyer=localized(contract.organisation, "name"),
                total=contract.total_quantity,
                reserved=got,
                url=absolute_url("contracts.staff_contract", number=contract.number),
            )
            if for_staff
            else _(
                "Offtake contract %(number)s (%(title)s) for %(total)s t is signed and active. "
                "%(reserved)s t are reserved for its deliveries.\n\n%(url)s\n",
                number=contract.number,
                title=contract.title,
                total=contract.total_quantity,
                reserved=got,
                url=absolute_url("contracts.buyer_contract", number=contract.number),
            ),
        )

    _notify(contract, signed)
    return contract


# --- reserving ------------------------------------------------------------------------------------


def _top_up(contract: Contract, *, actor: str, batch_codes=None, limit: int | None = None) -> int:
    """Reserve what the undelivered tranches still lack, as far as matching stock allows (the
    contract row is locked by the caller). Returns the tonnes reserved."""
    account = _reserve_account(contract)
    need = contract.undelivered - ledger.balance(account)
    if limit is not None:
        need = min(need, limit)
    if need <= 0:
        return 0
    try:
        movement = ledger.transfer(
            need,
            source=ledger.system_account(AccountKind.INVENTORY),
            destination=account,
            batch_codes=batch_codes,
            batch_condition=_matching(contract),
            reference=f"contract:{contract.number}:reserve",
            actor=actor,
            up_to=True,
        )
    except InsufficientCredits:
        return 0
    return movement.quantity


def reserve(contract: Contract, *, actor: str) -> int:
    """Top up one active contract's reserve (a transaction of its own)."""
    contract = _locked(contract)
    if contract.status != ContractStatus.ACTIVE:
        return 0
    got = _top_up(contract, actor=actor)
    if got:
        audit.record(actor, "contract.reserve", "contract", contract.number, after={"reserved": got})
    return got


def _by_urgency() -> list[Contract]:
    """Active contracts with undelivered tonnes, the one whose next undelivered tranche is due
    soonest first."""
    next_due = (
        select(func.min(Tranche.due))
        .where(Tranche.contract_id == Contract.id, Tranche.delivered < Tranche.quantity)
        .scalar_subquery()
    )
    return list(
        db.session.scalars(
            select(Contract)
            .where(Contract.status == ContractStatus.ACTIVE, next_due.is_not(None))
            .order_by(next_due, Contract.id)
        )
    )


def reserve_all(*, actor: str, commit: bool = True) -> dict[str, int]:
    """Top up every active contract's reserve, soonest due first, one transaction each."""
    got = {}
    for contract in _by_urgency():
        n = reserve(contract, actor=actor)
        if commit:
            db.session.commit()
        if n:
            got[contract.number] = n
    return got


def reserve_from_batch(batch: Batch, *, actor: str) -> dict[str, int]:
    """New stock (a batch issued or listed): reserve from it for the active contracts whose
    preferences it meets and whose tranches it does not cover yet, soonest due first. Runs in
    the caller's transaction and takes only that batch, in one ledger movement: the contracts
    it serves are locked together (in id order), their needs read again under the lock."""
    listed = db.session.scalar(
        select(Listing.id).where(Listing.batch_id == batch.id, Listing.is_active.is_(True))
    )
    if listed is None:
        return {}
    candidates = [c for c in _wanting(batch) if c.need > 0]
    if not candidates:
        return {}
    ids = sorted(c.id for c in candidates)
    db.session.execute(
        select(Contract.id).where(Contract.id.in_(ids)).order_by(Contract.id).with_for_update(key_share=True)
    ).all()
    needs = {c.id: c.need for c in _wanting(batch, ids)}
    accounts = {
        a.ref: a
        for a in db.session.scalars(
            select(Account).where(
                Account.kind == AccountKind.RESERVE, Account.ref.in_([c.reserve_ref for c in candidates])
            )
        )
    }
    allocations = [
        (accounts[c.reserve_ref], needs[c.id])
        for c in candidates
        if needs.get(c.id, 0) > 0 and c.reserve_ref in accounts
    ]
    if not allocations:
        return {}
    _movement, given = ledger.distribute(
        batch,
        source=ledger.system_account(AccountKind.INVENTORY),
        allocations=allocations,
        reference=f"issuance:{batch.code}:reserve",
        actor=actor,
    )
    by_account = {a.id: c for c in candidates for a in [accounts.get(c.reserve_ref)] if a is not None}
    got = {}
    for account_id, n in given.items():
        number = by_account[account_id].number
        got[number] = n
        audit.record(
            actor, "contract.reserve", "contract", number, after={"reserved": n, "batch": batch.code}
        )
    if got:
        log.info("batch %s: reserved %s for %s contract(s)", batch.code, sum(got.values()), len(got))
    return got


@dataclass(frozen=True)
class _Wanting:
    id: int
    number: str
    need: int
    next_due: date

    @property
    def reserve_ref(self) -> str:
        return f"contract:{self.number}"


def _wanting(batch: Batch, ids: list[int] | None = None) -> list[_Wanting]:
    """Active contracts whose preferences ``batch`` meets, with what their undelivered
    tranches lack beyond their reserve, soonest next due tranche first. Three queries."""
    project = batch.project
    query = (
        select(
            Contract.id,
            Contract.number,
            Contract.project_types,
            Contract.counties,
            func.sum(Tranche.quantity - Tranche.delivered).label("undelivered"),
            func.min(case((Tranche.delivered < Tranche.quantity, Tranche.due))).label("next_due"),
        )
        .join(Tranche, Tranche.contract_id == Contract.id)
        .where(
            Contract.status == ContractStatus.ACTIVE,
            Contract.standard.in_(("", project.standard)),
            or_(Contract.vintage_from.is_(None), Contract.vintage_from <= batch.vintage_start.year),
            or_(Contract.vintage_to.is_(None), Contract.vintage_to >= batch.vintage_end.year),
        )
        .group_by(Contract.id, Contract.number, Contract.project_types, Contract.counties)
    )
    if ids is not None:
        query = query.where(Contract.id.in_(ids))
    rows = [
        r
        for r in db.session.execute(query)
        if r.undelivered > 0
        and (not r.project_types or project.type in r.project_types.split(","))
        and (not r.counties or project.region.code in r.counties.split(","))
    ]
    held = _reserve_balances([f"contract:{r.number}" for r in rows])
    found = [
        _Wanting(r.id, r.number, int(r.undelivered) - held.get(f"contract:{r.number}", 0), r.next_due)
        for r in rows
    ]
    return sorted(found, key=lambda w: (w.next_due, w.id))


def _reserve_balances(refs: list[str]) -> dict[str, int]:
    if not refs:
        return {}
    rows = db.session.execute(
        select(Account.ref, func.sum(Block.serial_end - Block.serial_start + 1))
        .join(Block, Block.account_id == Account.id)
        .where(Account.kind == AccountKind.RESERVE, Account.ref.in_(refs))
        .group_by(Account.ref)
    )
    return {ref: int(n) for ref, n in rows}


def _release(contract: Contract, quantity: int, *, actor: str, why: str) -> int:
    if quantity <= 0:
        return 0
    movement = ledger.transfer(
        quantity,
        source=_reserve_account(contract),
        destination=ledger.system_account(AccountKind.INVENTORY),
        reference=f"contract:{contract.number}:{why}",
        actor=actor,
    )
    return movement.quantity


# --- coverage -------------------------------------------------------------------------------------


@dataclass
class TrancheCover:
    tranche: Tranche
    reserved: int
    uncovered: int
    late: bool
    invoiced: Decimal
    paid: Decimal

    @property
    def seq(self) -> int:
        return self.tranche.seq


def cover(
    contract: Contract, today: date | None = None, reserve_balance: int | None = None
) -> list[TrancheCover]:
    """Each tranche with what the reserve covers of it (soonest due first), what is uncovered,
    whether it is late, and what was invoiced and paid for it."""
    today = today or beijing_today()
    left = reserved(contract) if reserve_balance is None else reserve_balance
    money = defaultdict(lambda: [Decimal(0), Decimal(0)])
    if contract.status != ContractStatus.DRAFT:
        for tranche_id, amount, paid in db.session.execute(
            select(Delivery.tranche_id, Invoice.amount, Invoice.paid_amount)
            .join(Invoice, Invoice.delivery_id == Delivery.id)
            .where(Delivery.contract_id == contract.id)
        ):
            money[tranche_id][0] += amount
            money[tranche_id][1] += paid
    out = []
    for tranche in contract.tranches:
        covered = min(left, tranche.remaining)
        left -= covered
        live = contract.status == ContractStatus.ACTIVE
        out.append(
            TrancheCover(
                tranche,
                covered,
                tranche.remaining - covered if live else 0,
                live and tranche.remaining > 0 and tranche.due < today,
                *money[tranche.id],
            )
        )
    return out


# --- delivering -----------------------------------------------------------------------------------


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
            got = _top_up(contract, actor=actor, limit=short)
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
        db.session.commit()  # the top-up stands; the delivery is the next transaction
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


# --- invoices -------------------------------------------------------------------------------------


def _invoice(contract: Contract, delivery: Delivery, tranche: Tranche, today: date) -> Invoice:
    unit = price_for(contract, tranche.due)
    invoice = Invoice(
        contract_id=contract.id,
        delivery_id=delivery.id,
        organisation_id=contract.organisation_id,
        quantity=delivery.quantity,
        unit_price=unit,
        amount=unit * delivery.quantity,
        issued_on=today,
        due_on=today + timedelta(days=contract.payment_days),
        status=InvoiceStatus.OPEN,
        paid_amount=Decimal("0.00"),
    )
    _insert_numbered(invoice, Invoice.number, f"INV-{today.year}-", 6)
    return invoice


def _locked_invoice(invoice: Invoice) -> Invoice:
    db.session.execute(select(Invoice.id).where(Invoice.id == invoice.id).with_for_update(of=Invoice))
    db.session.refresh(invoice)
    return invoice


def record_payment(
    invoice: Invoice, amount, received_on, reference, *, actor: str, today: date | None = None
):
    """Staff record a bank transfer received for ``invoice``."""
    today = today or beijing_today()
    amount = parse_money(amount, "amount", _("Amount"), ceiling=MAX_AMOUNT)
    received = _date(received_on, "received_on", _("Received on"))
    if received > today:
        raise ContractError(
            "invalid_received_on", _("The payment cannot be received in the future."), field="received_on"
        )
    if received < invoice.issued_on - timedelta(days=366):
        raise ContractError(
            "invalid_received_on",
            _(
                "A payment for this invoice cannot have been received before %(day)s.",
                day=date_text(invoice.issued_on - timedelta(days=366)),
            ),
            field="received_on",
        )
    reference = _text(reference, field="reference", label=_("Bank reference"), max_length=200, required=True)
    payment = _pay(invoice, amount, received, reference, PaymentMethod.BANK, actor=actor)
    _drop_online_payment(invoice)
    return payment


def _drop_online_payment(invoice: Invoice) -> None:
    """A bank payment changed what is outstanding: the PaymentIntent offered before asks for the
    old amount, so cancel it (best effort: paid anyway, its webhook refunds what is not owed)
    and forget it; the buyer's next "pay online" creates one for what is outstanding now."""
    if not invoice.payment_intent_id:
        return
    try:
        payments.cancel(invoice.payment_intent_id)
    except payments.PaymentError:
        log.warning("could not cancel %s after a bank payment", invoice.payment_intent_id)
    invoice.payment_intent_id = None
    invoice.client_secret = None
    db.session.flush()


def _pay(invoice: Invoice, amount: Decimal, received: date, reference: str, method, *, actor: str):
    invoice = _locked_invoice(invoice)
    if invoice.status == InvoiceStatus.PAID:
        raise ContractError("already_paid", _("Invoice %(n)s is paid.", n=invoice.number), status=409)
    if amount <= 0 or amount > invoice.outstanding or amount.as_tuple().exponent < -2:
        raise ContractError(
            "overpayment",
            _("%(n)s yuan are outstanding on invoice %(inv)s.", n=invoice.outstanding, inv=invoice.number),
            status=409,
            field="amount",
        )
    duplicate = db.session.scalar(
        select(InvoicePayment.id).filter_by(invoice_id=invoice.id, method=method, reference=reference)
    )
    if duplicate is not None:
        raise ContractError(
            "duplicate_reference",
            _("A payment with reference %(ref)s is already recorded.", ref=reference),
            status=409,
            field="reference",
        )
    payment = InvoicePayment(
        invoice_id=invoice.id,
        method=method,
        amount=amount,
        received_on=received,
        reference=reference,
        actor=actor,
    )
    db.session.add(payment)
    invoice.paid_amount += amount
    if invoice.paid_amount == invoice.amount:
        invoice.status = InvoiceStatus.PAID
        invoice.paid_at = utcnow()
    # Revenue as the money comes in, dated the day it was received (statements then match the
    # bank's receipts month by month).
    revenue.record_instalment(
        "invoice",
        invoice.number,
        [(line.batch, invoice.unit_price * line.quantity) for line in invoice.delivery.lines],
        int(invoice.paid_amount * 100),
        received,
    )
    db.session.flush()
    audit.record(
        actor,
        "invoice.payment",
        "invoice",
        invoice.number,
        after={"method": str(method), "amount": amount, "reference": reference, "status": invoice.status},
    )
    if invoice.status == InvoiceStatus.PAID:
        complete_if_done(invoice.contract, actor=actor)
    return payment


def complete_if_done(contract: Contract, *, actor: str) -> bool:
    contract = _locked(contract)
    if contract.status != ContractStatus.ACTIVE or contract.undelivered:
        return False
    unpaid = db.session.scalar(
        select(func.count(Invoice.id)).where(
            Invoice.contract_id == contract.id, Invoice.status != InvoiceStatus.PAID
        )
    )
    if unpaid:
        return False
    contract.status = ContractStatus.COMPLETED
    contract.completed_at = utcnow()
    audit.record(actor, "contract.complete", "contract", contract.number, after={"status": "completed"})
    return True


def start_online_payment(invoice: Invoice) -> Invoice:
    """A PaymentIntent for what is outstanding (created once per outstanding amount)."""
    invoice = _locked_invoice(invoice)
    if invoice.status == InvoiceStatus.PAID:
        raise ContractError("already_paid", _("Invoice %(n)s is paid.", n=invoice.number), status=409)
    fen = payments.to_fen(invoice.outstanding)
    previous = invoice.payment_intent_id
    if previous and invoice.client_secret:
        try:
            current = payments.retrieve(previous)
        except payments.PaymentError:
            current = None
        if current is not None and current.amount == fen and current.status not in ("canceled", "succeeded"):
            return invoice
        if current is not None and current.status not in ("canceled", "succeeded"):
            payments.cancel(previous)  # superseded: a bank payment changed what is outstanding
    try:
        intent = payments.create_payment_intent(
            fen,
            # A new reference whenever an intent is superseded: Stripe would give back the old one.
            reference=f"{invoice.number}-{fen}-{previous or 'first'}",
            metadata={"portal_invoice": invoice.number, "portal_purpose": "invoice"},
        )
    except payments.PaymentError:
        raise ContractError(
            "payment_unavailable", _("Online payment is not available right now."), status=503
        ) from None
    invoice.payment_intent_id = intent.id
    invoice.client_secret = intent.client_secret
    db.session.flush()
    return invoice


@payments.on("payment_intent.succeeded", purpose="invoice")
def invoice_paid_online(intent: dict) -> str:
    intent_id = str(intent.get("id", ""))
    invoice = db.session.scalar(select(Invoice).filter_by(payment_intent_id=intent_id))
    if invoice is None:
        invoice = find_invoice((intent.get("metadata") or {}).get("portal_invoice"))
    if invoice is None:
        log.warning("PaymentIntent %s names no known invoice", intent_id)
        return "unknown_invoice"
    invoice = _locked_invoice(invoice)  # first: two deliveries of the event take turns here
    if db.session.scalar(
        select(InvoicePayment.id).filter_by(method=PaymentMethod.STRIPE, reference=intent_id)
    ):
        return "already_recorded"
    fen = intent.get("amount")
    currency = str(intent.get("currency", "")).lower()
    if currency != "cny" or type(fen) is not int or fen <= 0 or Decimal(fen) / 100 > invoice.outstanding:
        # Paid twice (a bank transfer recorded meanwhile) or a wrong amount: give it back.
        try:
            payments.refund(intent_id, reference=f"invoice-{invoice.number}-{intent_id}")
        except payments.PaymentError:
            log.error("refunding %s for invoice %s failed", intent_id, invoice.number)
        payments.tell_staff(
            _("An invoice payment was refunded"),
            _(
                "PaymentIntent %(intent)s paid %(amount)s fen for invoice %(inv)s, which had %(left)s yuan "
                "outstanding; it was refunded.\n%(url)s\n",
                intent=intent_id,
                amount=fen,
                inv=invoice.number,
                left=invoice.outstanding,
                url=absolute_url("contracts.staff_invoice", number=invoice.number),
            ),
        )
        return "refunded"
    _pay(
        invoice,
        (Decimal(fen) / 100).quantize(CENT),
        beijing_today(),
        intent_id,
        PaymentMethod.STRIPE,
        actor="stripe",
    )
    return "paid"


@payments.on("payment_intent.payment_failed", purpose="invoice")
def invoice_payment_failed(intent: dict) -> str:
    """Nothing to undo: the invoice stays open and the buyer may try again."""
    log.info(
        "PaymentIntent %s for invoice %s failed",
        intent.get("id"),
        (intent.get("metadata") or {}).get("portal_invoice"),
    )
    return "invoice_payment_failed"


@payments.on("charge.refunded", purpose="invoice")
def invoice_payment_refunded(charge: dict) -> str:
    """An online invoice payment refunded in Stripe's dashboard: the refund is reversed in the
    revenue lines (``amount_refunded`` is the charge's total so far, so a repeat reverses nothing
    more), and staff are told, since recorded payments are kept for good (append-only)."""
    intent_id = str(charge.get("payment_intent") or "")
    payment = (
        db.session.scalar(select(InvoicePayment).filter_by(method=PaymentMethod.STRIPE, reference=intent_id))
        if intent_id
        else None
    )
    if payment is None:
        return payments.UNKNOWN
    invoice = _locked_invoice(payment.invoice)
    refunded = charge.get("amount_refunded")
    if type(refunded) is not int or refunded <= 0:
        return "ignored"
    # Taken out of the revenue lines (by the difference, as refunds accumulate); the recorded
    # payment itself stays, as every recorded payment does.
    if not revenue.reverse_sale("invoice", invoice.number, utcnow(), refunded):
        return "already_reversed"
    payments.tell_staff(
        _("An invoice payment was refunded in Stripe"),
        _(
            "The online payment %(intent)s of invoice %(inv)s was refunded in Stripe (%(fen)s fen in all). "
            "The refund was taken out of the revenue lines, but the invoice still counts the payment as "
            "received: please settle this with the buyer.\n%(url)s\n",
            intent=intent_id,
            inv=invoice.number,
            fen=refunded,
            url=absolute_url("contracts.staff_invoice", number=invoice.number),
        ),
    )
    return "staff_told"


def notify_overdue(today: date | None = None, *, actor: str = "system") -> list[Invoice]:
    """Tell the buyer and the owner, once, about every open invoice past its due date."""
    today = today or beijing_today()
    due = list(
        db.session.scalars(
            select(Invoice)
            .where(
                Invoice.status == InvoiceStatus.OPEN,
                Invoice.due_on < today,
                Invoice.overdue_notified_at.is_(None),
            )
            .order_by(Invoice.id)
            .limit(500)
        )
    )
    for invoice in due:
        invoice.overdue_notified_at = utcnow()
        _notify(invoice.contract, _overdue_mail(invoice))
        audit.record(actor, "invoice.overdue", "invoice", invoice.number, after={"due_on": invoice.due_on})
    return due


def _overdue_mail(invoice: Invoice):
    def overdue(for_staff: bool):
        facts = {
            "inv": invoice.number,
            "number": invoice.contract.number,
            "amount": invoice.amount,
            "left": invoice.outstanding,
            "due": date_text(invoice.due_on),
        }
        return (
            _("Invoice %(inv)s is overdue", inv=invoice.number),
            _(
                "Invoice %(inv)s of contract %(number)s with %(buyer)s (%(amount)s yuan, %(left)s yuan "
                "outstanding) was due on %(due)s. The buyer's administrators have been told too.\n%(url)s\n",
                buyer=localized(invoice.contract.organisation, "name"),
                url=absolute_url("contracts.staff_invoice", number=invoice.number),
                **facts,
            )
            if for_staff
            else _(
                "Invoice %(inv)s of contract %(number)s (%(amount)s yuan, %(left)s yuan outstanding) "
                "was due on %(due)s.\n%(url)s\n",
                url=absolute_url("contracts.buyer_invoice", number=invoice.number),
                **facts,
            ),
        )

    return overdue


# --- amending and ending --------------------------------------------------------------------------


def amend(contract: Contract, data: dict, reason, *, actor: str) -> Contract:
    """A new version of an active contract's terms and schedule. Delivered tonnes stay: every
    tranche with a delivery must keep its due date and at least its delivered quantity."""
    contract = _locked(contract)
    check_amendable(contract)
    reason = _text(reason, field="reason", label=_("Reason"), max_length=500, required=True)
    terms = parse_terms(data)
    before = terms_of(contract).as_json()
    if terms.total > contract.total_quantity:
        refusal = policy.purchase_refusal(contract.organisation, terms.total, contract=True)
        if refusal:
            raise ContractError("buyer_refused", refusal, status=403)

    new = list(terms.tranches)
    kept: dict[int, Tranche] = {}  # index in new -> existing tranche carried over
    for tranche in contract.tranches:
        if tranche.delivered == 0:
            continue
        match = next(
            (
                i
                for i, (due, q) in enumerate(new)
                if i not in kept and due == tranche.due and q >= tranche.delivered
            ),
            None,
        )
        if match is None:
            raise ContractError(
                "delivered_tranche",
                _(
                    "Tranche %(seq)s (due %(due)s) has %(n)s t delivered: keep its due date and at least that quantity.",
                    seq=tranche.seq,
                    due=date_text(tranche.due),
                    n=tranche.delivered,
                ),
                field="tranches",
            )
        kept[match] = tranche
    if terms.as_json() == before:
        raise ContractError("no_change", _("The amendment changes nothing."), field="tranches")

    _apply(contract, terms)
    # Renumber without colliding on (contract, seq): park the kept ones out of the way first.
    for tranche in contract.tranches:
        if tranche not in kept.values():
            db.session.delete(tranche)
    db.session.flush()
    db.session.execute(
        update(Tranche).where(Tranche.contract_id == contract.id).values(seq=Tranche.seq + 10_000)
    )
    for i, (due, quantity) in enumerate(new, 1):
        tranche = kept.get(i - 1)
        if tranche is None:
            db.session.add(Tranche(contract_id=contract.id, seq=i, due=due, quantity=quantity))
        else:
            db.session.execute(
                update(Tranche).where(Tranche.id == tranche.id).values(seq=i, quantity=quantity)
            )
    db.session.flush()
    for tranche in kept.values():
        db.session.expire(tranche)
    db.session.expire(contract, ["tranches"])
    contract.version += 1
    _snapshot(contract, reason, actor)

    account = _reserve_account_for_amend(contract)
    excess = ledger.balance(account) - contract.undelivered
    moved = -_release(contract, excess, actor=actor, why="amended") if excess > 0 else 0
    if moved == 0:
        moved = _top_up(contract, actor=actor)
    audit.record(
        actor,
        "contract.amend",
        "contract",
        contract.number,
        before=before,
        after={**terms.as_json(), "version": contract.version, "reason": reason, "reserve_change": moved},
    )
    complete_if_done(contract, actor=actor)  # an amendment may leave nothing more to deliver
    return contract


def _reserve_account_for_amend(contract: Contract) -> Account:
    account = ledger.find_account(AccountKind.RESERVE, contract.reserve_ref)
    return ledger.raise_capacity(account, contract.total_quantity)


def check_termination(contract: Contract, reason) -> str:
    """The reason as it will be kept, if ``contract`` may be terminated; ContractError otherwise.
    Changes nothing (the contract page asks for confirmation next)."""
    if contract.status == ContractStatus.DRAFT:
        raise ContractError(
            "draft_contract", _("A draft is deleted, not terminated: it was never signed."), status=409
        )
    if contract.status != ContractStatus.ACTIVE:
        raise ContractError("not_active", _("This contract has already ended."), status=409)
    return _text(reason, field="reason", label=_("Reason"), max_length=500, required=True)


def terminate(contract: Contract, reason, *, actor: str) -> Contract:
    """End an active contract early; its reserve goes back to inventory. Invoices already
    issued stay payable. (A draft is deleted instead: see ``delete_draft``.)"""
    contract = _locked(contract)
    reason = check_termination(contract, reason)
    released = _release(contract, reserved(contract), actor=actor, why="terminated")
    contract.status = ContractStatus.TERMINATED
    contract.terminated_at = utcnow()
    contract.termination_reason = reason
    audit.record(
        actor,
        "contract.terminate",
        "contract",
        contract.number,
        after={"reason": reason, "released": released},
    )
    return contract


def check_deletable(contract: Contract) -> None:
    """ContractError (409) unless ``contract`` is a draft: only what was never signed may go."""
    if contract.status != ContractStatus.DRAFT:
        raise ContractError(
            "signed_contract",
            _("Only a draft can be deleted; a signed contract is terminated, and its record stays."),
            status=409,
        )


def delete_draft(contract: Contract, *, actor: str) -> str:
    """Delete a draft with its schedule (it was never signed: nothing was reserved, delivered or
    shown to the buyer). The audit log keeps its last terms. Returns the draft's number."""
    contract = _locked(contract)
    check_deletable(contract)
    number = contract.number
    audit.record(
        actor,
        "contract.delete",
        "contract",
        number,
        before={**terms_of(contract).as_json(), "status": contract.status},
    )
    db.session.delete(contract)
    db.session.flush()
    log.info("draft contract %s deleted", number)
    return number


# --- lists ----------------------------------------------------------------------------------------


def visible_to_buyer(contract: Contract | None, organisation: Organisation) -> bool:
    """A buyer sees its own contracts once signed: drafts (even terminated ones) are the sales
    team's work in progress."""
    return (
        contract is not None
        and contract.organisation_id == organisation.id
        and contract.signed_at is not None
    )


def contracts_of(organisation: Organisation) -> list[Contract]:
    """A buyer's contracts (never-signed drafts are the sales team's work and not shown)."""
    return list(
        db.session.scalars(
            select(Contract)
            .where(Contract.organisation_id == organisation.id, Contract.signed_at.is_not(None))
            .order_by(Contract.id.desc())
        )
    )


def all_contracts(
    *, owner: User | None = None, status: str | None = None, limit: int = 500
) -> list[Contract]:
    query = select(Contract).order_by(Contract.id.desc()).limit(limit)
    if owner is not None:
        query = query.where(Contract.owner_id == owner.id)
    if status:
        query = query.where(Contract.status == status)
    return list(db.session.scalars(query))


def due_tranches(*, owner: User | None = None, today: date | None = None, days: int = EARLY_DELIVERY_DAYS):
    """(contract, tranche) of active contracts with tonnes left that are due within ``days``
    or late, soonest first."""
    today = today or beijing_today()
    query = (
        select(Contract, Tranche)
        .join(Tranche, Tranche.contract_id == Contract.id)
        .where(
            Contract.status == ContractStatus.ACTIVE,
            Tranche.delivered < Tranche.quantity,
            Tranche.due <= today + timedelta(days=days),
        )
        .order_by(Tranche.due, Contract.id)
        .limit(500)
    )
    if owner is not None:
        query = query.where(Contract.owner_id == owner.id)
    return db.session.execute(query).all()


def invoices_of(
    *, contract: Contract | None = None, organisation: Organisation | None = None
) -> list[Invoice]:
    query = select(Invoice).order_by(Invoice.id.desc()).limit(500)
    if contract is not None:
        query = query.where(Invoice.contract_id == contract.id)
    if organisation is not None:
        query = query.where(Invoice.organisation_id == organisation.id)
    return list(db.session.scalars(query))


def overdue_invoices(*, owner: User | None = None, today: date | None = None) -> list[Invoice]:
    today = today or beijing_today()
    query = (
        select(Invoice)
        .join(Contract, Contract.id == Invoice.contract_id)
        .where(Invoice.status == InvoiceStatus.OPEN, Invoice.due_on < today)
        .order_by(Invoice.due_on)
        .limit(500)
    )
    if owner is not None:
        query = query.where(Contract.owner_id == owner.id)
    return list(db.session.scalars(query))


#: The staff invoice list's status filters: every unpaid invoice; unpaid ones not yet past their
#: due date; unpaid ones past it (``Invoice.is_overdue``); paid ones.
INVOICE_FILTERS = ("open", "due", "overdue", "paid")
#: Ageing of what is outstanding, by days past the due date: 0–30 (due today counts as 0), 31–60,
#: 61–90 and over 90 (``None``: no upper end). What is not yet due is counted apart.
AGEING = ((0, 30), (31, 60), (61, 90), (91, None))


def days_past_due(invoice: Invoice, today: date) -> int | None:
    """Days since the invoice fell due (0 on the due date), or None: paid, or not yet due."""
    if invoice.status != InvoiceStatus.OPEN or invoice.due_on > today:
        return None
    return (today - invoice.due_on).days


def ageing_bucket(days: int | None) -> tuple[int, int | None] | None:
    """The ``AGEING`` bucket of ``days`` past due (None for None)."""
    if days is None:
        return None
    return next(b for b in AGEING if b[0] <= days and (b[1] is None or days <= b[1]))


@dataclass
class InvoiceTotals:
    count: int
    amount: Decimal
    paid: Decimal
    outstanding: Decimal
    not_due: Decimal  #: outstanding, not yet due
    ageing: dict  #: ``AGEING`` bucket → outstanding in it


def invoice_query(
    *, today: date, status: str = "", organisation: Organisation | None = None, owner: User | None = None
):
    """Invoices by status (one of ``INVOICE_FILTERS``, or "" for all), buyer and sales owner:
    unpaid first, then by due date."""
    query = select(Invoice).join(Contract, Contract.id == Invoice.contract_id)
    if status == "open":
        query = query.where(Invoice.status == InvoiceStatus.OPEN)
    elif status == "due":
        query = query.where(Invoice.status == InvoiceStatus.OPEN, Invoice.due_on >= today)
    elif status == "overdue":
        query = query.where(Invoice.status == InvoiceStatus.OPEN, Invoice.due_on < today)
    elif status == "paid":
        query = query.where(Invoice.status == InvoiceStatus.PAID)
    elif status:
        raise ValueError(status)
    if organisation is not None:
        query = query.where(Invoice.organisation_id == organisation.id)
    if owner is not None:
        query = query.where(Contract.owner_id == owner.id)
    return query.order_by(Invoice.status, Invoice.due_on, Invoice.id)


def invoice_totals(query, today: date) -> InvoiceTotals:
    """What the invoices of ``invoice_query`` add up to, in one grouped query: invoiced, paid,
    outstanding, and the outstanding amount by age (``AGEING``)."""
    found = query.order_by(None).subquery()
    outstanding = found.c.amount - found.c.paid_amount
    unpaid = found.c.status == InvoiceStatus.OPEN

    def owed(*conditions):
        return func.coalesce(func.sum(case((and_(unpaid, *conditions), outstanding), else_=0)), 0)

    columns = [
        func.count(found.c.id),
        func.coalesce(func.sum(found.c.amount), 0),
        func.coalesce(func.sum(found.c.paid_amount), 0),
        owed(),
        owed(found.c.due_on > today),
    ]
    for low, high in AGEING:
        conditions = [found.c.due_on <= today - timedelta(days=low)]
        if high is not None:
            conditions.append(found.c.due_on >= today - timedelta(days=high))
        columns.append(owed(*conditions))
    row = db.session.execute(select(*columns)).one()
    money = [Decimal(v).quantize(CENT) for v in row[1:]]
    return InvoiceTotals(
        count=row[0],
        amount=money[0],
        paid=money[1],
        outstanding=money[2],
        not_due=money[3],
        ageing=dict(zip(AGEING, money[4:], strict=True)),
    )


def invoice_owners() -> list[User]:
    """The staff who own contracts with invoices (the invoice list's owner filter)."""
    return list(
        db.session.scalars(
            select(User)
            .where(exists().where(Contract.owner_id == User.id, Invoice.contract_id == Contract.id))
            .order_by(User.email)
        )
    )


def invoice_buyers() -> list[Organisation]:
    """The organisations that have been invoiced (the invoice list's buyer filter)."""
    return list(
        db.session.scalars(
            select(Organisation)
            .where(exists().where(Invoice.organisation_id == Organisation.id))
            .order_by(Organisation.name_zh)
        )
    )


def deliveries_of(contract: Contract) -> list[Delivery]:
    return list(db.session.scalars(select(Delivery).filter_by(contract_id=contract.id).order_by(Delivery.id)))


# --- supply planning ------------------------------------------------------------------------------


@dataclass
class PlanYear:
    year: int
    contracted: int = 0
    delivered: int = 0
    reserved: int = 0
    uncovered: int = 0


@dataclass
class Plan:
    years: list[PlanYear]
    available: dict[str, int]  #: listed inventory by standard, not reserved by anyone
    active_contracts: int


def plan() -> Plan:
    """Contracted vs delivered vs reserved vs uncovered by the year tranches are due, for
    active contracts, with the unreserved listed stock beside it.

    The database does the work: each contract's reserve is dealt to its undelivered tranches in
    due order with a running sum (a window function), and the rows come back grouped by due
    date, so the cost does not grow with the number of tranches handled in Python."""
    remaining = Tranche.quantity - Tranche.delivered
    reserve = (
        select(Account.ref.label("ref"), func.sum(Block.serial_end - Block.serial_start + 1).label("held"))
        .join(Block, Block.account_id == Account.id)
        .where(Account.kind == AccountKind.RESERVE)
        .group_by(Account.ref)
        .subquery()
    )
    per_tranche = (
        select(
            Tranche.contract_id,
            Tranche.due,
            Tranche.quantity,
            Tranche.delivered,
            remaining.label("remaining"),
            # What the reserve has left once the earlier tranches of the contract are covered.
            (
                func.coalesce(reserve.c.held, 0)
                - func.sum(remaining).over(partition_by=Tranche.contract_id, order_by=Tranche.seq)
                + remaining
            ).label("left"),
        )
        .join(Contract, Contract.id == Tranche.contract_id)
        .outerjoin(reserve, reserve.c.ref == literal("contract:") + Contract.number)
        .where(Contract.status == ContractStatus.ACTIVE)
        .subquery()
    )
    covered = case(
        (per_tranche.c.left <= 0, 0),
        (per_tranche.c.left >= per_tranche.c.remaining, per_tranche.c.remaining),
        else_=per_tranche.c.left,
    )
    rows = db.session.execute(
        select(
            per_tranche.c.due,
            func.sum(per_tranche.c.quantity),
            func.sum(per_tranche.c.delivered),
            func.sum(covered),
            func.sum(per_tranche.c.remaining - covered),
        ).group_by(per_tranche.c.due)
    )
    years: dict[int, PlanYear] = {}
    for due, contracted, delivered, reserved_, uncovered in rows:
        year = (due if isinstance(due, date) else date.fromisoformat(str(due))).year
        y = years.setdefault(year, PlanYear(year))
        y.contracted += int(contracted)
        y.delivered += int(delivered)
        y.reserved += int(reserved_)
        y.uncovered += int(uncovered)
    active = db.session.scalar(
        select(func.count()).select_from(Contract).where(Contract.status == ContractStatus.ACTIVE)
    )
    available = ledger.held_per_batch(AccountKind.INVENTORY, Batch.id)
    stock = db.session.execute(
        select(Project.standard, func.sum(available))
        .select_from(Batch)
        .join(Project, Project.id == Batch.project_id)
        .join(Listing, Listing.batch_id == Batch.id)
        .where(Listing.is_active.is_(True))
        .group_by(Project.standard)
    )
    return Plan(
        [years[y] for y in sorted(years)],
        {standard: int(n or 0) for standard, n in stock},
        active,
    )


# --- mail -----------------------------------------------------------------------------------------


def _notify(contract: Contract, write) -> None:
    """Tell the buyer's administrators and the contract's sales owner, each in words of its own
    and with a link it can open: ``write(for_staff)`` gives the (subject, body) of a message,
    for the buyer (its account's pages) or for the owner (the back office's). Each message is
    written in its recipient's language."""
    recipients = [
        (user, False)
        for user in db.session.scalars(
            select(User)
            .filter_by(organisation_id=contract.organisation_id, is_org_admin=True, is_active=True)
            .order_by(User.email)
        )
    ]
    if contract.owner is not None and contract.owner.is_active:
        recipients.append((contract.owner, True))
    for user, for_staff in recipients:
        with mail.in_recipient_language(user):
            subject, body = write(for_staff)
        mail.send(user.email, subject, body)


# --- new stock ------------------------------------------------------------------------------------

from portal.catalog.services import stock_listed  # noqa: E402  (the catalog must not import contracts)


@stock_listed.connect
def _reserve_new_stock(batch, actor: str = "system", **_kwargs) -> None:
    reserve_from_batch(batch, actor=actor)
