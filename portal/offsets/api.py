"""``POST /api/v1/estimates``: the footprint calculator over JSON.

No key is needed: nothing is stored or changed. Numbers may be JSON numbers or decimal strings;
they are read as :class:`~decimal.Decimal` (a JSON float never becomes a binary float). Any bad
input, including a body that is not a JSON object, is a 400 naming the fields, never a 5xx.

Flights are given by distance band (``air_upto_500km_…``, ``air_500_3700km_…``,
``air_over_3700km_…``). ``"factor_set": "CFC-EF-2025.1"`` makes an estimate with that earlier
set, and its fields (``air_domestic_…``), again: the answer names the set it used.
"""

from decimal import Decimal

from flask import jsonify, request
from flask_babel import gettext as _

from portal.api.views import api_error, bp
from portal.core import jsontext
from portal.core.guard import public
from portal.offsets import calculator
from portal.offsets.calculator import CalculatorError

#: An estimate is a few dozen short fields.
MAX_BODY = 16 * 1024


def _invalid(message: str, fields: dict[str, str]):
    return jsonify(error={"code": "invalid_estimate", "message": message, "fields": fields}), 400


@bp.post("/estimates")
@public
def create_estimate():
    if not request.is_json:
        message = _("Send a JSON object, with Content-Type: application/json.")
        return _invalid(message, {"body": message})
    try:
        # NaN and Infinity stay strings, so that the field they are in is named as not a number.
        data = jsontext.request_json(
            max_bytes=MAX_BODY, parse_float=Decimal, parse_int=Decimal, parse_constant=str
        )
    except jsontext.JsonRefused as exc:
        if exc.code == "too_large":
            return api_error(413, "request_too_large", _("The request is too large."))
        message = _("The body is not valid JSON.") if exc.code == "invalid" else exc.message
        return _invalid(message, {"body": message})
    if not isinstance(data, dict):
        message = _("Send a JSON object, with Content-Type: application/json.")
        return _invalid(message, {"body": message})
    try:
        result = calculator.estimate(data.get("kind"), data, strict=True)
    except CalculatorError as exc:
        return _invalid(exc.message, exc.fields)
    return {
        "kind": result.kind,
        "tco2e": str(result.total),
        "breakdown": [
            {
                "item": row.item,
                "label": row.label,
                "quantity": calculator.plain(row.quantity.quantize(calculator.KILOGRAM)),
                "unit": row.unit,
                "factor": str(row.factor.value),
                "factor_unit": row.factor.unit,
                "uncertain": row.factor.uncertain,
                "tco2e": str(row.tco2e),
            }
            for row in result.rows
        ],
        "factor_set": result.factor_set.version,
        "purchase_tonnes": result.purchase_tonnes,
    }
