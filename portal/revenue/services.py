"""Revenue sharing: rules, the lines of each paid sale, statements.

Rounding (stated on every statement): the county's share of a line is the line's amount times
the county percentage, rounded to the fen half to even; the city's share is the rest. So the two
shares of every line add up exactly to the amount paid, and the lines of a sale to the sale.
"""

from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_EVEN, Decimal

from flask_babel import gettext as _
from sqlalchemy import bindparam, case, or_, select
from sqlalchemy.exc import IntegrityError

from portal.audit import services as audit
from portal.catalog.models import ProjectType, Region
from portal.core.errors import ServiceError
from portal.core.i18n import date_text
from portal.core.money import apportion, yuan_of  # noqa: F401  (yuan_of: for the views)
from portal.core.money import fen as fen_of
from portal.core.numbers import money
from portal.extensions import db
from portal.revenue.models import RevenueLine, SharingRule
from portal.timeutil import BEIJING


class RevenueError(ServiceError):
    """A refused sharing rule: nothing changed."""


# --- rules -------------------------------------------------------------------------------------


def _percent(raw, field: str) -> Decimal:
    value = money(raw, Decimal(0), Decimal(100))  # the format of an amount: digits, two decimals
    if value is None:
        raise RevenueError(
            "invalid_share",
            _("A share is a percentage from 0 to 100, with at most two decimals."),
            field=field,
        )
    return value


def add_rule(
    *,
    effective_from,
    city_pct,
    county_pct,
    region_code: str = "",
    project_type: str = "",
    note: str = "",
    actor: str,
) -> SharingRule:
    """A new rule from ``effective_from`` on; past lines are never touched."""
    if not isinstance(effective_from, date):
        try:
            effective_from = date.fromisoformat(str(effective_from).strip())
        except ValueError:
            raise RevenueError(
                "invalid_date", _("Enter the date as YYYY-MM-DD."), field="effective_from"
            ) from None
    city, county = _percent(city_pct, "city_pct"), _percent(county_pct, "county_pct")
    if city + county != 100:
        raise RevenueError(
            "shares_do_not_add_up",
            _(
                "The city's and the county's shares must add up to 100 %% (they add up to %(total)s %%).",
                total=city + county,
            ),
            field="county_pct",
        )
    region_code = (region_code or "").strip()
    if region_code and db.session.scalar(select(Region.id).filter_by(code=region_code)) is None:
        raise RevenueError("unknown_county", _("There is no such county-level unit."), field="region_code")
    project_type = (project_type or "").strip()
    if project_type and project_type not in {t.value for t in ProjectType}:
        raise RevenueError("unknown_type", _("There is no such project type."), field="project_type")
    overlapping = RevenueError(
        "overlapping_rule",
        _(
            "A rule for the same counties and project types already takes effect on %(date)s.",
            date=date_text(effective_from),
        ),
        field="effective_from",
    )
    clash = db.session.scalar(
        select(SharingRule).filter_by(
            effective_from=effective_from, region_code=region_code, project_type=project_type
        )
    )
    if clash is not None:
        raise overlapping
    rule = SharingRule(
        effective_from=effective_from,
        region_code=region_code,
        project_type=project_type,
        city_bp=int(city * 100),
        county_bp=int(county * 100),
        note=(note or "").strip()[:300],
        created_by=actor,
    )
    try:
        with db.session.begin_nested():  # the same rule added at the same moment: one wins
            db.session.add(rule)
            db.session.flush()
    except IntegrityError:
        raise overlapping from None
    audit.record(
        actor,
        "revenue.rule",
        "sharing_rule",
        rule.id,
        after={
            "effective_from": effective_from,
            "region_code": region_code,
            "project_type": project_type,
            "city_pct": city,
            "county_pct": county,
        },
    )
    return rule


def rules() -> list[SharingRule]:
    return list(
        db.session.scalars(select(SharingRule).order_by(SharingRule.effective_from.desc(), SharingRule.id))
    )


_SPECIFICITY = case((SharingRule.region_code != "", 2), else_=0) + case(
    (SharingRule.project_type != "", 1), else_=0
)
#: Built once: every paid sale's lines look their rules up.
_RULE_FOR = (
    select(SharingRule)
    .where(
        SharingRule.effective_from <= bindparam("on"),
        or_(SharingRule.region_code == "", SharingRule.region_code == bindparam("region")),
        or_(SharingRule.project_type == "", SharingRule.project_type == bindparam("type")),
    )
    .order_by(_SPECIFICITY.desc(), SharingRule.effective_from.desc())
    .limit(1)
)


def rule_for(region_code: str, project_type: str, on: date) -> SharingRule:
    """The rule in force on ``on``: the most specific one (county and type, county, type, any),
    and of those the one that took effect last."""
    rule = db.session.scalar(_RULE_FOR, {"on": on, "region": region_code, "type": str(project_type)})
    if rule is None:
        raise RevenueError("no_rule", _("No sharing rule is in force on %(date)s.", date=date_text(on)))
    return rule


# --- lines ---------------------------------------------------------------------------------------


def split(amount_fen: int, rule: SharingRule) -> tuple[int, int]:
    """(city, county) shares of ``amount_fen``: county rounded half to even, city the rest."""
    county = int(
        (Decimal(amount_fen) * rule.county_bp / 10000).quantize(Decimal(1), rounding=ROUND_HALF_EVEN)
    )
    return amount_fen - county, county


def record_sale(sale_kind: str, sale_ref: str, portions, paid_at: datetime) -> list[RevenueLine]:
    """One line per ``(batch, amount in yuan)`` portion of a paid sale, written with the caller's
    next flush (a fulfilment writes everything that goes with its certificate in one)."""
    paid_on = paid_at.astimezone(BEIJING).date()
    return [_line(sale_kind, sale_ref, batch, fen_of(amount), paid_on) for batch, amount in portions]


