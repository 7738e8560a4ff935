"""API keys: created for an organisation or a staff member, listed, revoked, authenticated."""

import functools
import hashlib
import hmac
import secrets
from datetime import timedelta

from flask_babel import gettext as _
from sqlalchemy import bindparam, select
from sqlalchemy.orm import joinedload
from sqlalchemy.orm.attributes import set_committed_value

from portal import access
from portal.audit import services as audit
from portal.buyers.errors import OrganisationError
from portal.buyers.models import ApiKey, Organisation, OrgStatus, User, org_status_label
from portal.core.database import (
    at_once_writer,
    attached,
    committed_reader,
    is_postgresql,
    plain_columns,
    raw_rows,
)
from portal.extensions import db
from portal.timeutil import utcnow

LAST_USED_RESOLUTION = timedelta(minutes=1)


KEY_PREFIX = "cfk"


def create_api_key(
    *, organisation: Organisation | None = None, user: User | None = None, label: str = "", actor: str = "cli"
) -> tuple[ApiKey, str]:
    """A new key for an organisation, a staff member or a county reviewer; returns it with its only plaintext copy."""
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
    if user is not None and not access.holds_personal_keys(user):
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


@functools.cache
def _by_prefix():
    """The key by its prefix, with its owner (one or the other) in the same statement; built
    once, at the first call (the loader options need every model mapped)."""
    return (
        select(ApiKey)
        .options(joinedload(ApiKey.organisation), joinedload(ApiKey.user))
        .where(ApiKey.prefix == bindparam("prefix"))
    )


@functools.cache
def _raw_by_prefix() -> tuple[str, tuple, tuple]:
    """The key by its prefix with its organisation, in the driver's own SQL: ``(sql, the key's
    columns, the organisation's)``; built at the first call (every model mapped)."""
    key_columns, org_columns = plain_columns(ApiKey), plain_columns(Organisation)
    sql = (
        "SELECT "
        + ", ".join([f"k.{name}" for _key, name in key_columns] + [f"o.{name}" for _key, name in org_columns])
        + " FROM api_keys k LEFT OUTER JOIN organisations o ON o.id = k.organisation_id"
        " WHERE k.prefix = %(prefix)s"
    )
    return sql, key_columns, org_columns


def _by_prefix_committed(prefix: str) -> ApiKey | None:
    """PostgreSQL: an organisation's key by its prefix, with its organisation, read in one
    statement through the driver's cursor (``core.database.committed_reader``) and put in the
    session as loaded (``core.database.attached``): every API call starts with it, and the ORM's
    loading of the two objects cost more than the read. None if there is no such key or it is a
    person's (read in the session, with the person and their region)."""
    sql, key_columns, org_columns = _raw_by_prefix()
    rows = raw_rows(committed_reader(), sql, {"prefix": prefix})
    if not rows:
        return None
    row = rows[0]
    values = dict(zip((key for key, _name in key_columns), row[: len(key_columns)], strict=True))
    if values["organisation_id"] is None:
        return None
    key = attached(ApiKey, values)
    org_values = zip((key for key, _name in org_columns), row[len(key_columns) :], strict=True)
    set_committed_value(key, "organisation", attached(Organisation, dict(org_values)))
    set_committed_value(key, "user", None)
    return key


def authenticate_api_key(presented: str) -> ApiKey | None:
    """The live key matching ``presented``, or None. Constant-time comparison of the secret."""
    parts = presented.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX or not parts[1] or not parts[2] or len(presented) > 200:
        return None
    key = _by_prefix_committed(parts[1]) if is_postgresql() else None
    if key is None:
        key = db.session.scalar(_by_prefix(), {"prefix": parts[1]})
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
        _record_use(key, now)  # at most one write a minute per key
    return key


#: (``RETURNING``: ``raw_rows`` reads a result.)
_RECORD_USE = "UPDATE api_keys SET last_used_at = %(now)s WHERE id = %(id)s RETURNING id"


def _record_use(key: ApiKey, now) -> None:
    """Date the key's last use. On PostgreSQL committed at once on a connection of its own
    (``core.database.at_once_writer``): the key's row is never held locked while the call runs
    (the other calls with the same key would wait for it), and the date stands however the call
    ends. On SQLite in the session, committed with the call's count."""
    if is_postgresql():
        raw_rows(at_once_writer(), _RECORD_USE, {"id": key.id, "now": now})
        set_committed_value(key, "last_used_at", now)
    else:
        key.last_used_at = now


def _digest(secret: str) -> str:
    # The secret has 256 bits of entropy: a fast hash is enough (no guessing to slow down).
    return hashlib.sha256(secret.encode()).hexdigest()
