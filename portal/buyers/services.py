"""Rules about buyer organisations."""

import functools
import hashlib
import hmac
import logging
import re
import secrets
from datetime import timedelta

from flask import current_app
from flask_babel import gettext as _
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import select
from werkzeug.security import check_password_hash, generate_password_hash

from portal import access
from portal.audit import services as audit
from portal.buyers import uscc as uscc_rules
from portal.buyers.models import (
    MEASURES,
    ApiKey,
    Organisation,
    OrgStatus,
    Role,
    Sector,
    StatusMeasure,
    User,
)
from portal.catalog.labels import org_status_label
from portal.core import mail, throttle
from portal.core.errors import ServiceError
from portal.core.i18n import absolute_url
from portal.core.text import has_hidden_characters
from portal.extensions import db
from portal.ledger import services as ledger
from portal.ledger.models import Account, AccountKind
from portal.timeutil import utcnow

log = logging.getLogger(__name__)

EMAIL_PATTERN = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
LAST_USED_RESOLUTION = timedelta(minutes=1)


class OrganisationError(Exception):
    def __init__(self, code: str, message: str):
        self.code = code
        self.message = message
        super().__init__(message)


def uscc_error(code: str) -> str | None:
    """A translated sentence saying what is wrong with a USCC, or None when it is valid."""
    reason = uscc_rules.problem(code)
    if reason is None:
        return None
    return {
        "length": _("A unified social credit code has exactly 18 characters (got %(n)s).", n=len(code)),
        "characters": _(
            "A unified social credit code uses only digits and the letters A–Y except I, O, S, V and Z."
        ),
        "division": _(
            "Characters 3 to 8 of a unified social credit code are the administrative division code (digits)."
        ),
        "check": _(
            "The last character of %(code)s does not match its check character: please check the code.",
            code=code,
        ),
    }[reason]


def _check_organisation(*, name_zh: str, name_en: str, uscc: str, sector: str) -> str:
    """The normalised USCC, or OrganisationError saying what is wrong with the details."""
    code = uscc_rules.normalise(uscc)
    message = uscc_error(code)
    if message:
        raise OrganisationError("invalid_uscc", message)
    if sector not in set(Sector):
        raise OrganisationError("invalid_sector", _("Unknown sector %(sector)s.", sector=sector))
    if not name_zh.strip() or len(name_zh) > 200 or len(name_en) > 200:
        raise OrganisationError("invalid_name", _("The name must have 1 to 200 characters."))
    return code


def create_organisation(
    *,
    name_zh: str,
    uscc: str,
    sector: str,
    name_en: str = "",
    alliance_member: bool = False,
    ets_entity: bool = False,
    approve: bool = False,
    actor: str = "cli",
) -> Organisation:
    code = _check_organisation(name_zh=name_zh, name_en=name_en, uscc=uscc, sector=sector)
    if db.session.scalar(select(Organisation.id).filter_by(uscc=code)) is not None:
        raise OrganisationError(
            "duplicate_uscc", _("An organisation with code %(code)s already exists.", code=code)
        )
    org = Organisation(
        name_zh=name_zh.strip(),
        name_en=name_en.strip(),
        uscc=code,
        sector=sector,
        alliance_member=alliance_member,
        ets_entity=ets_entity,
        status=OrgStatus.APPROVED if approve else OrgStatus.PENDING,
        status_since=utcnow(),
    )
    db.session.add(org)
    db.session.flush()
    audit.record(
        actor,
        "organisation.create",
        "organisation",
        code,
        after={
            "name_zh": org.name_zh,
            "name_en": org.name_en,
            "sector": sector,
            "status": org.status,
            "alliance_member": alliance_member,
            "ets_entity": ets_entity,
        },
    )
    log.info("organisation %s created (%s)", code, org.status)
    return org


def find_by_uscc(code: str) -> Organisation:
    org = db.session.scalar(select(Organisation).filter_by(uscc=uscc_rules.normalise(code)))
    if org is None:
        raise OrganisationError(
            "unknown_organisation", _("There is no organisation with code %(code)s.", code=code)
        )
    return org


def holding_account(org: Organisation) -> Account:
    return ledger.open_account(AccountKind.HOLDING, org.holding_ref)


