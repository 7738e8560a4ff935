"""Timezone-aware UTC time, stored as such on every database."""

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import DateTime
from sqlalchemy.types import TypeDecorator

#: The portal's business days (due dates, invoice dates) are Beijing's.
BEIJING = ZoneInfo("Asia/Shanghai")


#: (moment, monotonic clock when set): set only by ``as_of`` (the demo data's past year), never
#: while serving requests.
_as_of: ContextVar[tuple[datetime, float] | None] = ContextVar("portal_as_of", default=None)


def utcnow() -> datetime:
    shifted = _as_of.get()
    if shifted is None:
        return datetime.now(UTC)
    moment, since = shifted
    return moment + timedelta(seconds=time.monotonic() - since)


@contextmanager
def as_of(moment: datetime) -> Iterator[None]:
    """Within the block, the clock (``utcnow``, and so ``beijing_today``) starts from ``moment``
    and runs on: the demo data set is loaded as if its sales happened over the past year."""
    token = _as_of.set((moment.astimezone(UTC), time.monotonic()))
    try:
        yield
    finally:
        _as_of.reset(token)


def beijing_today() -> date:
    return utcnow().astimezone(BEIJING).date()


_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def iso_date(text) -> date | None:
    """``text`` as a calendar date written ``YYYY-MM-DD`` (around white space), else None.

    ``date.fromisoformat`` also reads ISO week dates (``2026-W49-4``) and the basic format
    (``20261203``); the API documents, and takes, the extended calendar form only."""
    if not isinstance(text, str) or not _ISO_DATE.fullmatch(text.strip()):
        return None
    try:
        return date.fromisoformat(text.strip())
    except ValueError:  # 2026-02-30
        return None


class UTCDateTime(TypeDecorator):
    """A ``timestamptz`` on PostgreSQL; on SQLite, stored naive in UTC and read back aware."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use timezone-aware UTC")
        return value.astimezone(UTC)

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value
