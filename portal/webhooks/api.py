"""``/api/v1/webhook-endpoints``: an organisation's endpoints, through its own API key (on the API
blueprint). The secret is in the answer that makes or rotates it, and never again (keyed answers
are never stored by caches: ``private, no-store``)."""

from flask import g

from portal.api.auth import require_key
from portal.api.views import bp, json_object
from portal.webhooks import services


@bp.post("/webhook-endpoints")
@require_key("webhooks.manage")
def create_webhook_endpoint():
    body = json_object()
    endpoint, secret = services.create_endpoint(
        g.principal.organisation, body.get("url"), body.get("events"), actor=g.principal.actor
    )
    return services.endpoint_json(endpoint, secret), 201


@bp.get("/webhook-endpoints")
@require_key("webhooks.manage")
def list_webhook_endpoints():
    return {"items": [services.endpoint_json(e) for e in services.endpoints_of(g.principal.organisation)]}


@bp.delete("/webhook-endpoints/<public_id>")
@require_key("webhooks.manage")
def delete_webhook_endpoint(public_id):
    services.delete_endpoint(g.principal.organisation, public_id, actor=g.principal.actor)
    return "", 204


@bp.post("/webhook-endpoints/<public_id>/rotate-secret")
@require_key("webhooks.manage")
def rotate_webhook_secret(public_id):
    endpoint, secret = services.rotate_secret(g.principal.organisation, public_id, actor=g.principal.actor)
    return services.endpoint_json(endpoint, secret)