def holding_blocks(org: Organisation):
    """The organisation's blocks, in allocation order (read-only: no account is opened)."""
    account = db.session.scalar(select(Account).filter_by(kind=AccountKind.HOLDING, ref=org.holding_ref))
    return [] if account is None else ledger.blocks_of(account)


def deliver_from_inventory(org: Organisation, quantity: int, *, batch_codes=None, actor: str = "cli"):
    """An offline sale: the operator moves credits from inventory to the organisation's holding."""
    if org.status in (OrgStatus.SUSPENDED, OrgStatus.BARRED):
        raise OrganisationError(
            "organisation_not_allowed",
            _(
                "%(name)s cannot receive credits (status: %(status)s).",
                name=org.name_zh,
                status=org_status_label(org.status),
            ),
        )
    return ledger.transfer(
        quantity,
        source=ledger.system_account(AccountKind.INVENTORY),
        destination=holding_account(org),
        batch_codes=batch_codes,
        reference=f"delivery:{org.uscc}",
        actor=actor,
    )


# --- users -----------------------------------------------------------------------------------

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
        confirmed_at=utcnow() if confirmed else None,
    )
    db.session.add(user)
    db.session.flush()
    audit.record(
        actor,
        "user.create",
        "user",
        user.id,
        after={"email": email, "role": role, "organisation": organisation.uscc if organisation else None},
    )
    return user


def find_user(email: str) -> User:
    user = db.session.scalar(select(User).filter_by(email=email.strip().lower()))
    if user is None:
        raise OrganisationError("unknown_user", _("There is no user with e-mail %(email)s.", email=email))
    return user


# --- API keys ----------------------------------------------------------------------------------

KEY_PREFIX = "cfk"


def create_api_key(
    *, organisation: Organisation | None = None, user: User | None = None, label: str = "", actor: str = "cli"
) -> tuple[ApiKey, str]:
    """A new key for an organisation or a staff member; returns it with its only plaintext copy."""
    if (organisation is None) == (user is None):
        raise ValueError("an API key belongs to one organisation or one user")
    if organisation is not None and organisation.status != OrgStatus.APPROVED:
        raise OrganisationError(
            "organisation_not_approved",
            _(
                "Only approved organisations may have API keys (%(name)s: %(status)s).",
                name=organisation.name_zh,
                status=org_status_label(organisation.status),
            ),
        )
    if user is not None and not access.is_staff(user):
        raise OrganisationError("not_staff", _("Buyers use their organisation's keys."))
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    key = ApiKey(
        prefix=prefix, secret_hash=_digest(secret), organisation=organisation, user=user, label=label[:120]
    )
    db.session.add(key)
    db.session.flush()
    owner = {"organisation": organisation.uscc} if organisation else {"user": user.email}
    audit.record(actor, "apikey.create", "apikey", key.prefix, after={**owner, "label": key.label})
    return key, f"{KEY_PREFIX}_{prefix}_{secret}"


def keys_of(user: User) -> list[ApiKey]:
    """The keys a user manages: the organisation's for a buyer, their own for staff."""
    query = select(ApiKey).order_by(ApiKey.created_at.desc())
    if user.organisation_id is not None:
        query = query.where(ApiKey.organisation_id == user.organisation_id)
    else:
        query = query.where(ApiKey.user_id == user.id)
    return list(db.session.scalars(query))


def revoke_api_key(prefix: str, *, actor: str = "cli") -> ApiKey:
    key = db.session.scalar(select(ApiKey).filter_by(prefix=prefix))
    if key is None:
        raise OrganisationError("unknown_key", _("There is no API key %(prefix)s.", prefix=prefix))
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        audit.record(
            actor,
            "apikey.revoke",
            "apikey",
            key.prefix,
            before={"revoked_at": None},
            after={"revoked_at": key.revoked_at},
        )
    return key


def authenticate_api_key(presented: str) -> ApiKey | None:
    """The live key matching ``presented``, or None. Constant-time comparison of the secret."""
    parts = presented.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX or not parts[1] or not parts[2] or len(presented) > 200:
        return None
    key = db.session.scalar(select(ApiKey).filter_by(prefix=parts[1]))
    if key is None or not hmac.compare_digest(key.secret_hash, _digest(parts[2])):
        return None
    if key.revoked_at is not None:
        return None
    if key.user is not None and not key.user.is_active:
        return None
    if key.organisation is not None and key.organisation.status in (OrgStatus.SUSPENDED, OrgStatus.BARRED):
        return None
    now = utcnow()
    if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
        key.last_used_at = now  # at most one write a minute per key
    return key


