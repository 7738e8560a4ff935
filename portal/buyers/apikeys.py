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
from portal.core import throttle
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
def _raw_by_prefix(counting: bool) -> tuple[str, tuple, tuple]:
    """The key by its prefix with its organisation, in the driver's own SQL: ``(sql, the key's
    columns, the organisation's)``; built at the first call (every model mapped). ``counting``:
    the call counted in the same statement (``core.throttle.hit_at_once_where``) if the key's
    secret is the one presented and the key is not revoked, the count and the end of its window
    in the row's last two columns (NULL where not counted)."""
    key_columns, org_columns = plain_columns(ApiKey), plain_columns(Organisation)
    columns = [f"k.{name}" for _key, name in key_columns] + [f"o.{name}" for _key, name in org_columns]
    joined = " FROM api_keys k LEFT OUTER JOIN organisations o ON o.id = k.organisation_id"
    if not counting:
        return (
            "SELECT " + ", ".join(columns) + joined + " WHERE k.prefix = %(prefix)s",
            key_columns,
            org_columns,
        )
    # (The hash compared here as well as in Python: it is of a 256-bit random secret, so how long
    # the server takes to compare it tells nothing that helps guess one.)
    genuine = (
        "EXISTS (SELECT 1 FROM api_keys WHERE prefix = %(prefix)s"
        " AND secret_hash = %(secret_hash)s AND revoked_at IS NULL)"
    )
    sql = (
        f"WITH hit AS ({throttle.hit_at_once_where(genuine)}) SELECT "
        + ", ".join([*columns, "hit.hits", "hit.resets_at"])
        + joined
        + " LEFT OUTER JOIN hit ON TRUE WHERE k.prefix = %(prefix)s"
    )
    return sql, key_columns, org_columns


def _by_prefix_committed(
    prefix: str, secret_hash: str, counted: throttle.Rule | None
) -> tuple[ApiKey | None, throttle.Quota | None]:
    """PostgreSQL: an organisation's key by its prefix, with its organisation, read in one
    statement through the driver's cursor and put in the session as loaded
    (``core.database.attached``): every API call starts with it, and the ORM's loading of the two
    objects cost more than the read. None if there is no such key or it is a person's (read in
    the session, with the person and their region). With ``counted``, the same statement counts
    the call (on the autocommit connection for writes that stand at once,
    ``core.database.at_once_writer``) and the quota is announced; None if it did not count."""
    sql, key_columns, org_columns = _raw_by_prefix(counted is not None)
    now = utcnow()
    if counted is None:
        rows = raw_rows(committed_reader(), sql, {"prefix": prefix})
    else:
        params = {"prefix": prefix, "secret_hash": secret_hash} | throttle.hit_params(
            counted, counted_as(prefix), now
        )
        rows = raw_rows(at_once_writer(), sql, params)
    if not rows:
        return None, None
    row = rows[0]
    quota = None
    if counted is not None and row[-2] is not None:
        quota = throttle.announced(counted, row[-2], row[-1], now)
    values = dict(zip((key for key, _name in key_columns), row[: len(key_columns)], strict=True))
    if values["organisation_id"] is None:
        return None, quota
    key = attached(ApiKey, values)
    org_row = row[len(key_columns) : len(key_columns) + len(org_columns)]
    set_committed_value(
        key,
        "organisation",
        attached(Organisation, dict(zip((k for k, _n in org_columns), org_row, strict=True))),
    )
    set_committed_value(key, "user", None)
    return key, quota


def counted_as(prefix: str) -> str:
    """What a key's calls are counted as, under the API's rate limit."""
    return f"key:{prefix}"


def authenticate_api_key(presented: str) -> ApiKey | None:
    """The live key matching ``presented``, or None. Constant-time comparison of the secret."""
    return authenticate_call(presented)[0]


def authenticate_call(
    presented: str, counted: throttle.Rule | None = None
) -> tuple[ApiKey | None, throttle.Quota | None]:
    """The live key matching ``presented`` (or None), and with ``counted`` the call counted
    against the key under that rule (``counted_as``), at once, and announced (``core.throttle``):
    a call is counted when it presents a key's secret and the key is not revoked, whatever it is
    then answered (the key's organisation suspended, an action the key may not do). On
    PostgreSQL the key is read and the call counted in one statement."""
    parts = presented.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX or not parts[1] or not parts[2] or len(presented) > 200:
        return None, None
    prefix, digest = parts[1], _digest(parts[2])
    key, quota = _by_prefix_committed(prefix, digest, counted) if is_postgresql() else (None, None)
    if key is None:
        key = db.session.scalar(_by_prefix(), {"prefix": prefix})
    if key is None or not hmac.compare_digest(key.secret_hash, digest) or key.revoked_at is not None:
        return None, None
    if counted is not None and quota is None:  # SQLite, or a key not yet committed
        quota = throttle.announce(counted, counted_as(prefix), at_once=True)
    if key.user is not None and not key.user.is_active:
        return None, quota
    if key.organisation is not None and key.organisation.status in (OrgStatus.SUSPENDED, OrgStatus.BARRED):
        return None, quota
    now = utcnow()
    if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
        _record_use(key, now)  # at most one write a minute per key
    return key, quota


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
