"""``POST /stripe/webhook``: Stripe's signed events. Fulfilment happens here, never on a redirect."""

from flask import Blueprint, jsonify, request
from flask_babel import gettext as _

from portal.core.guard import public
from portal.core.limits import body_limit
from portal.payments import services

bp = Blueprint("payments", __name__)


#: Stripe's events are a few kilobytes; a larger body is refused before it is read.
MAX_EVENT_BYTES = 1024 * 1024


@bp.post("/stripe/webhook")
@public
@body_limit(MAX_EVENT_BYTES)
def webhook():
    if request.content_length is None or request.content_length > MAX_EVENT_BYTES:
        return jsonify(error={"code": "too_large", "message": _("The body is missing or too large.")}), 413
    try:
        outcome = services.handle_webhook(request.get_data(), request.headers.get("Stripe-Signature"))
    except services.BadSignature:
        return jsonify(
            error={"code": "bad_signature", "message": _("The Stripe signature is missing or wrong.")}
        ), 400
    return jsonify(received=True, outcome=outcome)
