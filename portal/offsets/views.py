"""Checkout: choose, hold, pay; the order page follows the payment to the certificate."""

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from wtforms.fields.choices import SelectChoice

from portal.access import may, owns, page
from portal.core.i18n import yuan
from portal.extensions import db
from portal.offsets import services
from portal.offsets.forms import CheckoutForm
from portal.offsets.models import OrderStatus
from portal.payments import services as payments

bp = Blueprint("offsets", __name__, template_folder="templates")

#: Stripe.js and its frames, allowed on the payment page only (real Stripe keys).
STRIPE_CSP = (
    "default-src 'self'; script-src 'self' https://js.stripe.com; style-src 'self'; "
    "img-src 'self' data: https://*.stripe.com; frame-src https://js.stripe.com https://hooks.stripe.com; "
    "connect-src 'self' https://api.stripe.com; object-src 'none'; base-uri 'self'; form-action 'self'; "
    "frame-ancestors 'none'"
)


def _choices(form):
    form.batch_code.choices = [SelectChoice("", _("Any listed batch (oldest vintage first)"))] + [
        SelectChoice(
            b.code,
            _("%(batch)s · %(price)s per t · %(n)s t available", batch=b.code, price=yuan(price), n=n),
        )
        for b, price, n in services.batches_for_sale()
    ]


@bp.route("/checkout", methods=["GET", "POST"])
@page("orders.create")
def checkout():
    organisation = current_user.organisation
    form = CheckoutForm()
    _choices(form)
    if request.method == "GET":
        form.quantity.data = (request.args.get("quantity") or "")[:10]
        form.purpose_detail.data = (request.args.get("purpose") or "")[:300]
        form.estimate.data = (request.args.get("estimate") or "")[:40]
        form.beneficiary.data = organisation.name_zh
        return render_template("offsets/checkout.html", form=form, error=None)
    if not form.validate_on_submit():
        abort(400)
    try:
        order, _created = services.create_order(
            organisation,
            form.quantity.data,
            beneficiary=form.beneficiary.data,
            purpose=form.purpose.data,
            purpose_detail=form.purpose_detail.data,
            batch_code=form.batch_code.data or None,
            estimate_version=form.estimate.data or "",
            actor=f"user:{current_user.id}",
            user=current_user,
        )
        db.session.commit()  # the hold stands before Stripe is called
        services.attach_payment(order)
    except services.OrderError as exc:
        db.session.commit() if exc.code == "payment_unavailable" else db.session.rollback()
        return render_template("offsets/checkout.html", form=form, error=exc), exc.status
    return redirect(url_for("offsets.order", public_id=order.public_id))


def _own_order(public_id):
    """The order, if the signed-in user may see it (its organisation's users, or staff); 404 for
    anyone else, so order ids cannot be probed."""
    order = services.find(public_id)
    if order is None:
        abort(404)
    if not may(current_user, "view", order):
        abort(404)
    return order


@bp.get("/orders/<public_id>")
@page("orders.read_own", "orders.read_all")
def order(public_id):
    found = _own_order(public_id)
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
            waiting=request.args.get("paid") == "1" and found.status == OrderStatus.AWAITING_PAYMENT,
            publishable_key=current_app.config.get("STRIPE_PUBLISHABLE_KEY", ""),
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
    found = _own_order(public_id)
    services.expire_on_access(found)  # a hold past its time is not paid for
    if not payments.embedded() or found.status != OrderStatus.AWAITING_PAYMENT or not found.payment_intent_id:
        abort(409)
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
