"""The operator dashboard's figures: inventory, sales and retirements over time, top buyers.

Each figure is a list of (label, value) rows, drawn as a bar chart (server-side SVG) and shown
as a table. A handful of grouped queries; no per-row work in Python beyond folding groups.
"""

import math
import unicodedata
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import extract, func, literal_column, select

from portal.buyers.models import Organisation
from portal.catalog.models import Project, Region
from portal.certificates.models import Certificate, CertificateStatus
from portal.core.database import is_postgresql
from portal.core.i18n import localized, month_text
from portal.core.money import yuan_of
from portal.extensions import db
from portal.ledger.models import Account, AccountKind, Batch, Block
from portal.registry import instructions as registry_instructions
from portal.registry import overdue as registry_overdue
from portal.revenue.models import RevenueLine
from portal.timeutil import BEIJING

TONNES = Block.serial_end - Block.serial_start + 1


@dataclass(frozen=True)
class Figure:
    rows: list  #: (label, value)

    @property
    def total(self):
        return sum(value for _label, value in self.rows)

    @property
    def largest(self):
        return max((value for _label, value in self.rows), default=0)


def inventory() -> dict[str, Figure]:
    """Tonnes for sale (the inventory account) by county, project type, standard and vintage."""
    rows = db.session.execute(
        select(
            Region.id, Project.type, Project.standard, extract("year", Batch.vintage_start), func.sum(TONNES)
        )
        .select_from(Block)
        .join(Account, Account.id == Block.account_id)
        .join(Batch, Batch.id == Block.batch_id)
        .join(Project, Project.id == Batch.project_id)
        .join(Region, Region.id == Project.region_id)
        .where(Account.kind == AccountKind.INVENTORY)
        .group_by(Region.id, Project.type, Project.standard, extract("year", Batch.vintage_start))
    ).all()
    regions = {r.id: r for r in db.session.scalars(select(Region))}
    by = {name: defaultdict(int) for name in ("county", "type", "standard", "vintage")}
    for region_id, type_, standard, year, tonnes in rows:
        by["county"][region_id] += int(tonnes)
        by["type"][type_] += int(tonnes)
        by["standard"][standard] += int(tonnes)
        by["vintage"][int(year)] += int(tonnes)
    from portal.catalog.models import PROJECT_TYPE_LABELS

    return {
        "county": Figure(
            sorted(((localized(regions[k], "name"), v) for k, v in by["county"].items()), key=lambda r: -r[1])
        ),
        "type": Figure(
            sorted(
                ((str(PROJECT_TYPE_LABELS.get(k, k)), v) for k, v in by["type"].items()), key=lambda r: -r[1]
            )
        ),
        "standard": Figure(sorted(by["standard"].items())),
        "vintage": Figure(sorted(by["vintage"].items())),
    }


def _months(today: date, count: int = 12) -> list[tuple[int, int]]:
    months, year, month = [], today.year, today.month
    for _ in range(count):
        months.append((year, month))
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return list(reversed(months))


def _beijing_month(moment):
    """``YYYY-MM`` of a UTC timestamp column in Beijing, computed by the database. The constants
    are written inline: as bound parameters, PostgreSQL would not see that the select and the
    GROUP BY hold the same expression."""
    if is_postgresql():
        return func.to_char(
            func.timezone(literal_column(f"'{BEIJING.key}'"), moment), literal_column("'YYYY-MM'")
        )
    # SQLite keeps UTC as naive text; Beijing has had no summer time since 1991.
    return func.strftime(literal_column("'%Y-%m'"), moment, literal_column("'+8 hours'"))