def _digest(secret: str) -> str:
    # The secret has 256 bits of entropy: a fast hash is enough (no guessing to slow down).
    return hashlib.sha256(secret.encode()).hexdigest()


# --- signing in --------------------------------------------------------------------------------

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


class SignInError(Exception):
    def __init__(self, message: str, status: int):
        self.message = message
        self.status = status
        super().__init__(message)


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
        user = db.session.get(User, int(user_id))
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


# --- organisation status -----------------------------------------------------------------------

#: Which status may follow which; "reinstate" is a move back to approved.
STATUS_MOVES = {
    OrgStatus.PENDING: {OrgStatus.APPROVED, OrgStatus.BARRED},
    OrgStatus.APPROVED: {OrgStatus.SUSPENDED, OrgStatus.RESTRICTED, OrgStatus.BARRED},
    OrgStatus.SUSPENDED: {OrgStatus.APPROVED, OrgStatus.RESTRICTED, OrgStatus.BARRED},
    OrgStatus.RESTRICTED: {OrgStatus.APPROVED, OrgStatus.SUSPENDED, OrgStatus.BARRED, OrgStatus.RESTRICTED},
    OrgStatus.BARRED: {OrgStatus.APPROVED},
}


def check_status_change(
    org: Organisation,
    status: str,
    *,
    reason: str,
    order_limit_t: int | None = None,
    year_limit_t: int | None = None,
) -> str:
    """The reason as it will be kept, if ``org`` may become ``status`` with these limits;
    OrganisationError otherwise. Changes nothing (the back office asks for confirmation next)."""
    reason = (reason or "").strip()
    if not status:
        raise OrganisationError("status_required", _("Choose the new status."))
    if status not in set(OrgStatus) or status == OrgStatus.PENDING:
        raise OrganisationError("invalid_status", _("Unknown status %(status)s.", status=status))
    if status == org.status and status != OrgStatus.RESTRICTED:
        raise OrganisationError(
            "unchanged_status",
            _(
                "%(name)s already has the status %(status)s.",
                name=org.name_zh,
                status=org_status_label(status),
            ),
        )
    if status not in STATUS_MOVES[OrgStatus(org.status)]:
        raise OrganisationError(
            "invalid_status_change",
            _(
                "An organisation with status %(old)s cannot become %(new)s.",
                old=org_status_label(org.status),
                new=org_status_label(status),
            ),
        )
    if not reason or len(reason) > 2000:
        raise OrganisationError("reason_required", _("Give a reason of 1 to 2,000 characters."))
    if status == OrgStatus.RESTRICTED:
        for limit in (order_limit_t, year_limit_t):
            if limit is not None and (type(limit) is not int or limit <= 0 or limit > 2**31 - 1):
                raise OrganisationError("invalid_limit", _("A limit is a whole number of tonnes above zero."))
        if order_limit_t is None and year_limit_t is None:
            raise OrganisationError("limit_required", _("A restriction needs a per-order or per-year limit."))
    elif order_limit_t is not None or year_limit_t is not None:
        raise OrganisationError("limit_unexpected", _("Limits apply only to restricted organisations."))
    return reason


def change_status(
    org: Organisation,
    status: str,
    *,
    reason: str,
    order_limit_t: int | None = None,
    year_limit_t: int | None = None,
    actor: str = "cli",
) -> Organisation:
    """Approve, suspend, restrict (with limits), bar or reinstate an organisation, with a reason.
    A measure (suspension, restriction, bar) is kept with its dates; the one in force ends when
    the organisation is reinstated or another measure replaces it, and stays as history."""
    # The organisation's row is locked (as orders lock it), so two changes take turns and each
    # sees the status the other left.
    db.session.execute(
        select(Organisation.id).where(Organisation.id == org.id).with_for_update(key_share=True)
    )
    db.session.refresh(org)
    reason = check_status_change(
        org, status, reason=reason, order_limit_t=order_limit_t, year_limit_t=year_limit_t
    )
    before = {
        "status": org.status,
        "reason": org.status_reason,
        "order_limit_t": org.order_limit_t,
        "year_limit_t": org.year_limit_t,
    }
    now = utcnow()
    in_force = measure_in_force(org)
    if in_force is not None:
        in_force.ended_at = now
        in_force.ended_as = status
        in_force.end_reason = reason
        in_force.ended_by = actor[:120]
        db.session.flush()  # one measure in force at a time (a unique index says so)
    if status in MEASURES:
        db.session.add(
            StatusMeasure(
                organisation_id=org.id,
                status=status,
                reason=reason,
                order_limit_t=order_limit_t,
                year_limit_t=year_limit_t,
                started_at=now,
                started_by=actor[:120],
            )
        )
    org.status = status
    org.status_reason = reason
    org.status_since = now
    org.order_limit_t = order_limit_t
    org.year_limit_t = year_limit_t
    audit.record(
        actor,
        f"organisation.{status}",
        "organisation",
        org.uscc,
        before=before,
        after={
            "status": status,
            "reason": reason,
            "order_limit_t": order_limit_t,
            "year_limit_t": year_limit_t,
        },
    )
    db.session.flush()
    log.info("organisation %s is now %s", org.uscc, status)
    return org


