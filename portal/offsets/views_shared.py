"""What the checkout pages share: their blueprint (``views``, ``views_basket`` and ``views_pay``
put routes on it), finding the order a page is about, and the Content-Security-Policy of the
pages that load Stripe.js."""

from flask import Blueprint, abort
from flask_login import current_user

from portal.access import may
from portal.offsets import services

bp = Blueprint("offsets", __name__, template_folder="templates")

#: Stripe.js and its frames, allowed on the payment page only (real Stripe keys).
STRIPE_CSP = (
    "default-src 'self'; script-src 'self' https://js.stripe.com; style-src 'self'; "
    "img-src 'self' data: https://*.stripe.com; frame-src https://js.stripe.com https://hooks.stripe.com; "
    "connect-src 'self' https://api.stripe.com; object-src 'none'; base-uri 'self'; form-action 'self'; "
    "frame-ancestors 'none'"
)


def own_order(public_id):
    """The order, if the signed-in user may see it (its organisation's users, or staff); 404 for
    anyone else, so order ids cannot be probed."""
    order = services.find(public_id)
    if order is None or not may(current_user, "view", order):
        abort(404)
    return order
