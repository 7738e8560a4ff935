"""The autocommit readers of public look-ups (``core.database``) on PostgreSQL: generic plans
asked for beside whatever ``options`` the database URL already gives, and ``raw_rows``."""

import pytest

from portal.core.database import autocommit_reader, raw_rows
from portal.extensions import db
from tests import conftest

pytestmark = pytest.mark.postgres


def _setting(engine, name: str) -> str:
    return raw_rows(engine, f"SHOW {name}", {})[0][0]


def test_a_reader_plans_once_and_keeps_the_urls_own_options(postgres_url):
    app = conftest._postgres_app(postgres_url + "?options=-c%20statement_timeout%3D12345")
    with app.app_context():
        generic = autocommit_reader("test.generic", generic_plans=True)
        plain = autocommit_reader("test.plain")
        assert _setting(generic, "plan_cache_mode") == "force_generic_plan"
        assert _setting(generic, "statement_timeout") == "12345ms"
        assert _setting(plain, "plan_cache_mode") == "auto"
        assert _setting(plain, "statement_timeout") == "12345ms"
        db.engine.dispose()  # and the readers with it


def test_raw_rows_answers_with_the_drivers_types(pg_app):
    from datetime import date, datetime

    engine = autocommit_reader("test.types", generic_plans=True)
    ((number, text, day, moment, data),) = raw_rows(
        engine,
        "SELECT %(n)s::bigint, %(t)s::text, DATE '2026-12-03', TIMESTAMPTZ '2026-12-03 08:00:00+08', "
        "'\\x0102'::bytea",
        {"n": 7, "t": "碳"},
    )
    assert (number, text, day, data) == (7, "碳", date(2026, 12, 3), b"\x01\x02")
    assert isinstance(moment, datetime) and moment.utcoffset() is not None
    assert moment.timestamp() == datetime.fromisoformat("2026-12-03T00:00:00+00:00").timestamp()


def _backend(engine) -> int:
    return raw_rows(engine, "SELECT pg_backend_pid()", {})[0][0]


def test_a_thread_keeps_its_reader_connection_and_replaces_one_the_server_dropped(pg_app):
    from sqlalchemy import text

    engine = autocommit_reader("test.kept")
    first = _backend(engine)
    assert _backend(engine) == first and engine.pool.checkedout() == 1  # kept, not given back
    with db.engine.connect() as other:
        other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
    replaced = _backend(engine)  # the dropped connection failed once and was replaced
    assert replaced != first and _backend(engine) == replaced
    assert engine.pool.checkedout() == 1
    db.engine.dispose()  # the kept connection is closed with the engine
    assert engine.pool.checkedout() == 0