def measure_in_force(org: Organisation) -> StatusMeasure | None:
    return db.session.scalar(select(StatusMeasure).filter_by(organisation_id=org.id, ended_at=None))


#: The public notices list at most this many ended measures.
NOTICE_HISTORY = 500


def measures_in_force() -> list[StatusMeasure]:
    """The public notice: measures in force (suspended, restricted, barred), most recent first."""
    return list(
        db.session.scalars(
            select(StatusMeasure)
            .where(StatusMeasure.ended_at.is_(None))
            .order_by(StatusMeasure.started_at.desc(), StatusMeasure.id.desc())
        )
    )


def ended_measures() -> list[StatusMeasure]:
    """The notices' history: measures lifted or replaced, most recently ended first."""
    return list(
        db.session.scalars(
            select(StatusMeasure)
            .where(StatusMeasure.ended_at.is_not(None))
            .order_by(StatusMeasure.ended_at.desc(), StatusMeasure.id.desc())
            .limit(NOTICE_HISTORY)
        )
    )


# --- registration, confirmation, password reset ------------------------------------------------

CONFIRM_MAX_AGE = 3 * 24 * 3600
RESET_MAX_AGE = 3600


def _serializer(purpose: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=f"portal.{purpose}")


def _password_stamp(user: User) -> str:
    # Part of the current hash: a reset link stops working once the password has changed.
    return hashlib.sha256(user.password_hash.encode()).hexdigest()[:16]


#: Sign-ups per client address, and per e-mail address and per USCC named, in the window. The
#: first stops one client filling the database with pending organisations and the outbox with
#: mail; the others stop many clients flooding one mailbox or one organisation's admins.
SIGNUPS_PER_ADDRESS = 10
SIGNUPS_PER_EMAIL = 3
SIGNUPS_PER_USCC = 3
SIGNUP_WINDOW = timedelta(hours=1)
SIGNUPS_FROM_ADDRESS = throttle.Rule("signup.address", SIGNUPS_PER_ADDRESS, SIGNUP_WINDOW)
SIGNUPS_FOR_EMAIL = throttle.Rule("signup.email", SIGNUPS_PER_EMAIL, SIGNUP_WINDOW)
SIGNUPS_FOR_USCC = throttle.Rule("signup.uscc", SIGNUPS_PER_USCC, SIGNUP_WINDOW)


