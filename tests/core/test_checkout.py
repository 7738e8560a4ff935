"""A connection taken from the pool (``core.database._check_on_checkout``): used at once when it
was idle briefly and nothing came from the server; pinged when the server wrote to it while
idle or it was idle long; replaced, unseen by the request, when the ping finds it dead."""

import pytest
from sqlalchemy import create_engine, text

from portal.core import database
from portal.extensions import db
from tests import factories

pytestmark = pytest.mark.postgres


@pytest.fixture
def pings(pg_app, monkeypatch):
    """The pings the pool's connections get, counted (each still sent)."""
    sent = []
    ping = db.engine.dialect.do_ping

    def counted(dbapi_connection):
        sent.append(dbapi_connection)
        return ping(dbapi_connection)

    monkeypatch.setattr(db.engine.dialect, "do_ping", counted)
    return sent


def _backend_pid() -> int:
    with db.engine.connect() as conn:
        return conn.execute(text("SELECT pg_backend_pid()")).scalar()


def _terminate(pid: int) -> None:
    """As an administrator would, waiting until the server process has ended."""
    engine = create_engine(db.engine.url)
    with engine.begin() as conn:
        assert conn.execute(text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid}).scalar()
    engine.dispose()


def test_a_connection_back_from_a_short_idle_is_used_without_a_ping(pings):
    first = _backend_pid()
    for _ in range(3):
        assert _backend_pid() == first
    assert pings == []


def test_a_connection_idle_longer_than_the_limit_is_pinged_and_kept(pings, monkeypatch):
    first = _backend_pid()
    monkeypatch.setattr(database, "PING_AFTER_IDLE", -1.0)
    assert _backend_pid() == first  # the ping found it alive
    assert len(pings) == 1


def test_a_connection_the_server_terminated_while_idle_is_pinged_and_replaced(pings):
    first = _backend_pid()
    _terminate(first)
    second = _backend_pid()
    assert second != first
    assert len(pings) == 1  # the terminated one (its socket readable), not its replacement
    assert _backend_pid() == second and len(pings) == 1


def test_requests_after_every_pooled_connection_was_terminated_all_succeed(pg_app, pings):
    factories.steel_and_cement()
    db.session.commit()
    key = factories.api_key(pg_app, "--org", factories.STEEL_USCC)
    db.session.remove()
    held = [db.engine.connect() for _ in range(4)]
    pids = [conn.execute(text("SELECT pg_backend_pid()")).scalar() for conn in held]
    for conn in held:
        conn.close()
    for pid in pids:
        _terminate(pid)
    client = pg_app.test_client()
    answers = [
        client.get("/api/v1/holdings", headers={"Authorization": f"Bearer {key}"}).status_code
        for _ in range(6)
    ]
    assert answers == [200] * 6
    assert pings  # found by their readable sockets, not by a failed request
