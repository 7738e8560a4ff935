"""Signed links sent by e-mail: confirming an address and resetting a password."""

import hashlib
from datetime import timedelta

from flask import current_app
from flask_babel import gettext as _
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import select
from werkzeug.security import generate_password_hash

from portal.audit import services as audit
from portal.buyers.accounts import password_problem
from portal.buyers.errors import OrganisationError, SignInError
from portal.buyers.models import User
from portal.core import mail, throttle
from portal.core.i18n import absolute_url
from portal.extensions import db
from portal.timeutil import utcnow

CONFIRM_MAX_AGE = 3 * 24 * 3600
RESET_MAX_AGE = 3600


def _serializer(purpose: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=f"portal.{purpose}")


def _password_stamp(user: User) -> str:
    # Part of the current hash: a reset link stops working once the password has changed.
    return hashlib.sha256(user.password_hash.encode()).hexdigest()[:16]


def send_confirmation(user: User) -> None:
    token = _serializer("confirm").dumps({"user": user.id, "email": user.email})
    link = absolute_url("buyers.confirm", token=token)
    mail.send(
        user.email,
        _("Confirm your e-mail address"),
        _(
            "Welcome to the Chifeng Carbon Sink Marketplace. Confirm your e-mail address by opening "
            "this link within three days:\n\n%(link)s\n\nYour organisation can buy once the operator "
            "has approved it.",
            link=link,
        ),
    )


def confirm_email(token: str) -> User:
    try:
        data = _serializer("confirm").loads(token, max_age=CONFIRM_MAX_AGE)
        user = db.session.get(User, int(data["user"]))
    except SignatureExpired:
        raise OrganisationError(
            "token_expired", _("This link has expired. Sign in to get a new one.")
        ) from None
    except (BadSignature, KeyError, TypeError, ValueError):
        raise OrganisationError("token_invalid", _("This link is not valid.")) from None
    if user is None or user.email != data.get("email"):
        raise OrganisationError("token_invalid", _("This link is not valid."))
    if user.confirmed_at is None:
        user.confirmed_at = utcnow()
        audit.record(f"user:{user.id}", "user.confirm", "user", user.id, after={"email": user.email})
    return user


RESETS_PER_EMAIL = 3
RESETS_PER_ADDRESS = 20
RESET_WINDOW = timedelta(hours=1)
RESETS_FROM_ADDRESS = throttle.Rule("reset.address", RESETS_PER_ADDRESS, RESET_WINDOW)
RESETS_FOR_EMAIL = throttle.Rule("reset.email", RESETS_PER_EMAIL, RESET_WINDOW)


def request_password_reset(email: str, address: str = "") -> None:
    """Mail a reset link if the address belongs to a user; say nothing either way. Throttled:
    a client asking too often is told so; an address asked for too often silently gets no more
    mail (saying so would tell who has an account)."""
    email = email.strip().lower()[:254]
    if throttle.take((RESETS_FROM_ADDRESS, address[:64])) is not None:
        raise SignInError(_("Too many requests. Please wait a moment and try again."), 429)
    if throttle.take((RESETS_FOR_EMAIL, email)) is not None:
        return
    user = db.session.scalar(select(User).filter_by(email=email))
    if user is None or not user.is_active:
        return
    token = _serializer("reset").dumps({"user": user.id, "stamp": _password_stamp(user)})
    link = absolute_url("buyers.reset_password", token=token)
    mail.send(
        user.email,
        _("Reset your password"),
        _(
            "Someone asked to reset the password of your account. If it was you, open this link "
            "within an hour:\n\n%(link)s\n\nIf it was not, ignore this message.",
            link=link,
        ),
    )


def reset_password(token: str, password: str) -> User:
    try:
        data = _serializer("reset").loads(token, max_age=RESET_MAX_AGE)
        user = db.session.get(User, int(data["user"]))
    except SignatureExpired:
        raise OrganisationError("token_expired", _("This link has expired. Ask for a new one.")) from None
    except (BadSignature, KeyError, TypeError, ValueError):
        raise OrganisationError("token_invalid", _("This link is not valid.")) from None
    if user is None or data.get("stamp") != _password_stamp(user):
        raise OrganisationError("token_invalid", _("This link is not valid."))
    problem = password_problem(password, user.email)
    if problem:
        raise OrganisationError("weak_password", problem)
    user.password_hash = generate_password_hash(password)
    audit.record(f"user:{user.id}", "user.reset_password", "user", user.id)
    return user
