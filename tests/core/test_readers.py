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
