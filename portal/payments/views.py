"""``POST /stripe/webhook``: Stripe's signed events. Fulfilment happens here, never on a redirect."""

from flask import Blueprint, abort, jsonify, redirect, render_template, request
from flask_babel import gettext as _

from portal.core.guard import public
from portal.core.limits import body_limit
from portal.core.money import yuan_of
from portal.payments import services, wallets

bp = Blueprint("payments", __name__, template_folder="templates")


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


@bp.route("/payments/test-wallet/<token>", methods=["GET", "POST"])
@public
def test_wallet(token):
    """The embedded backend's stand-in for Alipay and WeChat Pay (see ``wallets``): anyone holding
    the signed address (the buyer's browser, or the phone that scanned the QR code) approves or
    declines the payment; the signed webhook settles the order, as a real wallet's would."""
    found = wallets.read_test_wallet_token(token) if services.embedded() else None
    if found is None:
        abort(404)
    try:
        intent = services.retrieve(found["i"])
    except services.PaymentError:
        abort(503)
    outcome = None
    if request.method == "POST" and intent.status in ("requires_payment_method", "requires_confirmation"):
        card = "pm_card_chargeCustomerFail" if request.form.get("answer") == "decline" else "pm_card_visa"
        try:
            intent = services.pay_with_test_card(intent.id, card)
        except services.PaymentError:
            abort(503)
        outcome = "approved" if intent.status in ("succeeded", "processing") else "declined"
        if found["m"] == "alipay":  # Alipay sends the browser back to the shop
            return redirect(found["r"])
    return render_template(
        "payments/test_wallet.html",
        method=found["m"],
        amount=yuan_of(intent.amount),
        status=intent.status,
        outcome=outcome,
        return_url=found["r"],
    )
