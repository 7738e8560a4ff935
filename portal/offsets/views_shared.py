"""What the checkout pages share: their blueprint (``views``, ``views_basket``, ``views_pay`` and
``views_guest`` put routes on it), finding the order a page is about, the Content-Security-Policy
of the pages that load Stripe.js, and the choice between sign-in and guest checkout."""

from functools import wraps

from flask import Blueprint, abort, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from portal.access import may
from portal.offsets import basket, services

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


def visitors_choose(view):
    """For the checkout page: a visitor (not signed in) coming from a buy form (a line being
    added, or lines saved) is offered sign-in or guest checkout instead of being sent to sign in.
    The footprint calculator's single quantity still asks to sign in."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        if (
            not current_user.is_authenticated
            and request.method == "GET"
            and (request.args.get("add") or basket.saved())
        ):
            return redirect(url_for("offsets.guest_checkout", **adding()))
        return view(*args, **kwargs)

    return wrapper


def adding() -> dict:
    """The line a buy form sent (``add``, ``quantity``), to pass on."""
    return {k: (request.args.get(k) or "")[:80] for k in ("add", "quantity") if request.args.get(k)}


def saved_for_later(lines):
    """The answer to "Save and add more credits" (a buyer's or a guest's order page): the lines
    are kept in the session; back to the catalog, saying so."""
    flash(
        _(
            "Saved in your order: %(n)s lines. Add more from the catalog, then hold them all at once.",
            n=len(lines),
        ),
        "success",
    )
    return redirect(url_for("catalog.index"))
