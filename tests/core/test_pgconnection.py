"""PostgreSQL: a rollback ends the transaction and keeps the connection's prepared statements
(``core.pgconnection``), where psycopg's own forgets them all and deallocates them."""

import pytest
from sqlalchemy import func, select

from portal.audit import services as audit
from portal.audit.models import AuditEvent
from portal.core.driver import session_rows
from portal.core.pgconnection import KeepingPrepared
from portal.extensions import db

pytestmark = pytest.mark.postgres

PREPARED = "SELECT count(*) FROM pg_prepared_statements"


def test_a_rollback_undoes_the_writes_and_keeps_the_prepared_statements(pg_app):
    driver = db.session.connection().connection.driver_connection
    assert isinstance(driver, KeepingPrepared)
    events = db.session.scalar(select(func.count()).select_from(AuditEvent))
    for _ in range(6):  # psycopg prepares a statement at its fifth execution
        session_rows("SELECT count(*) FROM audit_events WHERE action = %(action)s", {"action": "probe"})
    audit.record("t", "probe", "probe", "1")
    db.session.flush()
    prepared = driver.execute(PREPARED).fetchone()[0]
    assert prepared >= 1

    db.session.rollback()

    assert driver.info.transaction_status.name == "IDLE"
    assert driver.execute(PREPARED).fetchone()[0] == prepared  # on the server, still there
    driver.rollback()  # what the driver's own read began
    assert db.session.connection().connection.driver_connection is driver
    assert db.session.scalar(select(func.count()).select_from(AuditEvent)) == events
    rows = session_rows("SELECT count(*) FROM audit_events WHERE action = %(action)s", {"action": "probe"})
    assert rows == [(0,)]
    db.session.rollback()


def test_a_rollback_of_a_failed_transaction_leaves_the_connection_usable(pg_app):
    from sqlalchemy.exc import ProgrammingError

    with pytest.raises(ProgrammingError):
        session_rows("SELECT nothing FROM nowhere", {})
    db.session.rollback()
    assert session_rows("SELECT %(n)s::int + 1", {"n": 41}) == [(42,)]
    db.session.rollback()
