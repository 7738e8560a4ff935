"""``Authorization: Bearer <api key>`` on /api/v1; permissions come from ``portal.access``."""

from functools import wraps

from flask import g, jsonify, request
from flask_babel import gettext as _

from portal import access
from portal.buyers import services as buyers


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
            key = buyers.authenticate_api_key(presented.strip())
            if key is None:
                return _unauthorized(_("The API key is unknown, revoked or no longer allowed."))
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
