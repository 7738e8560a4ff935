"""Paying an order by bank transfer: the buyer chooses it on the order page (above the
threshold); sales and finance staff list the orders awaiting a transfer and record the one that
pays an order, which fulfils it (``offsets.transfers``)."""

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from portal.access import owns, page
from portal.extensions import db
from portal.offsets import services
from portal.offsets.views_shared import bp, own_order
from portal.timeutil import beijing_today


@bp.post("/orders/<public_id>/bank-transfer")
@page("orders.create")
def choose_transfer(public_id):
    found = own_order(public_id)
    if not owns(current_user, found):
        abort(404)
    try:
        services.choose_transfer(found, actor=f"user:{current_user.id}")
    except services.OrderError as exc:
        db.session.commit()  # an expiry found on the way stands
        flash(exc.message, "error")
        return redirect(url_for("offsets.order", public_id=found.public_id), 303)
    db.session.commit()
    flash(_("Pay by bank transfer: the account, the amount and the reference to quote are below."), "success")
    return redirect(url_for("offsets.order", public_id=found.public_id), 303)


@bp.get("/staff/transfers")
@page("orders.read_all")
def awaiting_transfers():
    """Orders waiting for a bank transfer, the soonest to expire first."""
    return render_template(
        "offsets/transfers.html", orders=services.awaiting_transfers(), today=beijing_today()
    )


@bp.post("/staff/orders/<public_id>/transfer")
@page("orders.record_transfer")
def record_transfer(public_id):
    found = services.find(public_id)
    if found is None:
        abort(404)
    try:
        services.record_transfer(
            found,
            request.form.get("amount"),
            request.form.get("received_on"),
            request.form.get("reference"),
            actor=f"user:{current_user.id}",
        )
    except services.OrderError as exc:
        db.session.rollback()
        if exc.code == "hold_expired":
            services.expire_on_access(found)  # the expiry found on the way stands
            db.session.commit()
        flash(exc.message, "error")
        return redirect(url_for("offsets.order", public_id=public_id), 303)
    db.session.commit()
    flash(_("The transfer is recorded and the order fulfilled."), "success")
    return redirect(url_for("offsets.order", public_id=public_id), 303)
