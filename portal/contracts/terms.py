"""A contract's terms: reading and checking what a draft or an amendment says (``parse_terms``),
the terms of a contract as stored (``terms_of``), and the price per tonne in a given year
(``price_for``). Nothing here writes to the database (it reads it only to know the counties);
``_apply`` copies checked terms onto a contract for the drafting steps."""

import json
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal

from flask_babel import gettext as _
from sqlalchemy import select

from portal.catalog.models import ProjectType, Region
from portal.certificates import services as certificates
from portal.contracts.common import CENT, ContractError
from portal.contracts.models import Contract, DeliveryMode
from portal.core.errors import ServiceError
from portal.core.i18n import date_text
from portal.core.money import MAX_PRICE_PER_T
from portal.core.numbers import money, whole
from portal.extensions import db
from portal.ledger.models import MAX_QUANTITY
from portal.timeutil import iso_date

MAX_PRICE = MAX_PRICE_PER_T
MAX_TERM_YEARS = 30
MAX_TRANCHES = 120
TITLE_MAX = 200
STANDARDS = ("CCER", "VCS")
#: The largest amount the money columns hold (NUMERIC(14, 2)).
MAX_AMOUNT = Decimal("999999999999.99")


# --- reading the terms ----------------------------------------------------------------------------


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


def parse_terms(data: dict) -> Terms:
    """Check everything a draft or an amendment says; ContractError on the first problem (the
    steps run in this order, so which problem is reported first does not change)."""
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
    start, end = _term(data.get("start"), data.get("end"))
    price = parse_money(data.get("price_per_t"), "price_per_t", _("Price per tonne"))
    escalation = _percent_bp(data.get("escalation_pct_per_year"))
    year_prices = _year_prices(data.get("year_prices"), start, end)
    standard = _standard(data.get("standard"))
    types = _project_types(data.get("project_types"))
    counties = _counties(data.get("counties"))
    vintage_from, vintage_to = _vintage(data.get("vintage_from"), data.get("vintage_to"))
    mode = _delivery_mode(data.get("delivery"))
    payment_days = _payment_days(data.get("payment_days", 30))
    tranches = _tranches(data.get("tranches"), start, end)
    _check_tranche_prices(tranches, price, escalation, year_prices, start)
    _check_stated_total(data.get("total_quantity"), tranches)
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


def _term(start, end) -> tuple[date, date]:
    """The term's first and last day: within 2000–2100, in order, at most ``MAX_TERM_YEARS``."""
    start = _date(start, "start", _("Start"))
    end = _date(end, "end", _("End"))
    if start.year < 2000 or end.year > 2100:
        raise ContractError("invalid_term", _("The term must lie between 2000 and 2100."), field="start")
    if end < start:
        raise ContractError("invalid_term", _("The term must end after it starts."), field="end")
    if (end - start).days > MAX_TERM_YEARS * 366:
        raise ContractError(
            "invalid_term", _("A term may be at most %(n)s years.", n=MAX_TERM_YEARS), field="end"
        )
    return start, end


def _year_prices(raw_prices, start: date, end: date) -> dict[str, Decimal]:
    """Fixed prices for some calendar years of the term, as ``{"2027": Decimal("70.00")}``."""
    raw_prices = raw_prices or {}
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
    return year_prices


def _standard(value) -> str:
    """The standard the delivered credits must meet, or "" for either."""
    standard = value or ""
    if not isinstance(standard, str) or standard not in ("", *STANDARDS):
        raise ContractError("invalid_standard", _("The standard must be CCER or VCS."), field="standard")
    return standard


def _project_types(value) -> list[str]:
    """The project types the delivered credits may come from (none: any)."""
    types = _list(value, "project_types", _("Unknown project type."))
    if any(t not in {p.value for p in ProjectType} for t in types):
        raise ContractError("invalid_project_types", _("Unknown project type."), field="project_types")
    return types


def _counties(value) -> list[str]:
    """The counties (region codes) the delivered credits may come from (none: any)."""
    counties = _list(value, "counties", _("Unknown county."))
    if counties:
        known = set(db.session.scalars(select(Region.code).where(Region.code.in_(counties))))
        if any(c not in known for c in counties):
            raise ContractError("invalid_counties", _("Unknown county."), field="counties")
    return counties


def _vintage(first, last) -> tuple[int | None, int | None]:
    """The window of vintage years the delivered credits may have (either end may be open)."""
    vintage_from = _year(first, "vintage_from", _("Vintage from"))
    vintage_to = _year(last, "vintage_to", _("Vintage to"))
    if vintage_from and vintage_to and vintage_from > vintage_to:
        raise ContractError(
            "invalid_vintage", _("The vintage window must end after it starts."), field="vintage_to"
        )
    return vintage_from, vintage_to


def _delivery_mode(value) -> str:
    """How tranches are delivered by default: to the buyer's holding, or retired."""
    mode = value or DeliveryMode.HOLDING
    if not isinstance(mode, str) or mode not in {m.value for m in DeliveryMode}:
        raise ContractError(
            "invalid_delivery", _("Delivery must be to the holding or retired."), field="delivery"
        )
    return mode


def _payment_days(value) -> int:
    """Days an invoice has before it is due (none given: 30)."""
    payment_days = whole(value, 0, 365) if value not in (None, "") else 30
    if payment_days is None:
        raise ContractError(
            "invalid_payment_days", _("Payment terms must be 0 to 365 days."), field="payment_days"
        )
    return payment_days


def _tranches(raw_tranches, start: date, end: date) -> list[tuple[date, int]]:
    """The schedule as (due, tonnes), due within the term, sorted by due date."""
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
    return tranches


def _check_tranche_prices(tranches, price: Decimal, escalation: int, year_prices: dict, start: date) -> None:
    """Every tranche's price per tonne (escalated or fixed for its year) stays within
    ``MAX_PRICE``, and its invoice within what the money columns hold."""
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


def _check_stated_total(stated, tranches) -> None:
    """A total typed as a cross-check must be what the tranches add up to."""
    total = sum(q for _d, q in tranches)
    if stated not in (None, "") and whole(stated, 1, MAX_QUANTITY) != total:
        raise ContractError(
            "tranches_total",
            _("The tranches add up to %(sum)s t, not the contract's %(total)s t.", sum=total, total=stated),
            field="tranches",
        )


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
    day = iso_date(value)
    if day is not None:
        return day
    raise ContractError(
        "invalid_" + field, _("%(field)s must be a date (YYYY-MM-DD).", field=label), field=field
    )


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
