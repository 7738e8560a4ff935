"""Security headers on every response; private answers are never cached."""

from flask import current_app, g, request
from flask_login import current_user

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)


def is_private() -> bool:
    """The answer is for this client only, and no cache may keep it: the request carries
    credentials (an API key, or the session of a signed-in user) — whatever the answer, errors
    included — or the page hands out a secret of this session (a form's CSRF token: the sign-in,
    sign-up and password-reset forms of anonymous visitors)."""
    return (
        "Authorization" in request.headers
        or current_user.is_authenticated
        or current_app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token") in g
    )


def apply(response):
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CSP)
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
    if current_app.config.get("SESSION_COOKIE_SECURE"):
        headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    if is_private():
        headers["Cache-Control"] = "private, no-store"
    return response


def register(app):
    app.after_request(apply)
