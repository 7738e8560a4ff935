"""Reading and checking what a buyer asks for in a request for quote. ``parse_request`` takes the
dict a form (or a test) gives and returns :class:`Wanted`, or raises :class:`RfqError` on the
first problem, naming the field at fault. Nothing here writes to the database (it reads the
catalog only to know the projects named)."""

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from flask_babel import gettext as _
from sqlalchemy import select

from portal.catalog.models import Project, ProjectType
from portal.core.errors import ServiceError
from portal.core.i18n import date_text
from portal.core.money import MAX_PRICE_PER_T
from portal.core.numbers import CENT, money, whole
from portal.core.text import clean_text
from portal.extensions import db
from portal.ledger.models import MAX_QUANTITY
from portal.rfq.models import ScheduleKind
from portal.timeutil import beijing_today

STANDARDS = ("CCER", "VCS")
#: The most tranches a schedule may have (quarterly over thirty years).
MAX_TRANCHES = 120
MAX_PROJECTS = 10
NOTES_MAX = 2000
MESSAGE_MAX = 2000
#: Deliveries may be asked for at most this many years ahead.
MAX_YEARS_AHEAD = 30
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


class RfqError(ServiceError):
    """A refused request-for-quote action: nothing was saved, sent or drafted."""


@dataclass
class Wanted:
    """A request for quote as checked: what, how much, when, and who to talk to."""

    quantity: int
    standards: list[str]
    project_types: list[str]
    projects: list[str]
    vintage_from: int | None
    vintage_to: int | None
    schedule: str
    tranches: list[tuple[date, int]]
    price_expectation: Decimal | None
    contact_name: str
    contact_email: str
    contact_phone: str
    notes: str

    def as_json(self) -> dict:
        return {
            "quantity": self.quantity,
            "standards": self.standards,
            "project_types": self.project_types,
            "projects": self.projects,
            "vintage_from": self.vintage_from,
            "vintage_to": self.vintage_to,
            "schedule": self.schedule,
            "tranches": [{"due": d.isoformat(), "quantity": q} for d, q in self.tranches],
            "price_expectation": None if self.price_expectation is None else str(self.price_expectation),
            "contact_name": self.contact_name,
            "contact_email": self.contact_email,
        }


def parse_request(data: dict, today: date | None = None) -> Wanted:
    """Check everything a request for quote says, in a fixed order (so that the first problem
    reported does not change); RfqError naming the field otherwise."""
    if not isinstance(data, dict):
        raise RfqError("invalid_request", _("The request could not be understood."))
    today = today or beijing_today()
    quantity = parse_quantity(data.get("quantity"))
    standards = _codes(data.get("standards"), STANDARDS, "standards", _("Choose CCER, VCS or both."))
    types = _codes(
        data.get("project_types"),
        tuple(t.value for t in ProjectType),
        "project_types",
        _("Unknown project type."),
    )
    projects = _projects(data.get("projects"))
    vintage_from = _year(data.get("vintage_from"), "vintage_from", _("Vintage from"))
    vintage_to = _year(data.get("vintage_to"), "vintage_to", _("Vintage to"))
    if vintage_from and vintage_to and vintage_from > vintage_to:
        raise RfqError(
            "invalid_vintage",
            _("The vintage range is reversed: %(a)s comes after %(b)s.", a=vintage_from, b=vintage_to),
            field="vintage_to",
        )
    schedule = data.get("schedule") or ScheduleKind.ONE_OFF
    if schedule not in {k.value for k in ScheduleKind}:
        raise RfqError("invalid_schedule", _("Choose how the tonnes are delivered."), field="schedule")
    tranches = _tranches(data.get("tranches"), quantity, ScheduleKind(schedule), today)
    price = None
    if data.get("price_expectation") not in (None, ""):
        price = money(data.get("price_expectation"), CENT, MAX_PRICE_PER_T)
        if price is None:
            raise RfqError(
                "invalid_price_expectation",
                _(
                    "The price you expect must be an amount in yuan per tonne above zero and at most %(max)s, with at most two decimals.",
                    max=MAX_PRICE_PER_T,
                ),
                field="price_expectation",
            )
    contact_name = _text(data.get("contact_name"), "contact_name", _("Contact name"), 100, required=True)
    contact_email = _text(data.get("contact_email"), "contact_email", _("Contact e-mail"), 254, required=True)
    if not _EMAIL.fullmatch(contact_email):
        raise RfqError(
            "invalid_contact_email",
            _("%(email)s is not a valid e-mail address.", email=contact_email),
            field="contact_email",
        )
    contact_phone = _text(data.get("contact_phone"), "contact_phone", _("Contact phone"), 40, required=False)
    notes = _text(data.get("notes"), "notes", _("Notes"), NOTES_MAX, required=False)
    return Wanted(
        quantity=quantity,
        standards=standards,
        project_types=types,
        projects=projects,
        vintage_from=vintage_from,
        vintage_to=vintage_to,
        schedule=schedule,
        tranches=tranches,
        price_expectation=price,
        contact_name=contact_name,
        contact_email=contact_email,
        contact_phone=contact_phone,
        notes=notes,
    )


def parse_quantity(value) -> int:
    quantity = whole(value, 1, MAX_QUANTITY)
    if quantity is None:
        raise RfqError(
            "invalid_quantity",
            _("The quantity must be a whole number of tonnes from 1 to %(max)s.", max=MAX_QUANTITY),
            field="quantity",
        )
    return quantity