def record_instalment(
    sale_kind: str, sale_ref: str, portions, paid_fen: int, paid_on: date
) -> list[RevenueLine]:
    """Lines for money received towards a sale paid in instalments (a contract invoice).

    ``portions`` are the whole sale's ``(batch, amount in yuan)``; ``paid_fen`` is what has been
    received in all, this instalment included, on ``paid_on`` (Beijing date, which also picks
    the rule). The sale's lines are topped up to that amount, shared over the portions in
    proportion to what each still lacks (largest remainders): every month's lines match the
    money received that month, and once the sale is paid each batch's lines add up to its
    portion exactly.
    """
    portions = [(batch, fen_of(amount)) for batch, amount in portions]
    recorded: dict[int, int] = {}
    for line in db.session.scalars(
        select(RevenueLine).filter_by(sale_kind=sale_kind, sale_ref=sale_ref, reversal_of_id=None)
    ):
        recorded[line.batch_id] = recorded.get(line.batch_id, 0) + line.amount_fen
    lacking = [max(0, fen - recorded.get(batch.id, 0)) for batch, fen in portions]
    total = sum(fen for _batch, fen in portions)
    todo = min(int(paid_fen), total) - (total - sum(lacking))  # received in all - recorded
    if todo <= 0:
        return []
    lines = [
        _line(sale_kind, sale_ref, batch, share, paid_on)
        for (batch, _whole), share in zip(portions, apportion(todo, lacking), strict=True)
        if share
    ]
    db.session.flush()
    return lines


def _line(sale_kind: str, sale_ref: str, batch, fen: int, paid_on: date) -> RevenueLine:
    project = batch.project
    rule = rule_for(project.region.code, project.type, paid_on)
    city, county = split(fen, rule)
    line = RevenueLine(
        sale_kind=sale_kind,
        sale_ref=sale_ref,
        batch_id=batch.id,
        region_id=project.region_id,
        paid_on=paid_on,
        amount_fen=fen,
        city_fen=city,
        county_fen=county,
        rule_id=rule.id,
    )
    db.session.add(line)
    return line


def reverse_sale(
    sale_kind: str, sale_ref: str, refunded_at: datetime, refunded_fen: int | None = None
) -> list[RevenueLine]:
    """Reversing lines (negative, same rule) for a refunded sale.

    ``refunded_fen`` is what has been refunded of the sale **in all** (Stripe's cumulative
    ``amount_refunded``), None for the whole sale. Only what is not reversed yet is reversed, so a
    repeated call changes nothing and a further partial refund adds the difference. The new
    reversal is shared over the lines in proportion to what each has left (largest remainders,
    exact to the fen), and each line's city and county reversals are the split of its reversed
    amount in total minus what was already reversed: a whole refund nets every line, and both
    shares, to exactly zero.
    """
    lines = db.session.scalars(
        select(RevenueLine).filter_by(sale_kind=sale_kind, sale_ref=sale_ref).order_by(RevenueLine.id)
    ).all()
    originals = [line for line in lines if line.reversal_of_id is None]
    done = {line.id: [0, 0, 0] for line in originals}  # reversed so far: amount, city, county
    for line in lines:
        if line.reversal_of_id in done:
            reversed_ = done[line.reversal_of_id]
            reversed_[0] -= line.amount_fen
            reversed_[1] -= line.city_fen
            reversed_[2] -= line.county_fen
    total = sum(line.amount_fen for line in originals)
    target = total if refunded_fen is None else max(0, min(int(refunded_fen), total))
    left = {line.id: line.amount_fen - done[line.id][0] for line in originals}
    todo = target - sum(reversed_[0] for reversed_ in done.values())
    if todo <= 0:
        return []
    shares = apportion(todo, [left[line.id] for line in originals])
    paid_on = refunded_at.astimezone(BEIJING).date()
    reversals = []
    for line, share in zip(originals, shares, strict=True):
        if not share:
            continue
        amount, city, county = done[line.id]
        new_city, new_county = split(amount + share, line.rule)
        reversals.append(
            RevenueLine(
                sale_kind=line.sale_kind,
                sale_ref=line.sale_ref,
                batch_id=line.batch_id,
                region_id=line.region_id,
                paid_on=paid_on,
                amount_fen=-share,
                city_fen=-(new_city - city),
                county_fen=-(new_county - county),
                rule_id=line.rule_id,
                reversal_of_id=line.id,
            )
        )
    db.session.add_all(reversals)
    db.session.flush()
    return reversals


# --- statements ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Statement:
    lines: list
    amount_fen: int
    city_fen: int
    county_fen: int


def lines_between(start: date | None, end: date | None, region_code: str = "", limit: int | None = None):
    query = (
        select(RevenueLine)
        .join(Region, Region.id == RevenueLine.region_id)
        .order_by(RevenueLine.paid_on, RevenueLine.id)
    )
    if start is not None:
        query = query.where(RevenueLine.paid_on >= start)
    if end is not None:
        query = query.where(RevenueLine.paid_on <= end)
    if region_code:
        query = query.where(Region.code == region_code)
    if limit is not None:
        query = query.limit(limit)
    return list(db.session.scalars(query))


def statement(start: date | None, end: date | None, region_code: str = "") -> Statement:
    lines = lines_between(start, end, region_code)
    return Statement(
        lines,
        sum(line.amount_fen for line in lines),
        sum(line.city_fen for line in lines),
        sum(line.county_fen for line in lines),
    )
