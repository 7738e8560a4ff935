"""Rate limits that hold under concurrency: at most ``limit`` hits per key in a window.

One row per key counts the hits of the key's current window. A hit is a single ``INSERT … ON
CONFLICT DO UPDATE … RETURNING`` that adds one to the count, or starts a new window when the old
one has ended. The database does that atomically, and the row stays locked (PostgreSQL) or the
database write-locked (SQLite's ``BEGIN IMMEDIATE``) until the caller's transaction ends: a
second request for the same key waits, then sees the first one's hit. Counting earlier rows and
then adding one, in two statements, let every request of a burst see the same "not yet".

Callers take the hits *before* the work they limit, and give them back when the work turns out
not to count (a right password is not a failed sign-in). The caller commits the hits with its
request, even when it answers with an error. Keys are taken in sorted order, one statement each;
a request that takes keys in more than one call takes them in the same order of rules every
time (the client address first, then what it names), so two requests never wait for each other
in a circle.

The window is fixed: it starts at a key's first hit and lasts ``window``, then the count starts
again. Across a window's end up to twice the limit can pass in one window's time; over longer
times the rate is the limit per window.

Limits a client should see coming (the API, public uploads) are taken with :func:`announce`:
the same counting, and the response then carries ``RateLimit-Limit``, ``RateLimit-Remaining``
and ``RateLimit-Reset`` (seconds until the window ends), and ``Retry-After`` on a 429. The store
is the database, shared by every process on every machine.
"""

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import g
from sqlalchemy import String, case, update
from sqlalchemy.orm import Mapped, mapped_column

from portal.core.database import at_once_writer, checkpoint, is_postgresql, raw_rows, upsert_insert
from portal.extensions import db
from portal.timeutil import UTCDateTime, utcnow


class ThrottleCounter(db.Model):
    __tablename__ = "throttle_counters"

    #: The rule's name and the value counted, e.g. ``signin.address:203.0.113.9``.
    key: Mapped[str] = mapped_column(String(400), primary_key=True)
    hits: Mapped[int]
    #: When the current window ends: the next hit after it starts a new window.
    resets_at: Mapped[datetime] = mapped_column(UTCDateTime)


@dataclass(frozen=True)
class Rule:
    """At most ``limit`` hits in ``window`` for each value counted under ``name``."""

    name: str
    limit: int
    window: timedelta

    def key(self, value: str) -> str:
        return f"{self.name}:{value}"[:400]


def take(*hits: tuple[Rule, str]) -> Rule | None:
    """Count one hit for each (rule, value), all or none: None when every one is within its
    limit (the hits are counted), else the first rule whose limit is reached (nothing is
    counted, so a refused request does not eat into the other limits)."""
    keyed = _keyed(hits)
    now = utcnow()
    refused = None
    for key, rule in keyed:
        if _hit(key, now + rule.window, now) > rule.limit and refused is None:
            refused = rule
    if refused is not None:
        give_back(*hits)
    return refused


@dataclass(frozen=True)
class Quota:
    """Where a client stands against a rule after a hit: refused or not, and what is left."""

    rule: Rule
    allowed: bool
    remaining: int
    reset_seconds: int  #: until the window ends

    @property
    def headers(self) -> dict[str, str]:
        headers = {
            "RateLimit-Limit": str(self.rule.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_seconds),
        }
        if not self.allowed:
            headers["Retry-After"] = str(max(1, self.reset_seconds))
        return headers


def announce(rule: Rule, value: str, *, at_once: bool = False) -> Quota:
    """Count one hit of ``value`` under ``rule`` (as :func:`take`), and have the response
    announce the quota left in ``RateLimit-*`` headers (``Retry-After`` too when refused).

    ``at_once``: the hit stands however the caller's transaction ends, and its row is not held
    locked while the caller works (the API's calls: a call answered with an error still
    counts, and calls with the same key run side by side). On PostgreSQL it is counted in a
    statement of its own on an autocommit connection (``_hit_at_once``), leaving the session and
    what it has loaded untouched; on SQLite in the session, committed at once."""
    now = utcnow()
    if at_once and is_postgresql():
        hits, resets_at = _hit_at_once(rule.key(value), now + rule.window, now, rule.limit)
    else:
        hits, resets_at = _hit(rule.key(value), now + rule.window, now, with_reset=True)
        if hits > rule.limit:
            give_back((rule, value))
        if at_once:
            checkpoint()  # the hit (or its giving back) stands however the call ends
    return announced(rule, hits, resets_at, now)


