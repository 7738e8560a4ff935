"""Signing in with a password, throttled against guessing, and which sessions stay good."""

import functools
import hmac
from datetime import timedelta

from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import joinedload
from werkzeug.security import check_password_hash, generate_password_hash

from portal.buyers.errors import SignInError
from portal.buyers.models import OrgStatus, User
from portal.buyers.tokens import send_confirmation
from portal.core import throttle
from portal.extensions import db

#: At most this many failures in the window: per e-mail from one client address (guessing one
#: account), per e-mail from anywhere (distributed guessing), per client address (one client
#: trying many accounts). The first is low; the others high enough that a stranger cannot lock
#: a user out from elsewhere. Behind a proxy, set PORTAL_PROXY_FIX_X_FOR so addresses are real.
FAILURES_PER_EMAIL_AND_ADDRESS = 5
FAILURES_PER_EMAIL = 50
FAILURES_PER_ADDRESS = 20
FAILURE_WINDOW = timedelta(minutes=15)
SIGNIN_PAIR = throttle.Rule("signin.email_address", FAILURES_PER_EMAIL_AND_ADDRESS, FAILURE_WINDOW)
SIGNIN_EMAIL = throttle.Rule("signin.email", FAILURES_PER_EMAIL, FAILURE_WINDOW)
SIGNIN_ADDRESS = throttle.Rule("signin.address", FAILURES_PER_ADDRESS, FAILURE_WINDOW)


@functools.cache
def _dummy_hash() -> str:
    """Compared against when the e-mail is unknown, so that timing does not tell who has an
    account. Made on first use: scrypt takes 32 MiB and 0.1 s, which no worker should pay at start."""
    return generate_password_hash("not a password of anyone")


def sign_in(email: str, password: str, address: str) -> User:
    """The user these credentials belong to; raises SignInError (and records the failure)."""
    email = email.strip().lower()[:254]
    address = address[:64]
    # Counted before the password is checked, so that a burst of guesses cannot all pass the
    # limit together; given back below when the password is right.
    hits = ((SIGNIN_PAIR, f"{email} {address}"), (SIGNIN_EMAIL, email), (SIGNIN_ADDRESS, address))
    if throttle.take(*hits) is not None:
        raise SignInError(_("Too many failed attempts. Please wait 15 minutes and try again."), 429)
    user = db.session.scalar(select(User).filter_by(email=email))
    if not check_password_hash(user.password_hash if user else _dummy_hash(), password) or user is None:
        raise SignInError(_("The e-mail address or the password is wrong."), 401)
    throttle.give_back(*hits)  # a right password is no failure
    if not _usable(user):
        raise SignInError(_("This account is suspended. Please contact the operator."), 403)
    if user.confirmed_at is None:
        send_confirmation(user)
        raise SignInError(_("Please confirm your e-mail address first: we have sent you a new link."), 403)
    return user


def user_for_session(session_id) -> User | None:
    """The user a session (or remember-me cookie) belongs to, if it is still good: same
    password as when it was made, user active, organisation neither suspended nor barred."""
    user_id, _sep, stamp = str(session_id).partition(".")
    try:
        # with its organisation in the same statement: every signed-in page checks it
        user = db.session.get(User, int(user_id), options=[joinedload(User.organisation)])
    except (TypeError, ValueError):
        return None
    if user is None or not hmac.compare_digest(user.session_stamp, stamp):
        return None
    return user if _usable(user) else None


def _usable(user: User) -> bool:
    if not user.is_active:
        return False
    return not (
        user.organisation is not None and user.organisation.status in (OrgStatus.SUSPENDED, OrgStatus.BARRED)
    )
