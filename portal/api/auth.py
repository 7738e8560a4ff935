"""``Authorization: Bearer <api key>`` on /api/v1; permissions come from ``portal.access``; and
the API's rate limit: ``API_RATE_LIMIT`` calls per key (per client address for the public
endpoints) in ``API_RATE_WINDOW`` seconds, announced in ``RateLimit-*`` headers."""

from datetime import timedelta
from functools import wraps

from flask import current_app, g, jsonify, request
from flask_babel import gettext as _

from portal import access
from portal.buyers import services as buyers
from portal.core import throttle


def _rule() -> throttle.Rule:
    config = current_app.config
    return throttle.Rule(
        "api", int(config["API_RATE_LIMIT"]), timedelta(seconds=int(config["API_RATE_WINDOW"]))
    )


def count_call(caller: str):
    """Count this call against ``caller`` (``address:<ip>``: a public call): None when within the
    limit, else the 429 to answer with."""
    # The hit stands however the call ends (an error answer rolls the request back), and the
    # counter's row is not held locked while the call runs.
    return _refusal(throttle.announce(_rule(), caller[:120], at_once=True))


def _refusal(quota: throttle.Quota | None):
    if quota is None or quota.allowed:
        return None
    response = jsonify(
        error={
            "code": "rate_limited",
            "message": _(
                "Too many API calls. Please wait %(n)s seconds and try again.", n=quota.reset_seconds
            ),
        }
    )
    response.status_code = 429
    return response


def _unauthorized(message: str):
    response = jsonify(error={"code": "invalid_api_key", "message": message})
    response.status_code = 401
    response.headers["WWW-Authenticate"] = 'Bearer realm="api"'
    return response


def require_key(*actions: str):
    """The endpoint needs a live API key whose principal may perform one of ``actions`` (the
    objects it reaches are checked with ``access.may(g.principal, ..., obj)``)."""

    def decorate(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            header = request.headers.get("Authorization", "")
            scheme, _sep, presented = header.partition(" ")
            if scheme.lower() != "bearer" or not presented.strip():
                return _unauthorized(_("This call needs an API key: Authorization: Bearer <key>."))
            # Counted against the key as it is read (one statement on PostgreSQL), whatever
            # the call is then answered: every call made with the key's secret counts.
            key, quota = buyers.authenticate_call(presented.strip(), _rule())
            if key is None:
                return _unauthorized(_("The API key is unknown, revoked or no longer allowed."))
            refused = _refusal(quota)
            if refused is not None:
                return refused
            principal = access.Principal.from_api_key(key)
            if not access.may_any(principal, actions):
                response = jsonify(error={"code": "forbidden", "message": _("This key may not do that.")})
                response.status_code = 403
                return response
            g.principal = principal
            return view(*args, **kwargs)

        wrapper.api_key_action = actions  # the keyed routes can be listed from the URL map
        return access.guarded(wrapper, "api", actions)

    return decorate
