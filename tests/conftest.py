"""Test fixtures: a fresh migrated SQLite database per test, and the same on PostgreSQL.

SQLite: the schema is built once per session with the real migrations, then copied per test.
PostgreSQL (``PORTAL_TEST_POSTGRES_URL``): migrated once per session, emptied before each test.
Tests that need PostgreSQL are skipped, with the reason shown, when the variable is unset.
"""

import os
import shutil

import pytest
from flask import g, has_app_context
from flask.testing import FlaskClient
from flask_migrate import upgrade
from sqlalchemy import create_engine, text

from portal import create_app
from portal.extensions import db

PG_URL = os.environ.get("PORTAL_TEST_POSTGRES_URL")
PG_SKIP_REASON = "PORTAL_TEST_POSTGRES_URL is not set: PostgreSQL tests skipped (.ci/run sets it)"


def make_app(database_url, **extra):
    config = {
        "TESTING": True,
        "DATABASE_URL": database_url,
        "SECRET_KEY": "test-secret",
        "WTF_CSRF_ENABLED": False,
        "LOG_LEVEL": "WARNING",
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


@pytest.fixture(scope="session")
def postgres_url():
    if not PG_URL:
        pytest.skip(PG_SKIP_REASON)
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
