"""The webhooks page of an organisation's account: its endpoints, the secret shown once, and the
log of deliveries with "send again"."""

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from portal.access import page
from portal.core.confirm import ask, confirmed
from portal.core.errors import ServiceError
from portal.webhooks import services
from portal.webhooks.models import DELIVERY_STATUS_LABELS, EVENT_TYPE_LABELS

bp = Blueprint("webhooks", __name__, template_folder="templates")


def _actor() -> str:
    return f"user:{current_user.id}"


def _page(new_secret=None, endpoint=None, status=200, form=None):
    organisation = current_user.organisation
    body = render_template(
        "webhooks/webhooks.html",
        endpoints=services.endpoints_of(organisation),
        deliveries=services.deliveries_of(organisation),
        event_labels=EVENT_TYPE_LABELS,
        status_labels=DELIVERY_STATUS_LABELS,
        new_secret=new_secret,
        new_endpoint=endpoint,
        form=form or {},
    )
    return body, status, {"Cache-Control": "no-store"} if new_secret else {}


@bp.get("/account/webhooks")
@page("webhooks.manage")
def webhooks():
    return _page()


@bp.post("/account/webhooks")
@page("webhooks.manage")
def create_webhook():
    form = {"url": request.form.get("url", "")[:3000], "events": request.form.getlist("events")}
    try:
        endpoint, secret = services.create_endpoint(
            current_user.organisation, form["url"], form["events"], actor=_actor()
        )
    except ServiceError as exc:
        flash(exc.message, "error")
        return _page(status=exc.status, form=form)
    # The secret is in this response only: never in the session or a redirect.
    return _page(new_secret=secret, endpoint=endpoint, status=201)


@bp.post("/account/webhooks/<public_id>/rotate")
@page("webhooks.manage")
def rotate_webhook_secret(public_id):
    endpoint = services.endpoint_of(current_user.organisation, public_id)
    if not confirmed():
        return ask(
            title=_("Give the endpoint a new secret?"),
            consequences=[
                _("Deliveries are signed with the new secret from now on."),
                _("Your receiver must check signatures with the new secret, or it will refuse them."),
            ],
            facts=[(_("Endpoint"), endpoint.url)],
            button=_("Make a new secret"),
            back=url_for("webhooks.webhooks"),
        )
    endpoint, secret = services.rotate_secret(current_user.organisation, public_id, actor=_actor())
    return _page(new_secret=secret, endpoint=endpoint)


@bp.post("/account/webhooks/<public_id>/delete")
@page("webhooks.manage")
def delete_webhook(public_id):
    endpoint = services.endpoint_of(current_user.organisation, public_id)
    if not confirmed():
        return ask(
            title=_("Remove the webhook endpoint?"),
            consequences=[
                _("Nothing more is sent to it, also of events not yet delivered."),
                _("Its deliveries stay in the log below."),
            ],
            facts=[(_("Endpoint"), endpoint.url)],
            button=_("Remove the endpoint"),
            back=url_for("webhooks.webhooks"),
        )
    services.delete_endpoint(current_user.organisation, public_id, actor=_actor())
    flash(_("The endpoint is removed."), "info")
    return redirect(url_for("webhooks.webhooks")), 303


@bp.post("/account/webhooks/deliveries/<int:delivery_id>/redeliver")
@page("webhooks.manage")
def redeliver(delivery_id):
    services.redeliver(current_user.organisation, delivery_id, actor=_actor())
    flash(_("The delivery will be sent again within a minute."), "info")
    return redirect(url_for("webhooks.webhooks")), 303
