"""The footprint calculator page, ``/estimate``: a form per kind, the result with its breakdown
and chart, and the method with every factor and its source.

The calculation is a GET: it changes nothing and stores nothing, so it needs no CSRF token,
the result is a link that can be bookmarked or sent to a colleague, the language switch keeps
it, and the browser's back button works.
"""

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from urllib.parse import urlencode

from flask import Blueprint, render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from portal.core.guard import public
from portal.core.i18n import date_text
from portal.offsets import calculator, factors
from portal.offsets.calculator import CalculatorError

bp = Blueprint("estimate", __name__, template_folder="templates")

KIND_LABELS = {"event": _l("Event"), "office": _l("Office (one year)")}
GRID_LABELS = {"national": _l("National average"), "inner_mongolia": _l("Inner Mongolia")}


@bp.get("/estimate")
@public
def index():
    kind = request.args.get("kind", "event")
    shown = kind if kind in calculator.KINDS else "event"
    linked = calculator.link_factor_set(request.args)
    result, errors = None, {}
    if "calculate" in request.args:
        try:
            result = calculator.estimate(kind, request.args, factor_set=linked)
        except CalculatorError as exc:
            errors = exc.fields
    factor_set = result.factor_set if result else linked or factors.current()
    modes = calculator.travel_modes(factor_set)
    page = render_template(
        "offsets/estimate.html",
        kind=shown,
        kinds=KIND_LABELS,
        values=request.args,
        errors=errors,
        result=result,
        chart=chart(result) if result else None,
        checkout_url=checkout_url(result) if result else None,
        factor_set=factor_set,
        current_set=factors.current(),
        modes={mode: calculator.MODE_LABELS[mode] for mode in modes},
        flights=calculator.flight_modes(factor_set),
        grids=calculator.GRIDS,
        grid_labels=GRID_LABELS,
        fields=calculator.QUANTITIES,
        field_label=calculator.field_label,
        field_ids=set(calculator.fields(shown, factor_set)),
    )
    return page, 400 if errors else 200


def purpose(result: calculator.Estimate) -> str:
    """What the purchase is for, prefilled on the checkout page."""
    if result.kind == "office":
        return _("Offsetting %(year)s operational emissions", year=str(result.details["year"]))
    start, end = result.details["start_date"], result.details["end_date"]
    if start == end:
        return _("Neutralising %(name)s, %(date)s", name=result.details["name"], date=date_text(start))
    return _(
        "Neutralising %(name)s, %(start)s–%(end)s",
        name=result.details["name"],
        start=date_text(start),
        end=date_text(end),
    )


def checkout_url(result: calculator.Estimate) -> str:
    query = urlencode(
        {
            "quantity": result.purchase_tonnes,
            "purpose": purpose(result),
            "estimate": result.factor_set.version,
        }
    )
    return f"{request.script_root}/checkout?{query}"


@dataclass(frozen=True)
class Bar:
    label: str
    tco2e: Decimal
    y: int
    width: Decimal


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    bar_height: int
    bars: list[Bar]


CHART_WIDTH = 560
#: Room on the right of the longest bar for its value.
VALUE_ROOM = 120
ROW_HEIGHT = 46
BAR_HEIGHT = 18


def chart(result: calculator.Estimate) -> Chart:
    """A horizontal bar per breakdown row, the longest bar for the largest row. Each label sits
    above its bar, so a long label never overlaps the bars or runs off the side."""
    largest = max((r.tco2e for r in result.rows), default=Decimal(0))
    span = Decimal(CHART_WIDTH - VALUE_ROOM)
    bars = []
    for i, row in enumerate(result.rows):
        width = (
            (row.tco2e / largest * span).quantize(Decimal("0.1"), ROUND_HALF_UP) if largest else Decimal(0)
        )
        bars.append(Bar(row.label, row.tco2e, i * ROW_HEIGHT, max(width, Decimal(1))))
    return Chart(CHART_WIDTH, len(bars) * ROW_HEIGHT + 4, BAR_HEIGHT, bars)