def test_only_as_many_threads_as_the_pool_holds_keep_a_connection(pg_app):
    import threading

    engine = autocommit_reader("test.threads")
    size = engine.pool.size()
    gate = threading.Barrier(size + 2)
    errors = []

    def read():
        try:
            _backend(engine)
            gate.wait(timeout=10)  # every thread has read before any reads again
            _backend(engine)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=read) for _ in range(size + 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert engine.pool.checkedout() == size  # the others gave theirs back after each read
    db.engine.dispose()
    assert engine.pool.checkedout() == 0


def test_session_rows_reads_in_the_sessions_transaction_and_is_seen_as_a_statement(pg_app):
    """``session_rows`` reads on the session's own connection: it sees what the transaction wrote
    and nobody else yet sees, and what is rolled back is gone; the engine's listeners (statement
    counts, fault injection) are told of it."""
    from portal.audit import services as audit
    from portal.core.database import committed_reader
    from portal.core.driver import session_rows
    from tests.sql import statements_of

    sql = "SELECT subject_id FROM audit_events WHERE action = %(action)s ORDER BY id"
    audit.record("t", "probe.write", "probe", "first")
    rows = []
    sent = statements_of(lambda: rows.extend(session_rows(sql, {"action": "probe.write"})))
    assert rows == [("first",)] and sent == [sql]
    assert raw_rows(committed_reader(), sql, {"action": "probe.write"}) == []  # not committed
    audit.record("t", "probe.write", "probe", "second")
    assert session_rows(sql, {"action": "probe.write"}) == [("first",), ("second",)]
    db.session.rollback()
    assert session_rows(sql, {"action": "probe.write"}) == []
    db.session.rollback()


def test_session_rows_raises_as_sqlalchemy_does(pg_app):
    """A refused read is SQLAlchemy's error, not the driver's; a connection lost mid-request is
    invalidated and said so (the request answers 503, as for any other statement)."""
    from sqlalchemy.exc import DBAPIError, ProgrammingError

    from portal.core.database import committed_reader
    from portal.core.driver import session_rows

    with pytest.raises(ProgrammingError):
        session_rows("SELECT nothing FROM nowhere", {})
    db.session.rollback()
    (pid,) = session_rows("SELECT pg_backend_pid()", {})[0]
    raw_rows(committed_reader(), "SELECT pg_terminate_backend(%(pid)s)", {"pid": pid})
    with pytest.raises(DBAPIError) as lost:
        session_rows("SELECT 1", {})
    assert lost.value.connection_invalidated
    db.session.rollback()
    assert session_rows("SELECT 1", {}) == [(1,)]  # a new connection, a new cursor
    db.session.rollback()


def test_statements_sent_together_are_answered_in_one_round_trip(pg_app):
    """``session_rows_together``: each statement's rows, in order, seeing the transaction's own
    writes, for one wait on the server where one statement at a time waits once each; the
    listeners are told of every statement."""
    from portal.audit import services as audit
    from portal.core.driver import session_rows, session_rows_together
    from tests.sql import statements_of, syncs_sent

    audit.record("t", "probe.write", "probe", "first")
    db.session.flush()
    reads = [
        ("SELECT subject_id FROM audit_events WHERE action = %(action)s", {"action": "probe.write"}),
        ("SELECT %(n)s::int + 1", {"n": 41}),
        ("SELECT count(*) FROM audit_events WHERE action = %(action)s", {"action": "nothing"}),
    ]
    answers = []
    sent = statements_of(lambda: answers.extend(session_rows_together(reads)))
    assert answers == [[("first",)], [(42,)], [(0,)]]
    assert sent == [sql for sql, _params in reads]
    assert syncs_sent(lambda: session_rows_together(reads)) == 1
    assert syncs_sent(lambda: [session_rows(*read) for read in reads]) == 3
    db.session.rollback()


def test_statements_sent_together_fail_as_one_does(pg_app):
    """A statement that fails among others sent together: SQLAlchemy's error, the transaction
    rolled back as after any failed statement, the session usable again."""
    from sqlalchemy.exc import ProgrammingError

    from portal.core.driver import session_rows_together

    with pytest.raises(ProgrammingError):
        session_rows_together([("SELECT 1", {}), ("SELECT nothing FROM nowhere", {}), ("SELECT 2", {})])
    db.session.rollback()
    assert session_rows_together([("SELECT 1", {}), ("SELECT 2", {})]) == [[(1,)], [(2,)]]
    db.session.rollback()


def test_each_statement_keeps_its_cursor_and_so_its_column_loaders(pg_app):
    """psycopg finds a result's column loaders (a loader object made per column type) again
    whenever a cursor runs another statement than its last: statements alternating on one
    connection each keep a cursor of their own, so a loader is made once per statement and
    type, however often they alternate; the same statement twice in one call still gets two
    answers; beyond ``CURSORS_KEPT`` statements the least recently used cursor is closed."""
    from psycopg.types.numeric import Int4BinaryLoader

    from portal.core import driver
    from portal.core.driver import session_rows, session_rows_together

    made = []

    class Counted(Int4BinaryLoader):  # results are binary
        def __init__(self, oid, context=None):
            made.append(oid)
            super().__init__(oid, context)

    connection = db.session.connection().connection
    connection.driver_connection.adapters.register_loader("int4", Counted)
    first, second = "SELECT %(n)s::int4 + 1", "SELECT %(n)s::int4 * 2"
    for n in range(5):
        assert session_rows(first, {"n": n}) == [(n + 1,)]
        assert session_rows_together([(second, {"n": n}), (first, {"n": n})]) == [[(2 * n,)], [(n + 1,)]]
    assert len(made) == 2  # one per statement's cursor (one per run when they shared cursors)
    assert session_rows_together([(first, {"n": 1}), (first, {"n": 2})]) == [[(2,)], [(3,)]]
    kept = connection.info[driver._CURSOR]
    oldest = kept[first]
    for n in range(driver.CURSORS_KEPT):
        session_rows(f"SELECT {n}::int4", {})
    assert first not in kept and oldest.closed and len(kept) == driver.CURSORS_KEPT
    db.session.rollback()


def _begins(trace) -> list[str]:
    """The ``BEGIN`` statements in a driver trace (as a simple query or parsed in a pipeline)."""
    import re

    found = (re.search(r'"(BEGIN[^"]*)"', "".join(line[3:4])) for line in trace if line[:1] == ["F"])
    return [match.group(1) for match in found if match]


def _answers(trace) -> int:
    """How many times the server said it was ready for more (once per batch it answered)."""
    return sum(1 for line in trace if line[:1] == ["B"] and line[2] == "ReadyForQuery")


def test_a_transactions_first_statements_carry_its_begin(pg_app):
    """A transaction begun by ``session_rows_together`` (or ``session_rows``) is begun in the
    statements' own round trip, not in one of its own; what they write is in that transaction
    (rolled back with it), and nothing later in it begins it again."""
    from portal.audit import services as audit
    from portal.core.driver import session_rows, session_rows_together
    from tests.sql import driver_trace, round_trips

    db.session.rollback()
    count = ("SELECT count(*) FROM audit_events WHERE action = %(action)s", {"action": "probe.begin"})
    write = (
        "INSERT INTO audit_events (actor, action, subject_type, subject_id, at)"
        " VALUES ('t', 'probe.begin', 'probe', 'x', now()) RETURNING action",
        {},
    )
    answers = []
    trace = driver_trace(lambda: answers.append(session_rows_together([write, count])))
    assert answers == [[[("probe.begin",)], [(1,)]]]
    assert len(_begins(trace)) == 1
    assert _answers(trace) == 1
    later = driver_trace(lambda: audit.record("t", "probe.begin", "probe", "y") or db.session.flush())
    assert _begins(later) == []
    db.session.rollback()
    assert session_rows(*count) == [(0,)]  # the write was the transaction's, and went with it
    db.session.rollback()

    assert round_trips(lambda: session_rows(*write)) == 1  # one statement: BEGIN with it
    db.session.rollback()
    assert session_rows(*count) == [(0,)]
    db.session.rollback()


def test_a_failed_first_statement_leaves_a_transaction_to_roll_back(pg_app):
    """The first statements of a transaction failing with their ``BEGIN``: SQLAlchemy's error,
    nothing of theirs kept, the session usable once rolled back."""
    from sqlalchemy.exc import IntegrityError

    from portal.core.driver import session_rows, session_rows_together

    db.session.rollback()
    first = (
        "INSERT INTO audit_events (actor, action, subject_type, subject_id, at)"
        " VALUES ('t', 'probe.failed', 'probe', 'x', now()) RETURNING action",
        {},
    )
    failing = ("INSERT INTO audit_events (actor) VALUES (NULL) RETURNING id", {})
    with pytest.raises(IntegrityError):
        session_rows_together([first, failing])
    db.session.rollback()
    count = "SELECT count(*) FROM audit_events WHERE action = %(action)s"
    assert session_rows(count, {"action": "probe.failed"}) == [(0,)]
    db.session.rollback()
    with pytest.raises(IntegrityError):  # alone, with its BEGIN
        session_rows(*failing)
    db.session.rollback()
    assert session_rows(*first) == [("probe.failed",)]
    db.session.commit()
    assert session_rows(count, {"action": "probe.failed"}) == [(1,)]
    db.session.rollback()


def test_a_transaction_with_its_own_isolation_is_begun_so_with_its_first_statements(pg_app):
    """An isolation level asked for (``ledger verify`` reads in REPEATABLE READ), or the default
    one named (as SQLAlchemy leaves a connection after ``execution_options(isolation_level=…)``,
    which the certificates' look-ups use): the ``BEGIN`` the driver would send, in the
    statements' round trip, and the transaction has that level."""
    from psycopg import IsolationLevel

    from portal.core.driver import session_rows
    from tests.sql import driver_trace, round_trips

    db.session.rollback()
    db.session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
    answers = []
    trace = driver_trace(lambda: answers.append(session_rows("SHOW transaction_isolation", {})))
    assert answers == [[("repeatable read",)]]
    assert _begins(trace) == ["BEGIN ISOLATION LEVEL REPEATABLE READ"]
    assert _answers(trace) == 1
    db.session.rollback()

    driver = db.session.connection().connection.driver_connection
    driver.isolation_level = IsolationLevel.READ_COMMITTED
    trace = driver_trace(lambda: answers.append(session_rows("SHOW transaction_isolation", {})))
    assert answers[-1] == [("read committed",)]
    assert _begins(trace) == ["BEGIN ISOLATION LEVEL READ COMMITTED"]
    db.session.rollback()
    assert round_trips(lambda: session_rows("SELECT 1", {})) == 1
    db.session.rollback()
    driver.isolation_level = None
