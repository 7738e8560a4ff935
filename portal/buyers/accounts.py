"""Users: e-mail and password rules, creation, look-up and (de)activation."""

import re

from flask_babel import gettext as _
from sqlalchemy import select
from werkzeug.security import generate_password_hash

from portal.audit import services as audit
from portal.buyers.errors import OrganisationError
from portal.buyers.models import Organisation, Role, User
from portal.core.text import has_hidden_characters
from portal.extensions import db
from portal.timeutil import utcnow

EMAIL_PATTERN = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


MIN_PASSWORD_LENGTH = 10


def password_problem(password: str, email: str = "") -> str | None:
    """A translated sentence saying why a password is too weak, or None."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return _("The password must have at least %(n)s characters.", n=MIN_PASSWORD_LENGTH)
    if len(password) > 256:
        return _("The password must have at most %(n)s characters.", n=256)
    if password.isdigit() or password.isalpha() or len(set(password)) < 5:
        return _("The password is too easy to guess: mix letters, digits or symbols.")
    local = email.split("@")[0].lower()
    if len(local) >= 4 and local in password.lower():
        return _("The password must not contain your e-mail address.")
    return None


def _check_user(*, email: str, password: str) -> str:
    """The normalised e-mail address, or OrganisationError saying what is wrong."""
    email = email.strip().lower()
    if not EMAIL_PATTERN.fullmatch(email) or len(email) > 254 or has_hidden_characters(email):
        raise OrganisationError("invalid_email", _("%(email)s is not a valid e-mail address.", email=email))
    problem = password_problem(password, email)
    if problem:
        raise OrganisationError("weak_password", problem)
    return email


def create_user(
    *,
    email: str,
    password: str,
    role: str,
    organisation: Organisation | None = None,
    region=None,
    actor: str = "cli",
    confirmed: bool = True,
    password_hash: str | None = None,
) -> User:
    """A user. Users created by staff are confirmed; self-registered ones confirm by e-mail.
    ``password_hash``: the password already hashed (registration hashes it whatever happens)."""
    if role not in set(Role):
        raise OrganisationError("invalid_role", _("Unknown role %(role)s.", role=role))
    if (role == Role.BUYER) != (organisation is not None):
        raise OrganisationError("role_organisation", _("A buyer belongs to one organisation; staff to none."))
    if (role == Role.COUNTY) != (region is not None):
        raise OrganisationError(
            "role_county", _("A county reviewer belongs to one county-level unit; nobody else to any.")
        )
    email = _check_user(email=email, password=password)
    if db.session.scalar(select(User.id).filter_by(email=email)) is not None:
        raise OrganisationError(
            "duplicate_email", _("A user with e-mail %(email)s already exists.", email=email)
        )
    user = User(
        email=email,
        password_hash=password_hash or generate_password_hash(password),
        role=role,
        organisation=organisation,
        region=region,
        confirmed_at=utcnow() if confirmed else None,
    )
    db.session.add(user)
    db.session.flush()
    audit.record(
        actor,
        "user.create",
        "user",
        user.id,
        after={
            "email": email,
            "role": role,
            "organisation": organisation.uscc if organisation else None,
            **({"county": region.code} if region is not None else {}),
        },
    )
    return user


def find_user(email: str) -> User:
    user = db.session.scalar(select(User).filter_by(email=email.strip().lower()))
    if user is None:
        raise OrganisationError("unknown_user", _("There is no user with e-mail %(email)s.", email=email))
    return user


def set_user_active(user: User, active: bool, *, actor: str) -> User:
    """Deactivate a user (their sessions and keys stop at once) or reactivate them."""
    if user.is_active != active:
        audit.record(
            actor,
            "user.activate" if active else "user.deactivate",
            "user",
            user.id,
            before={"is_active": user.is_active},
            after={"is_active": active},
        )
        user.is_active = active
    return user


def operator_emails() -> list[str]:
    """The addresses of the active operators: who is told when something needs a person."""
    return list(db.session.scalars(select(User.email).filter_by(role=Role.OPERATOR, is_active=True)))