def over_time(today: date) -> dict[str, Figure]:
    """Sales received (yuan) and tonnes retired under valid certificates, month by month; both in
    Beijing months (of the payment date, of the retirement time) so that they line up."""
    months = _months(today)
    first = date(*months[0], 1)
    sales = dict(
        ((int(y), int(m)), int(fen))
        for y, m, fen in db.session.execute(
            select(
                extract("year", RevenueLine.paid_on),
                extract("month", RevenueLine.paid_on),
                func.sum(RevenueLine.amount_fen),
            )
            .where(RevenueLine.paid_on >= first)
            .group_by(extract("year", RevenueLine.paid_on), extract("month", RevenueLine.paid_on))
        )
    )
    month = _beijing_month(Certificate.retired_at)
    retired = dict(
        (label, int(t))
        for label, t in db.session.execute(
            select(month, func.sum(Certificate.quantity))
            .where(
                Certificate.status == CertificateStatus.VALID,
                Certificate.retired_at >= datetime(first.year, first.month, 1, tzinfo=BEIJING),
            )
            .group_by(month)
        )
    )
    return {
        "sales": Figure([(month_text(y, m), yuan_of(sales.get((y, m), 0))) for y, m in months]),
        "retired": Figure([(month_text(y, m), retired.get(f"{y}-{m:02d}", 0)) for y, m in months]),
    }


@dataclass(frozen=True)
class Queues:
    """The work waiting for staff, each with the page where it is done."""

    pending_organisations: int  #: registered, waiting for the operator's approval
    awaiting_payment: int  #: checkout orders holding stock until they are paid or expire
    overdue_invoices: int  #: open contract invoices past their due date …
    overdue_amount: Decimal  #: … and what is outstanding on them
    registry_pending: int = 0  #: registry instructions awaiting the registry's confirmation …
    registry_overdue: int = 0  #: … of them, those waiting beyond the configured working days


def queues(today: date) -> Queues:
    from portal.buyers.models import OrgStatus
    from portal.contracts.models import Invoice, InvoiceStatus
    from portal.offsets.models import Order, OrderStatus

    count, outstanding = db.session.execute(
        select(
            func.count(Invoice.id), func.coalesce(func.sum(Invoice.amount - Invoice.paid_amount), 0)
        ).where(Invoice.status == InvoiceStatus.OPEN, Invoice.due_on < today)
    ).one()
    return Queues(
        pending_organisations=db.session.scalar(
            select(func.count(Organisation.id)).where(Organisation.status == OrgStatus.PENDING)
        ),
        awaiting_payment=db.session.scalar(
            select(func.count(Order.id)).where(Order.status == OrderStatus.AWAITING_PAYMENT)
        ),
        overdue_invoices=count,
        overdue_amount=Decimal(outstanding),
        registry_pending=registry_instructions.pending_count(),
        registry_overdue=registry_overdue.overdue_count(today),
    )


def top_buyers(limit: int = 10) -> Figure:
    """Organisations by tonnes retired under valid certificates."""
    rows = db.session.execute(
        select(Organisation, func.sum(Certificate.quantity).label("tonnes"))
        .join(Certificate, Certificate.organisation_id == Organisation.id)
        .where(Certificate.status == CertificateStatus.VALID)
        .group_by(Organisation.id)
        .order_by(func.sum(Certificate.quantity).desc())
        .limit(limit)
    ).all()
    return Figure([(localized(org, "name"), int(tonnes)) for org, tonnes in rows])


# --- drawing ---------------------------------------------------------------------------------


def text_width(text, font_px: float) -> int:
    """About how wide ``text`` is set at ``font_px``: a full em for wide (Chinese) characters, 0.62
    em for others (a generous average for the sans-serif fonts the portal asks for), so that what
    is drawn to fit does fit."""
    return math.ceil(
        sum(1.0 if unicodedata.east_asian_width(ch) in "WF" else 0.62 for ch in str(text)) * font_px
    )


def fit_label(text, room: float, font_px: float) -> str:
    """``text``, cut short with "…" where it would not fit in ``room`` pixels at ``font_px``."""
    text = str(text)
    if text_width(text, font_px) <= room:
        return text
    while text and text_width(text + "…", font_px) > room:
        text = text[:-1]
    return text.rstrip() + "…"
