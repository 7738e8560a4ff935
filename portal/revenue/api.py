"""``GET /api/v1/revenue/lines`` (operator and auditor keys), on the API blueprint."""

from flask import request
from flask_babel import gettext as _

from portal.api.auth import require_key
from portal.api.views import api_error, bp, money
from portal.revenue import services
from portal.timeutil import iso_date

#: Lines in one answer at most (``truncated`` says when there were more).
MAX_LINES = 100_000


def _date(name):
    raw = request.args.get(name, "").strip()
    if not raw:
        return None
    day = iso_date(raw)
    if day is None:
        raise ValueError(raw)
    return day


@bp.get("/revenue/lines")
@require_key("revenue.read")
def revenue_lines():
    try:
        start, end = _date("from"), _date("to")
    except ValueError:
        return api_error(400, "invalid_date", _("Dates are YYYY-MM-DD."))
    county = request.args.get("county", "").strip()[:32]
    lines = services.lines_between(start, end, county, limit=MAX_LINES + 1)
    truncated = len(lines) > MAX_LINES
    return {
        # More lines than one answer carries: ask again for a shorter period.
        "truncated": truncated,
        "items": [
            {
                "sale_ref": line.sale_ref,
                "sale_kind": line.sale_kind,
                "paid_on": line.paid_on.isoformat(),
                "county": line.region.code,
                "batch_code": line.batch.code,
                "amount": money(services.yuan_of(line.amount_fen)),
                "city_share": money(services.yuan_of(line.city_fen)),
                "county_share": money(services.yuan_of(line.county_fen)),
                "rule": {
                    "id": line.rule.id,
                    "effective_from": line.rule.effective_from.isoformat(),
                    "city_pct": f"{line.rule.city_pct:.2f}",
                    "county_pct": f"{line.rule.county_pct:.2f}",
                },
                "reversal_of": line.reversal_of_id,
            }
            for line in lines[:MAX_LINES]
        ],
    }
