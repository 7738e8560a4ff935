"""The one rate-limit mechanism: counts per key and window, all or nothing, and exact under
concurrency on both databases."""

from datetime import timedelta

import pytest
from sqlalchemy import select

from portal.core import throttle
from portal.core.throttle import ThrottleCounter
from portal.extensions import db
from tests.concurrency import race

THREE_A_MINUTE = throttle.Rule("test.three", 3, timedelta(minutes=1))
ONE_A_MINUTE = throttle.Rule("test.one", 1, timedelta(minutes=1))


def hits():
    return dict(db.session.execute(select(ThrottleCounter.key, ThrottleCounter.hits)).all())


def test_a_key_is_refused_past_its_limit_until_its_window_ends(any_app, monkeypatch):
    from datetime import UTC, datetime

    now = [datetime(2026, 3, 1, 8, 0, tzinfo=UTC)]
    monkeypatch.setattr(throttle, "utcnow", lambda: now[0])
    assert [throttle.take((THREE_A_MINUTE, "a")) for _ in range(3)] == [None, None, None]
    assert throttle.take((THREE_A_MINUTE, "a")) is THREE_A_MINUTE
    assert throttle.take((THREE_A_MINUTE, "b")) is None  # another value: its own count
    now[0] += timedelta(seconds=59)
    assert throttle.take((THREE_A_MINUTE, "a")) is THREE_A_MINUTE
    db.session.commit()
    assert hits() == {"test.three:a": 3, "test.three:b": 1}  # refusals are not counted
    now[0] += timedelta(seconds=1)
    assert throttle.take((THREE_A_MINUTE, "a")) is None  # a new window
    assert hits()["test.three:a"] == 1


def test_hits_are_taken_all_or_none_and_can_be_given_back(any_app):
    assert throttle.take((ONE_A_MINUTE, "x")) is None
    assert throttle.take((THREE_A_MINUTE, "x"), (ONE_A_MINUTE, "x")) is ONE_A_MINUTE
    assert hits() == {"test.one:x": 1, "test.three:x": 0}
    throttle.give_back((ONE_A_MINUTE, "x"))
    assert throttle.take((THREE_A_MINUTE, "x"), (ONE_A_MINUTE, "x")) is None
    db.session.commit()
    assert hits() == {"test.one:x": 1, "test.three:x": 1}
    with pytest.raises(ValueError):
        throttle.take((ONE_A_MINUTE, "y"), (ONE_A_MINUTE, "y"))


def test_a_burst_never_passes_the_limit(any_app):
    """Every request of the burst takes its hit at the same moment: exactly the limit pass."""

    def work(i):
        refused = throttle.take((THREE_A_MINUTE, "burst"), (ONE_A_MINUTE, f"own-{i}"))
        db.session.commit()
        return refused is None

    outcomes = race(any_app, 12, work)
    assert outcomes.count(True) == THREE_A_MINUTE.limit, outcomes
    assert hits()["test.three:burst"] == THREE_A_MINUTE.limit
