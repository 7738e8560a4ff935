"""``POST /api/v1/orders`` and ``GET /api/v1/orders/<id>`` (on the API blueprint)."""

from flask import g, request
from flask_babel import gettext as _

from portal.access import may
from portal.api.auth import require_key
from portal.api.views import api_error, bp, json_object, money
from portal.certificates.services import certificate_url
from portal.core.idempotency import request_digest
from portal.extensions import db
from portal.offsets import services
from portal.offsets.models import Order


def order_json(order: Order) -> dict:
    return {
        "id": order.public_id,
        "status": order.status,
        "quantity": order.quantity,
        "amount": money(order.amount),
        "batch_code": order.batch_code,
        "beneficiary": order.beneficiary,
        "purpose": order.purpose,
        "purpose_detail": order.purpose_detail,
        "lines": [
            {
                "batch_code": line.batch.code,
                "quantity": line.quantity,
                "unit_price": money(line.unit_price),
                "amount": money(line.amount),
            }
            for line in order.lines
        ],
        "hold_expires_at": order.hold_expires_at.isoformat(),
        "payment": {"payment_intent": order.payment_intent_id, "client_secret": order.client_secret},
        "certificate": None
        if order.certificate is None
        else {"number": order.certificate.number, "url": certificate_url(order.certificate)},
    }


@bp.post("/orders")
@require_key("orders.create")
def create_order():
    body = json_object()
    organisation = g.principal.organisation
    key = request.headers.get("Idempotency-Key")
    try:
        order, created = services.create_order(
            organisation,
            body.get("quantity"),
            beneficiary=body.get("beneficiary", organisation.name_zh),
            purpose=body.get("purpose", "voluntary"),
            purpose_detail=body.get("purpose_detail", ""),
            batch_code=body.get("batch_code"),
            actor=g.principal.actor,
            idempotency_key=key,
            digest=request_digest(body) if key is not None else None,
        )
        if created:
            db.session.commit()  # the hold stands before Stripe is called
            services.attach_payment(order)
        else:
            # A replay: finish what the first request may have left undone (it died after the
            # hold was committed, before its PaymentIntent was recorded).
            services.expire_on_access(order)
            services.ensure_payment(order)
    except services.OrderError as exc:
        db.session.commit() if exc.code == "payment_unavailable" else db.session.rollback()
        return api_error(exc.status, exc.code, exc.message)
    headers = {} if created else {"Idempotent-Replayed": "true"}
    return {"order": order_json(order)}, 201, headers


@bp.get("/orders/<public_id>")
@require_key("orders.read_own")
def get_order(public_id):
    order = services.find(public_id)
    if order is None or not may(g.principal, "view", order):
        return api_error(404, "unknown_order", _("There is no such order."))
    services.expire_on_access(order)
    return {"order": order_json(order)}