def register(
    *,
    name_zh: str,
    name_en: str,
    uscc: str,
    sector: str,
    contact_name: str,
    contact_phone: str,
    email: str,
    password: str,
    address: str,
) -> None:
    """Self-service registration: a pending organisation, its first (buyer) user, and the
    confirmation e-mail. Nothing is created if any part is refused.

    What the visitor sees never tells whether the e-mail address or the USCC is known here: once
    the details are well-formed, every registration costs the same password hash and gets the
    same answer, and whatever differs goes by e-mail to the people entitled to know:

    * an address that has an account: its owner is told that someone tried to register with it
      (the visitor, if it is the owner, reads it there);
    * a USCC that is registered already: nothing is created (an organisation has one account
      here, and a stranger must not join it by naming its code). The organisation's admins, or
      the operators when it has none, are told who tried, so that a colleague can be added by
      the operator and a stranger is noticed; the attempt is audited. The visitor is told only
      that the registration must be checked before an account is opened: the code is public
      (business licences, the national credit register), but whether its holder trades here is
      not;
    * an address or USCC named too often: nothing more happens and nobody is mailed again (the
      mailbox and the admins are not flooded), and the visitor is not told.

    Only a client address that registers too often is refused openly (ServiceError, 429).
    """
    if len(contact_name) > 100 or len(contact_phone) > 40:
        raise OrganisationError("invalid_contact", _("The contact name or telephone is too long."))
    for label, value in ((_("Contact person"), contact_name), (_("Contact telephone"), contact_phone)):
        if has_hidden_characters(value):  # they are printed in e-mail to others (see below)
            raise OrganisationError(
                "invalid_contact",
                _("%(field)s contains control or direction-override characters.", field=label),
            )
    code = _check_organisation(name_zh=name_zh, name_en=name_en, uscc=uscc, sector=sector)
    email = _check_user(email=email, password=password)
    if throttle.take((SIGNUPS_FROM_ADDRESS, address[:64])) is not None:
        raise ServiceError(
            "too_many_signups", _("Too many registrations from your address. Please try again later."), 429
        )
    password_hash = generate_password_hash(password)  # whatever happens next: the same work
    if throttle.take((SIGNUPS_FOR_EMAIL, email), (SIGNUPS_FOR_USCC, code)) is not None:
        return
    if db.session.scalar(select(User.id).filter_by(email=email)) is not None:
        _tell_account_owner(email)
        return
    existing = db.session.scalar(select(Organisation).filter_by(uscc=code))
    if existing is not None:
        _tell_organisation(existing, email=email, contact_name=contact_name, contact_phone=contact_phone)
        return
    with db.session.begin_nested():
        org = create_organisation(name_zh=name_zh, name_en=name_en, uscc=code, sector=sector, actor="self")
        org.contact_name = contact_name.strip()
        org.contact_phone = contact_phone.strip()
        user = create_user(
            email=email,
            password=password,
            password_hash=password_hash,
            role=Role.BUYER,
            organisation=org,
            actor="self",
            confirmed=False,
        )
        user.is_org_admin = True  # the one who registers manages the organisation's keys
    send_confirmation(user)


def _tell_account_owner(email: str) -> None:
    """Someone tried to register with an address that has an account: tell its owner."""
    mail.send(
        email,
        _("Someone tried to register with your e-mail address"),
        _(
            "Someone tried to register a new organisation with this address, which already has an "
            "account. If it was you, sign in, or reset your password:\n\n%(link)s",
            link=absolute_url("buyers.request_reset"),
        ),
    )


def _tell_organisation(org: Organisation, *, email: str, contact_name: str, contact_phone: str) -> None:
    """Someone tried to register an organisation that has an account: tell the visitor only that
    the registration will be checked, and tell the organisation's admins (or the operators) who
    it was."""
    mail.send(
        email,
        _("Your registration on the Chifeng Carbon Sink Marketplace"),
        _(
            "Thank you for registering. We cannot open an account for this registration straight "
            "away: it has to be checked first. If we need anything more from you, we will write to "
            "this address.\n\nIf you did not register, you can ignore this message."
        ),
    )
    admins = list(
        db.session.scalars(
            select(User.email).filter_by(organisation_id=org.id, is_org_admin=True, is_active=True)
        )
    )
    recipients = admins or list(
        db.session.scalars(select(User.email).filter_by(role=Role.OPERATOR, is_active=True))
    )
    body = _(
        "Someone tried to register %(name)s (%(code)s), which already has an account, on the Chifeng "
        "Carbon Sink Marketplace. No account was opened. They gave these details, which we have not "
        "checked:\n\nE-mail: %(email)s\nContact person: %(contact)s\nTelephone: %(phone)s\n\n"
        "If they work for the organisation, the operator can add them as a user. If not, you need "
        "do nothing.",
        name=org.name_zh,
        code=org.uscc,
        email=email,
        contact=contact_name.strip(),
        phone=contact_phone.strip(),
    )
    for recipient in recipients:
        mail.send(recipient, _("Someone tried to register your organisation"), body)
    audit.record(
        "self",
        "organisation.registration_attempt",
        "organisation",
        org.uscc,
        after={"email": email, "contact_name": contact_name.strip(), "contact_phone": contact_phone.strip()},
    )


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
