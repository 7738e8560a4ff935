"""Paying an order with a wallet: Alipay (a redirect to Alipay and back), WeChat Pay (its QR code
on the page, which polls the order until the signed webhook has settled it). The poll answers
only the order's own organisation (and staff), as the order page does."""

from flask import abort, flash, jsonify, redirect, render_template, url_for
from flask_login import current_user

from portal.access import owns, page
from portal.core.qr import qr_svg
from portal.extensions import db
from portal.offsets import services
from portal.offsets.models import OrderNote, OrderStatus
from portal.offsets.views_shared import bp, own_order
from portal.payments import services as payments


def _return_url(order) -> str:
    return url_for("offsets.order", public_id=order.public_id, paid=1, _external=True)


@bp.post("/orders/<public_id>/pay/<method>")
@page("orders.create")
def pay_with_wallet(public_id, method):
    found = own_order(public_id)
    if not owns(current_user, found):
        abort(404)
    try:
        step = services.start_wallet(
            found, method, return_url=_return_url(found), actor=f"user:{current_user.id}"
        )
    except services.OrderError as exc:
        db.session.commit()  # an expiry or a new attempt found on the way stands
        flash(exc.message, "error")
        return redirect(url_for("offsets.order", public_id=found.public_id))
    db.session.commit()
    if step.kind == "redirect":
        return redirect(step.url)
    if step.kind == "qr":
        return redirect(url_for("offsets.scan", public_id=found.public_id, method=method))
    return redirect(_return_url(found))


@bp.get("/orders/<public_id>/scan/<method>")
@page("orders.create")
def scan(public_id, method):
    """WeChat Pay: the QR code to scan, and the page polls the order until it is settled."""
    found = own_order(public_id)
    if not owns(current_user, found):
        abort(404)
    services.expire_on_access(found)
    if found.status != OrderStatus.AWAITING_PAYMENT or method != "wechat_pay":
        return redirect(url_for("offsets.order", public_id=found.public_id))
    try:
        step = services.wallet_step(found, method, return_url=_return_url(found))
    except services.OrderError as exc:
        flash(exc.message, "error")
        return redirect(url_for("offsets.order", public_id=found.public_id))
    if step.kind != "qr":
        return redirect(_return_url(found))
    return render_template(
        "offsets/scan.html",
        order=found,
        method=method,
        qr=qr_svg(step.data, label=step.data) if not step.image else None,
        image=step.image,
        test_wallet=step.data if payments.embedded() else None,
    )


@bp.get("/orders/<public_id>/status")
@page("orders.read_own", "orders.read_all")
def status(public_id):
    """The order's state for the QR page's poll (JSON); 404 for anyone else's order."""
    found = own_order(public_id)
    services.expire_on_access(found)
    return jsonify(
        status=found.status,
        declined=found.status == OrderStatus.AWAITING_PAYMENT and found.note == OrderNote.ATTEMPT_DECLINED,
        url=url_for("offsets.order", public_id=found.public_id),
    )
