"""Test fixtures: a fresh migrated SQLite database per test, and the same on PostgreSQL.

SQLite: the schema is built once per session with the real migrations, then copied per test.
PostgreSQL (``PORTAL_TEST_POSTGRES_URL``): migrated once per session, emptied before each test.
Tests that need PostgreSQL are skipped, with the reason shown, when the variable is unset.

Under pytest-xdist (``make test`` runs two workers) each worker is a session of its own, with
its own PostgreSQL database beside the configured one (``<database>_gw0``, ``<database>_gw1``,
created when missing), so that no worker empties or terminates what another is using. The
tests in ``ALONE`` run while no other test runs (the other worker waits).
"""

import contextlib
import fcntl
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from flask import g, has_app_context
from flask.testing import FlaskClient
from flask_migrate import upgrade
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.exc import ProgrammingError

from portal import create_app
from portal.extensions import db
from portal.jobs import engine as jobs_engine
from tests.clock import on_the_session_day


@pytest.fixture(autouse=True)
def _on_the_session_day():
    """Every test sees the portal on the day the session started (tests.clock)."""
    with on_the_session_day():
        yield


#: The pytest-xdist worker this process is ("gw0", "gw1" …), or None when pytest runs alone.
WORKER = os.environ.get("PYTEST_XDIST_WORKER")


def worker_database_url(url: str | None, worker: str | None) -> str | None:
    """The database URL of ``worker``: the configured database's name followed by ``_<worker>``
    (the configured one itself when pytest runs alone)."""
    if not url or not worker:
        return url
    parsed = make_url(url)
    return parsed.set(database=f"{parsed.database}_{worker}").render_as_string(hide_password=False)


#: The configured PostgreSQL database; this process's own (``PG_URL``) is derived from it.
PG_BASE_URL = os.environ.get("PORTAL_TEST_POSTGRES_URL")
PG_URL = worker_database_url(PG_BASE_URL, WORKER)
PG_SKIP_REASON = "PORTAL_TEST_POSTGRES_URL is not set: PostgreSQL tests skipped (.ci/run sets it)"


#: Tests that must have the PostgreSQL server to themselves (none at the moment: the catalog
#: cache's data version, whose hits some tests count, no longer depends on what other databases
#: on the server do).
ALONE: tuple[str, ...] = ()


@contextlib.contextmanager
def _turn(config, alone: bool):
    """Under pytest-xdist: hold the run's lock, shared, or alone for a test in ``ALONE``. A
    test waiting to run alone holds the gate, so the other worker starts no new test meanwhile."""
    folder = Path(tempfile.gettempdir()) / f"portal-tests-{config.workerinput['testrunuid']}"
    folder.mkdir(exist_ok=True)
    with open(folder / "gate.lock", "a") as gate, open(folder / "run.lock", "a") as run:
        fcntl.flock(gate, fcntl.LOCK_EX)
        try:
            fcntl.flock(run, fcntl.LOCK_EX if alone else fcntl.LOCK_SH)
        finally:
            if not alone:
                fcntl.flock(gate, fcntl.LOCK_UN)
        try:
            yield
        finally:
            fcntl.flock(run, fcntl.LOCK_UN)
            fcntl.flock(gate, fcntl.LOCK_UN)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """Set-up, test and tear-down of each test (session fixtures included) in its turn."""
    if WORKER is None:
        yield
        return
    with _turn(item.config, item.nodeid.startswith(ALONE)):
        yield


def make_app(database_url, **extra):
    config = {
        "TESTING": True,
        "DATABASE_URL": database_url,
        "SECRET_KEY": "test-secret",
        "WTF_CSRF_ENABLED": False,
        "LOG_LEVEL": "WARNING",
        # The machine's PDF-check slots, per test worker (workers must not refuse each other).
        "VERIFY_SLOTS_DIR": str(
            Path(tempfile.gettempdir())
            / f"portal-verify-slots-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
        ),
        # Work asked for after a commit stays in this process's memory; tests run jobs themselves.
        "JOBS_URL": "memory:",
    }
    config.update(extra)
    return create_app(config)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory):
    path = tmp_path_factory.mktemp("template") / "portal.db"
    app = make_app(f"sqlite:///{path}")
    with app.app_context():
        upgrade()
        db.engine.dispose()
    return path


