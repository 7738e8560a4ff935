"""Guest checkout (no account): visitors at checkout choose to sign in or to go on as a guest;
the guest's order is put together as a signed-in buyer's is (``basket``, in the session), held,
and then reached only through its secret link (``/guest/orders/<id>/<token>``): its status,
lines, payment (card, wallets, the QR code's poll) and certificate, nothing else of the portal.
A wrong or expired token is a 404. The rules are the service's (``guests``)."""

from flask import abort, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from portal.buyers import policy
from portal.core.guard import public
from portal.core.qr import qr_svg
from portal.extensions import db
from portal.offsets import basket, services
from portal.offsets.forms import GuestCheckoutForm
from portal.offsets.models import OrderNote, OrderStatus
from portal.offsets.views_basket import _shown_prices
from portal.offsets.views_shared import STRIPE_CSP, adding, bp, saved_for_later
from portal.payments import services as payments


@bp.route("/guest/checkout", methods=["GET", "POST"])
@public
def guest_checkout():
    if current_user.is_authenticated:
        return redirect(url_for("offsets.checkout", **adding()))
    form = GuestCheckoutForm()
    if request.method == "GET":
        lines = [(code, str(quantity)) for code, quantity in basket.saved()]
        lines, added = basket.with_added(lines, request.args.get("add"), request.args.get("quantity"))
        return _page(form, lines, added)
    if not form.validate_on_submit():
        abort(400)
    remove = request.form.get("remove")
    posted = [
        (code[:80], typed[:12])
        for code, typed in zip(request.form.getlist("batch"), request.form.getlist("quantity"), strict=False)
        if code and code != remove
    ][: services.MAX_LINES]
    if not posted:
        basket.clear()
        flash(_("Your order is empty: add credits from the catalog."), "success")
        return redirect(url_for("catalog.index"))
    try:
        lines = services.parse_lines([{"batch_code": c, "quantity": q} for c, q in posted])
    except services.OrderError as exc:
        return _page(form, posted, error=exc, status=exc.status)
    basket.save(lines)
    if request.form.get("action") == "save" and not remove:
        return saved_for_later(lines)
    if remove or request.form.get("action") != "hold":
        return redirect(url_for("offsets.guest_checkout"))
    try:
        details = services.check_details(
            form.name.data, form.email.data, form.organisation_name.data, form.uscc.data
        )
        order, token = services.place_order(
            details,
            lines=[{"batch_code": c, "quantity": q} for c, q in lines],
            shown_prices=_shown_prices(remove),
            beneficiary=form.beneficiary.data,
            purpose=form.purpose.data,
            purpose_detail=form.purpose_detail.data,
            address=request.remote_addr or "unknown",
        )
        db.session.commit()  # the hold (and the mail with the link) stand before Stripe is called
        services.attach_payment(order)
    except services.OrderError as exc:
        db.session.commit() if exc.code == "payment_unavailable" else db.session.rollback()
        if exc.code == "payment_unavailable":
            basket.clear()
        return _page(form, posted, error=exc, status=exc.status)
    db.session.commit()
    basket.clear()
    return redirect(url_for("offsets.guest_order", public_id=order.public_id, token=token))


def _page(form, lines, added=None, error=None, status=200):
    rows, total, ok = basket.rows(lines, new=added)
    response = current_app.make_response(
        (
            render_template(
                "offsets/guest_checkout.html",
                form=form,
                rows=rows,
                total=total,
                quantity=sum(row.quantity or 0 for row in rows),
                ok=ok,
                error=error,
                hold_minutes=services.HOLD_MINUTES,
                guest_order_limit=policy.GUEST_ORDER_LIMIT_T,
                sign_in=url_for("buyers.login", next=url_for("offsets.checkout", **adding())),
            ),
            status,
        )
    )
    return response


def _guest_order(public_id, token):
    found = services.find_order(public_id, token)
    if found is None:
        abort(404)
    return found


def _private(response):
    """The page's address holds the secret: never sent on as a referrer, never cached."""
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    return response


def _return_url(order, token) -> str:
    return url_for("offsets.guest_order", public_id=order.public_id, token=token, paid=1, _external=True)


