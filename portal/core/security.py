"""Security headers on every response; private pages are never cached."""

from flask import current_app, request
from flask_login import current_user

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)

#: Pages with someone's own data (accounts, keys, the back office, exports).
PRIVATE_PREFIXES = (
    "/account",
    "/staff",
    "/api/v1/holdings",
    "/api/v1/orders",
    "/login",
    "/signup",
    "/reset",
    "/confirm",
    "/checkout",
    "/orders",
)


def apply(response):
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CSP)
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
    if current_app.config.get("SESSION_COOKIE_SECURE"):
        headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    if request.path.startswith(PRIVATE_PREFIXES) or current_user.is_authenticated:
        headers["Cache-Control"] = "private, no-store"
    return response


def register(app):
    app.after_request(apply)