def _tranches(raw, quantity: int, schedule: ScheduleKind, today: date) -> list[tuple[date, int]]:
    """The schedule as (date, tonnes) in date order: dates after today, tonnes adding up to the
    quantity; one tranche for a single delivery, one a year or a quarter for the others."""
    if not isinstance(raw, list) or not raw:
        raise RfqError("invalid_tranches", _("Give at least one delivery date."), field="tranches")
    if len(raw) > MAX_TRANCHES:
        raise RfqError("invalid_tranches", _("At most %(n)s tranches.", n=MAX_TRANCHES), field="tranches")
    if schedule == ScheduleKind.ONE_OFF and len(raw) != 1:
        raise RfqError(
            "invalid_tranches",
            _("A single delivery has one date; choose yearly or quarterly tranches for more."),
            field="tranches",
        )
    tranches = []
    for index, item in enumerate(raw, 1):
        if not isinstance(item, dict):
            raise RfqError("invalid_tranches", _("Each tranche needs a date and tonnes."), field="tranches")
        due = _date(item.get("due"), index)
        tonnes = whole(item.get("quantity"), 1, MAX_QUANTITY)
        if tonnes is None:
            raise RfqError(
                "invalid_tranches",
                _("Tranche %(n)s: the tonnes must be a whole number above zero.", n=index),
                field="tranches",
            )
        if due <= today:
            raise RfqError(
                "past_date",
                _(
                    "Tranche %(n)s is due on %(due)s: delivery dates must be in the future.",
                    n=index,
                    due=date_text(due),
                ),
                field="tranches",
            )
        if due.year > today.year + MAX_YEARS_AHEAD:
            raise RfqError(
                "invalid_tranches",
                _("Tranche %(n)s is more than %(years)s years ahead.", n=index, years=MAX_YEARS_AHEAD),
                field="tranches",
            )
        tranches.append((due, tonnes))
    tranches.sort(key=lambda t: t[0])
    total = sum(q for _d, q in tranches)
    if total != quantity:
        raise RfqError(
            "tranches_total",
            _(
                "The tranches add up to %(sum)s t, not the %(quantity)s t requested.",
                sum=total,
                quantity=quantity,
            ),
            field="tranches",
        )
    if schedule == ScheduleKind.YEARLY:
        periods = [d.year for d, _q in tranches]
        if len(set(periods)) != len(periods):
            raise RfqError(
                "invalid_tranches", _("Yearly tranches fall in different years."), field="tranches"
            )
    if schedule == ScheduleKind.QUARTERLY:
        periods = [(d.year, (d.month - 1) // 3) for d, _q in tranches]
        if len(set(periods)) != len(periods):
            raise RfqError(
                "invalid_tranches", _("Quarterly tranches fall in different quarters."), field="tranches"
            )
    return tranches


def _date(value, index: int) -> date:
    if isinstance(value, date):
        return value
    if isinstance(value, str) and len(value) <= 20:
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise RfqError(
        "invalid_tranches",
        _("Tranche %(n)s: the date must be a date (YYYY-MM-DD).", n=index),
        field="tranches",
    )


def _codes(value, allowed: tuple, field: str, message: str) -> list[str]:
    """Codes from a fixed vocabulary, as a list or one comma-separated string."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list | tuple) or len(value) > 50 or not all(isinstance(v, str) for v in value):
        raise RfqError("invalid_" + field, message, field=field)
    codes = sorted({v.strip() for v in value if v.strip()})
    if any(c not in allowed for c in codes):
        raise RfqError("invalid_" + field, message, field=field)
    return codes


def _projects(value) -> list[str]:
    """Codes of catalog projects the buyer named; each must exist."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) and len(v) <= 32 for v in value):
        raise RfqError("invalid_projects", _("Name projects by their codes."), field="projects")
    codes = sorted({v.strip() for v in value if v.strip()})
    if len(codes) > MAX_PROJECTS:
        raise RfqError(
            "invalid_projects", _("Name at most %(n)s projects.", n=MAX_PROJECTS), field="projects"
        )
    if codes:
        known = set(db.session.scalars(select(Project.code).where(Project.code.in_(codes))))
        unknown = [c for c in codes if c not in known]
        if unknown:
            raise RfqError(
                "invalid_projects",
                _("There is no project %(code)s in the catalog.", code=unknown[0]),
                field="projects",
            )
    return codes


def _year(value, field: str, label: str) -> int | None:
    if value in (None, ""):
        return None
    year = whole(value, 2000, 2100)
    if year is None:
        raise RfqError(
            "invalid_" + field, _("%(field)s must be a year from 2000 to 2100.", field=label), field=field
        )
    return year


def _text(value, field: str, label: str, max_length: int, *, required: bool) -> str:
    return clean_text(
        value, field=field, label=label, max_length=max_length, required=required, error=RfqError
    )


def message_text(value) -> str:
    """A reply or a decline's reason: text, required, at most ``MESSAGE_MAX`` characters."""
    return _text(value, "body", _("Message"), MESSAGE_MAX, required=True)


def reason_text(value) -> str:
    """A decline's reason: text, required, at most 500 characters."""
    return _text(value, "reason", _("Reason"), 500, required=True)
