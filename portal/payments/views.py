"""``POST /stripe/webhook``: Stripe's signed events. Fulfilment happens here, never on a redirect."""

from flask import Blueprint, jsonify, request

from portal.payments import services

bp = Blueprint("payments", __name__)


@bp.post("/stripe/webhook")
def webhook():
    try:
        outcome = services.handle_webhook(request.get_data(), request.headers.get("Stripe-Signature"))
    except services.BadSignature:
        return jsonify(
            error={"code": "bad_signature", "message": "The Stripe signature is missing or wrong."}
        ), 400
    return jsonify(received=True, outcome=outcome)
