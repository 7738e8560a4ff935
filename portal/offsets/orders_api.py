"""``POST /api/v1/orders``, ``GET /api/v1/orders/<id>`` and ``POST /api/v1/quotes`` (on the API
blueprint). An order names its tonnes one of three ways: ``quantity`` (and ``batch_code``),
``lines`` (``[{"batch_code", "quantity"}, …]``, held all or none) or a ``quote`` (its lines at
the quoted prices, while it is valid); a quote prices lines without holding anything."""

from flask import g, request
from flask_babel import gettext as _

from portal.access import may
from portal.api.auth import require_key
from portal.api.views import api_error, bp, json_object, money
from portal.certificates.services import certificate_url
from portal.core.idempotency import request_digest
from portal.extensions import db
from portal.offsets import services
from portal.offsets.models import Order, Quote


def lines_json(lines) -> list[dict]:
    return [
        {
            "batch_code": line.batch.code,
            "project_code": line.batch.project.code,
            "quantity": line.quantity,
            "unit_price": money(line.unit_price),
            "amount": money(line.amount),
        }
        for line in lines
    ]


def quote_json(quote: Quote) -> dict:
    return {
        "id": quote.public_id,
        "quantity": quote.quantity,
        "amount": money(quote.amount),
        "lines": lines_json(quote.lines),
        "created_at": quote.created_at.isoformat(),
        "expires_at": quote.expires_at.isoformat(),
    }


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
        "lines": lines_json(order.lines),
        "quote": order.quote.public_id if order.quote is not None else None,
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
            lines=body.get("lines"),
            quote=body.get("quote"),
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


@bp.post("/quotes")
@require_key("orders.create")
def create_quote():
    body = json_object()
    try:
        quote = services.create_quote(g.principal.organisation, body.get("lines"), actor=g.principal.actor)
    except services.OrderError as exc:
        db.session.rollback()
        return api_error(exc.status, exc.code, exc.message)
    return {"quote": quote_json(quote)}, 201
