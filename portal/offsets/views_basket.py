"""Checkout: the order a buyer puts together from the catalog (lines kept in the session, see
``basket``), priced on the page before anything is held, then held all at once; and the single
quantity the footprint calculator sends (any listed batch, oldest vintage first)."""

from decimal import Decimal, InvalidOperation

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from wtforms.fields.choices import SelectChoice

from portal.access import page
from portal.alliance import services as alliance
from portal.core.i18n import yuan
from portal.extensions import db
from portal.offsets import basket, services
from portal.offsets.forms import CheckoutForm
from portal.offsets.views_shared import bp, saved_for_later, visitors_choose


def _choices(form):
    organisation = current_user.organisation  # an alliance member is shown its member price
    form.batch_code.choices = [SelectChoice("", _("Any listed batch (oldest vintage first)"))] + [
        SelectChoice(
            b.code,
            _(
                "%(batch)s · %(price)s per t · %(n)s t available",
                batch=b.code,
                price=yuan(alliance.price_for(organisation, price)),
                n=n,
            ),
        )
        for b, price, n in services.batches_for_sale()
    ]


def _prefill(form, organisation):
    form.quantity.data = (request.args.get("quantity") or "")[:10]
    form.purpose_detail.data = (request.args.get("purpose") or "")[:300]
    form.estimate.data = (request.args.get("estimate") or "")[:40]
    form.beneficiary.data = organisation.name_zh


@bp.route("/checkout", methods=["GET", "POST"])
@visitors_choose
@page("orders.create")
def checkout():
    organisation = current_user.organisation
    form = CheckoutForm()
    if request.method == "GET":
        _prefill(form, organisation)
        lines = [(code, str(quantity)) for code, quantity in basket.saved()]
        lines, added = basket.with_added(lines, request.args.get("add"), request.args.get("quantity"))
        if lines:
            form.quantity.data = ""
            return _basket_page(form, lines, added)
        _choices(form)
        return render_template("offsets/checkout.html", form=form, error=None)
    if not form.validate_on_submit():
        abort(400)
    if "batch" in request.form:
        return _basket_post(form, organisation)
    _choices(form)
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


def _basket_page(form, lines, added=None, error=None, status=200):
    rows, total, ok = basket.rows(lines, new=added, organisation=current_user.organisation)
    return (
        render_template(
            "offsets/basket.html",
            form=form,
            rows=rows,
            total=total,
            quantity=sum(row.quantity or 0 for row in rows),
            ok=ok,
            error=error,
            hold_minutes=services.HOLD_MINUTES,
            member=alliance.is_member(current_user.organisation),
        ),
        status,
    )


def _basket_post(form, organisation):
    """The order form sent: update, save and go on browsing, remove a line, or hold."""
    remove = request.form.get("remove")
    posted = [
        (code[:80], typed[:12])
        for code, typed in zip(request.form.getlist("batch"), request.form.getlist("quantity"), strict=False)
        if code and code != remove
    ][: services.MAX_LINES]
    shown = _shown_prices(remove)
    if not posted:
        basket.clear()
        flash(_("Your order is empty: add credits from the catalog."), "success")
        return redirect(url_for("catalog.index"))
    try:
        lines = services.parse_lines([{"batch_code": c, "quantity": q} for c, q in posted])
    except services.OrderError as exc:
        return _basket_page(form, posted, error=exc, status=exc.status)
    basket.save(lines)
    action = request.form.get("action")
    if remove or action == "update":
        return redirect(url_for("offsets.checkout"))
    if action == "save":
        return saved_for_later(lines)
    try:
        order, _created = services.create_order(
            organisation,
            lines=[{"batch_code": c, "quantity": q} for c, q in lines],
            shown_prices=shown,
            beneficiary=form.beneficiary.data,
            purpose=form.purpose.data,
            purpose_detail=form.purpose_detail.data,
            actor=f"user:{current_user.id}",
            user=current_user,
        )
        db.session.commit()  # the hold stands before Stripe is called
        services.attach_payment(order)
    except services.OrderError as exc:
        db.session.commit() if exc.code == "payment_unavailable" else db.session.rollback()
        if exc.code == "payment_unavailable":
            basket.clear()  # the order was made and cancelled; the page says so
        return _basket_page(form, posted, error=exc, status=exc.status)
    basket.clear()
    return redirect(url_for("offsets.order", public_id=order.public_id))


def _shown_prices(remove) -> dict[str, Decimal]:
    """The prices the page showed, per batch (the order is refused if a listing changed since)."""
    shown = {}
    for code, price in zip(request.form.getlist("batch"), request.form.getlist("price"), strict=False):
        try:
            value = Decimal(price)
        except (InvalidOperation, ValueError):
            continue
        if code and code != remove and value.is_finite():
            shown[code[:80]] = value
    return shown