def _create_database(base_url: str, url: str) -> None:
    """Create ``url``'s database, from a connection to the configured one, unless it exists."""
    name = make_url(url).database
    engine = create_engine(base_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            if conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}):
                return
            try:
                # template0: never connected to, so it cannot be "accessed by other users".
                conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE template0'))
            except ProgrammingError:  # created meanwhile by another run
                if not conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}):
                    raise
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def postgres_url():
    if not PG_URL:
        pytest.skip(PG_SKIP_REASON)
    if PG_URL != PG_BASE_URL:
        _create_database(PG_BASE_URL, PG_URL)
    engine = create_engine(PG_URL)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    app = make_app(PG_URL)
    with app.app_context():
        upgrade()
        db.engine.dispose()
    return PG_URL


def _sqlite_app(tmp_path, sqlite_template, **extra):
    path = tmp_path / "portal.db"
    shutil.copy(sqlite_template, path)
    return make_app(f"sqlite:///{path}", **extra)


def _postgres_app(postgres_url, **extra):
    app = make_app(postgres_url, SQLALCHEMY_ENGINE_OPTIONS={"pool_size": 30, "max_overflow": 10}, **extra)
    with app.app_context():
        # Rows the migrations seed are part of the schema, not of a test's data: the catalog
        # revision's single row and the default revenue-sharing rule.
        kept = ("catalog_revisions", "sharing_rules")
        tables = [t.name for t in db.metadata.sorted_tables if t.name not in kept]
        with db.engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
            conn.execute(text("DELETE FROM sharing_rules WHERE created_by <> 'migration'"))
    return app


def _yield_app(app):
    ctx = app.app_context()
    ctx.push()
    try:
        yield app
    finally:
        db.session.remove()
        db.engine.dispose()
        jobs_engine.close(app)  # a PostgreSQL queue holds a connection of its own
        ctx.pop()


@pytest.fixture
def app(tmp_path, sqlite_template):
    """The application on a fresh SQLite database, inside an app context."""
    yield from _yield_app(_sqlite_app(tmp_path, sqlite_template))


@pytest.fixture
def pg_app(request):
    """The application on the PostgreSQL test database, emptied."""
    yield from _yield_app(_postgres_app(request.getfixturevalue("postgres_url")))


@pytest.fixture(params=["sqlite", "postgresql"])
def any_app(request, tmp_path, sqlite_template):
    """The same test on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        app = _sqlite_app(tmp_path, sqlite_template)
    else:
        app = _postgres_app(request.getfixturevalue("postgres_url"))
    yield from _yield_app(app)


@pytest.fixture
def csrf_app(tmp_path, sqlite_template):
    """The application checking CSRF tokens, as in production (the other fixtures turn the
    check off), on a fresh SQLite database, inside an app context; its client is ``Client``."""
    app = _sqlite_app(tmp_path, sqlite_template, WTF_CSRF_ENABLED=True)
    app.test_client_class = Client
    yield from _yield_app(app)


class Client(FlaskClient):
    """A test client whose requests start with an empty ``g``, as in production.

    Tests keep an app context pushed (for database access), and Flask reuses it for the
    client's requests; in production every request has its own, so what extensions cache on
    ``g`` (Flask-Babel's locale, Flask-Login's user) is cleared here to behave the same.
    """

    def open(self, *args, **kwargs):
        if has_app_context():
            for name in list(vars(g)):
                delattr(g, name)
        return super().open(*args, **kwargs)


@pytest.fixture
def client(app):
    app.test_client_class = Client
    return app.test_client()