def announced(rule: Rule, hits: int, resets_at: datetime, now: datetime) -> Quota:
    """Where the caller stands after a hit that made the count ``hits`` in the window ending at
    ``resets_at``, announced in the response's headers: for :func:`announce`, and for a hit
    counted at once by a statement of the caller's (``hit_at_once_where``)."""
    allowed = hits <= rule.limit
    reset = max(0, math.ceil((resets_at - now).total_seconds()))
    quota = Quota(rule, allowed, max(0, rule.limit - min(hits, rule.limit)), reset)
    g.rate_limit_quota = quota
    return quota


def _announce_headers(response):
    quota = g.pop("rate_limit_quota", None)
    if quota is not None:
        for name, value in quota.headers.items():
            response.headers.setdefault(name, value)
    return response


def register(app) -> None:
    app.after_request(_announce_headers)


def give_back(*hits: tuple[Rule, str]) -> None:
    """Take back hits taken in this transaction (their rows are locked by it already)."""
    keys = [key for key, _rule in _keyed(hits)]
    db.session.execute(
        update(ThrottleCounter)
        .where(ThrottleCounter.key.in_(keys), ThrottleCounter.hits > 0)
        .values(hits=ThrottleCounter.hits - 1)
        .execution_options(synchronize_session=False)
    )


def hit_at_once_where(condition: str) -> str:
    """``_hit`` in the driver's own SQL (run through ``core.database.raw_rows``: about a quarter
    of the CPU of SQLAlchemy's execution), counting the hit only where ``condition`` (SQL) holds,
    for a statement that counts a call in the same round trip as it reads what the call needs
    (``buyers.apikeys.authenticate_call``). A refused hit gives itself back in the same statement:
    past the limit the count stays at ``limit + 1``, refused, whatever more comes. Parameters
    ``key``, ``resets_at``, ``now`` and ``limit`` (:func:`hit_params`); returns ``hits,
    resets_at`` (no row where the condition did not hold)."""
    return (
        "INSERT INTO throttle_counters (key, hits, resets_at)"
        f" SELECT %(key)s, 1, %(resets_at)s WHERE {condition}"
        " ON CONFLICT (key) DO UPDATE SET"
        " hits = CASE WHEN throttle_counters.resets_at <= %(now)s THEN 1"
        " WHEN throttle_counters.hits > %(limit)s THEN throttle_counters.hits"
        " ELSE throttle_counters.hits + 1 END,"
        " resets_at = CASE WHEN throttle_counters.resets_at <= %(now)s THEN EXCLUDED.resets_at"
        " ELSE throttle_counters.resets_at END"
        " RETURNING hits, resets_at"
    )


def hit_params(rule: Rule, value: str, now: datetime) -> dict:
    """The parameters of ``hit_at_once_where``'s statement for a hit of ``value`` at ``now``."""
    return {"key": rule.key(value), "resets_at": now + rule.window, "now": now, "limit": rule.limit}


_HIT_AT_ONCE = hit_at_once_where("TRUE")


def _hit_at_once(key: str, resets_at: datetime, now: datetime, limit: int) -> tuple[int, datetime]:
    """PostgreSQL: a hit of ``key`` committed at once (``_HIT_AT_ONCE`` on an autocommit
    connection, not durable: a count lost in a crash only lets a few more calls through);
    ``(count after the hit, end of its window)``. Should the connection turn out dead, the hit
    is counted again on a new one: at worst one call counted twice."""
    engine = at_once_writer()
    params = {"key": key, "resets_at": resets_at, "now": now, "limit": limit}
    ((hits, ends),) = raw_rows(engine, _HIT_AT_ONCE, params)
    return hits, ends


def _keyed(hits) -> list[tuple[str, Rule]]:
    keyed = sorted(((rule.key(value), rule) for rule, value in hits), key=lambda pair: pair[0])
    if len({key for key, _rule in keyed}) != len(keyed):
        raise ValueError("the same key twice in one call")
    return keyed


def _hit(key: str, resets_at: datetime, now: datetime, with_reset: bool = False):
    """Add one hit to ``key`` (a new window ending at ``resets_at`` if the old one is over);
    the count after it (and when its window ends, ``with_reset``)."""
    table = ThrottleCounter.__table__
    statement = upsert_insert(table).values(key=key, hits=1, resets_at=resets_at)
    ended = table.c.resets_at <= now
    statement = statement.on_conflict_do_update(
        index_elements=[table.c.key],
        set_={
            "hits": case((ended, 1), else_=table.c.hits + 1),
            "resets_at": case((ended, statement.excluded.resets_at), else_=table.c.resets_at),
        },
    ).returning(table.c.hits, table.c.resets_at)
    hits, ends = db.session.execute(statement).one()
    if not with_reset:
        return hits
    return hits, ends
