"""The Beijing day the test session started on, and a clock that keeps the portal on it.

Tests write dates relative to ``TODAY`` ("due in 5 days": ``day(5)``), some of them while the test
modules are imported (parametrised cases), so ``TODAY`` is fixed once per session. A session that
crosses Beijing midnight (16:00 UTC) would otherwise have the portal on the next day while the
tests still reckon from the first: a tranche "due in 0 days" would already be overdue.
``on_the_session_day`` then shifts the portal's clock (``portal.timeutil``) back by the whole days
since, so both reckon from the same day; the clock still runs. Before midnight it changes nothing.
"""

from collections.abc import Iterator
from contextlib import contextmanager

from portal import timeutil
from portal.timeutil import as_of, beijing_today, utcnow

TODAY = beijing_today()


@contextmanager
def on_the_session_day() -> Iterator[None]:
    days_since = beijing_today() - TODAY
    if not days_since:
        yield
        return
    with as_of(utcnow() - days_since):
        yield


@contextmanager
def unshifted() -> Iterator[None]:
    """The portal's clock without that shift: for a test that stops the clock at a moment of its own."""
    token = timeutil._as_of.set(None)
    try:
        yield
    finally:
        timeutil._as_of.reset(token)