@bp.get("/guest/orders/<public_id>/<token>")
@public
def guest_order(public_id, token):
    found = _guest_order(public_id, token)
    services.expire_on_access(found)
    try:  # the checkout request died before its PaymentIntent was saved
        services.ensure_payment(found)
    except services.OrderError as exc:
        flash(exc.message, "error")
    db.session.commit()
    stripe_page = (
        found.status == OrderStatus.AWAITING_PAYMENT
        and not payments.embedded()
        and bool(current_app.config.get("STRIPE_PUBLISHABLE_KEY"))
    )
    response = current_app.make_response(
        render_template(
            "offsets/guest_order.html",
            order=found,
            token=token,
            embedded=payments.embedded(),
            stripe_page=stripe_page,
            waiting=request.args.get("paid") == "1"
            and request.args.get("redirect_status") != "failed"
            and found.status == OrderStatus.AWAITING_PAYMENT
            and found.note != OrderNote.ATTEMPT_DECLINED,
            wallet_failed=request.args.get("redirect_status") == "failed",
            methods=[m for m in payments.payment_method_types() if m in services.METHODS],
            publishable_key=current_app.config.get("STRIPE_PUBLISHABLE_KEY", ""),
            return_url=_return_url(found, token),
        )
    )
    if stripe_page:
        response.headers["Content-Security-Policy"] = STRIPE_CSP
    return _private(response)


@bp.post("/guest/orders/<public_id>/<token>/pay-test")
@public
def guest_pay_with_test_card(public_id, token):
    """The embedded backend's test card, as on a buyer's order page (see ``views``)."""
    found = _guest_order(public_id, token)
    if not payments.embedded():
        abort(404)
    back = url_for("offsets.guest_order", public_id=found.public_id, token=token)
    try:
        found = services.fresh_attempt(found, actor=f"guest:{found.guest_id}")
    except services.OrderError as exc:
        db.session.commit()
        flash(exc.message, "error")
        return redirect(back)
    db.session.commit()
    card = "pm_card_chargeCustomerFail" if request.form.get("card") == "declined" else "pm_card_visa"
    try:
        payments.pay_with_test_card(found.payment_intent_id, card)
    except payments.PaymentError:
        flash(_("The payment service is not available. Nothing was charged; please try again."), "error")
    return redirect(url_for("offsets.guest_order", public_id=found.public_id, token=token, paid=1))


@bp.post("/guest/orders/<public_id>/<token>/pay/<method>")
@public
def guest_pay_with_wallet(public_id, token, method):
    found = _guest_order(public_id, token)
    back = url_for("offsets.guest_order", public_id=found.public_id, token=token)
    try:
        step = services.start_wallet(
            found, method, return_url=_return_url(found, token), actor=f"guest:{found.guest_id}"
        )
    except services.OrderError as exc:
        db.session.commit()
        flash(exc.message, "error")
        return redirect(back)
    db.session.commit()
    if step.kind == "redirect":
        return redirect(step.url)
    if step.kind == "qr":
        return redirect(url_for("offsets.guest_scan", public_id=found.public_id, token=token, method=method))
    return redirect(_return_url(found, token))


@bp.get("/guest/orders/<public_id>/<token>/scan/<method>")
@public
def guest_scan(public_id, token, method):
    found = _guest_order(public_id, token)
    services.expire_on_access(found)
    db.session.commit()
    back = url_for("offsets.guest_order", public_id=found.public_id, token=token)
    if found.status != OrderStatus.AWAITING_PAYMENT or method != "wechat_pay":
        return redirect(back)
    try:
        step = services.wallet_step(found, method, return_url=_return_url(found, token))
    except services.OrderError as exc:
        flash(exc.message, "error")
        return redirect(back)
    if step.kind != "qr":
        return redirect(_return_url(found, token))
    return _private(
        current_app.make_response(
            render_template(
                "offsets/scan.html",
                order=found,
                method=method,
                qr=qr_svg(step.data, label=step.data) if not step.image else None,
                image=step.image,
                test_wallet=step.data if payments.embedded() else None,
                order_url=back,
                poll_url=url_for("offsets.guest_status", public_id=found.public_id, token=token),
            )
        )
    )


@bp.get("/guest/orders/<public_id>/<token>/status")
@public
def guest_status(public_id, token):
    """The order's state for the QR page's poll; a 404 with a translated error for a wrong or
    expired token (someone else's order)."""
    found = services.find_order(public_id, token)
    if found is None:
        return _private(
            jsonify(
                error={
                    "code": "not_found",
                    "message": _("There is no such order, or its link is wrong or has expired."),
                }
            )
        ), 404
    services.expire_on_access(found)
    db.session.commit()
    return _private(
        jsonify(
            status=found.status,
            declined=found.status == OrderStatus.AWAITING_PAYMENT
            and found.note == OrderNote.ATTEMPT_DECLINED,
            url=url_for("offsets.guest_order", public_id=found.public_id, token=token),
        )
    )
