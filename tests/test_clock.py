"""The tests' clock: a session that crosses Beijing midnight keeps reckoning from its first day."""

from datetime import timedelta

from portal.contracts import services as contracts
from portal.timeutil import beijing_today
from tests import clock
from tests.concurrency import race


def test_the_portal_is_on_the_session_day(app):
    assert beijing_today() == clock.TODAY


def test_after_midnight_the_portal_stays_on_the_day_the_session_started(monkeypatch, app):
    yesterday = beijing_today() - timedelta(days=1)
    monkeypatch.setattr(clock, "TODAY", yesterday)  # as if the session had started yesterday
    with clock.on_the_session_day():
        assert beijing_today() == yesterday
        assert contracts.beijing_today() == yesterday
        # So do the threads a concurrency test starts.
        assert race(app, 2, lambda i: beijing_today()) == [yesterday, yesterday]
