"""The order pages: one order (following the payment to the certificate), the organisation's
orders, the embedded test card, staff refunds. Choosing and holding is ``views_basket``; paying
with a wallet and the QR code's poll are ``views_pay``; all are routes on one blueprint."""

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from portal.access import owns, page
from portal.extensions import db
from portal.offsets import services
from portal.offsets.models import OrderNote, OrderStatus
from portal.offsets.views_shared import STRIPE_CSP, bp, own_order
from portal.payments import services as payments
from portal.timeutil import beijing_today


@bp.get("/orders/<public_id>")
@page("orders.read_own", "orders.read_all")
def order(public_id):
    found = own_order(public_id)
    services.expire_on_access(found)
    if owns(current_user, found):
        try:  # an order whose checkout request died before its PaymentIntent was saved
            services.ensure_payment(found)
        except services.OrderError as exc:
            flash(exc.message, "error")
    stripe_page = (
        found.status == OrderStatus.AWAITING_PAYMENT
        and not payments.embedded()
        and bool(current_app.config.get("STRIPE_PUBLISHABLE_KEY"))
    )
    response = current_app.make_response(
        render_template(
            "offsets/order.html",
            order=found,
            embedded=payments.embedded(),
            stripe_page=stripe_page,
            waiting=request.args.get("paid") == "1"
            and request.args.get("redirect_status") != "failed"
            and found.status == OrderStatus.AWAITING_PAYMENT
            and found.note != OrderNote.ATTEMPT_DECLINED,
            wallet_failed=request.args.get("redirect_status") == "failed",
            methods=[m for m in payments.payment_method_types() if m in services.METHODS],
            publishable_key=current_app.config.get("STRIPE_PUBLISHABLE_KEY", ""),
            today_iso=beijing_today().isoformat(),
        )
    )
    if stripe_page:
        response.headers["Content-Security-Policy"] = STRIPE_CSP
    return response


@bp.post("/orders/<public_id>/pay-test")
@page("orders.create")
def pay_with_test_card(public_id):
    """The embedded backend's stand-in for the Payment Element: the test card, through the same
    Stripe client. Fulfilment still waits for the signed webhook."""
    found = own_order(public_id)
    if not payments.embedded() or not owns(current_user, found):
        abort(404)
    try:  # a hold past its time is not paid for; a declined attempt gives way to a new one
        found = services.fresh_attempt(found, actor=f"user:{current_user.id}")
    except services.OrderError as exc:
        db.session.commit()  # an expiry found on the way stands
        flash(exc.message, "error")
        return redirect(url_for("offsets.order", public_id=found.public_id))
    db.session.commit()  # the new attempt's intent is recorded before it is paid
    card = "pm_card_chargeCustomerFail" if request.form.get("card") == "declined" else "pm_card_visa"
    try:
        payments.pay_with_test_card(found.payment_intent_id, card)
    except payments.PaymentError:
        flash(_("The payment service is not available. Nothing was charged; please try again."), "error")
    return redirect(url_for("offsets.order", public_id=found.public_id, paid=1))


@bp.get("/account/orders")
@page("orders.create")
def mine():
    return render_template("offsets/orders.html", orders=services.orders_of(current_user.organisation))


@bp.post("/orders/<public_id>/refund")
@page("orders.refund")
def refund(public_id):
    found = services.find(public_id)
    if found is None:
        abort(404)
    try:
        services.refund(found, actor=f"user:{current_user.id}")
    except services.OrderError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return redirect(url_for("offsets.order", public_id=public_id))
    except payments.PaymentError:
        db.session.rollback()
        flash(_("Stripe refused the refund; nothing was changed."), "error")
        return redirect(url_for("offsets.order", public_id=public_id))
    db.session.commit()
    if found.status == OrderStatus.CANCELLED:
        services.cancel_payment(found)  # so that the buyer can no longer pay it
    from portal.offsets.models import ORDER_STATUS_LABELS

    flash(
        _("Order %(order)s is %(status)s.", order=found.public_id, status=ORDER_STATUS_LABELS[found.status]),
        "success",
    )
    return redirect(url_for("offsets.order", public_id=public_id))


from portal.offsets import views_basket, views_guest, views_pay, views_transfer  # noqa: E402, F401  (their routes are on bp)
