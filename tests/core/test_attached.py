"""``core.database.attached``: a row read elsewhere becomes an object the session treats exactly
as one it loaded — clean, found again by identity, written when changed, its relationships
loaded when asked for, expired at commit and forgotten at rollback."""

from sqlalchemy import inspect, select, update
from sqlalchemy.orm.util import identity_key

from portal.core.database import attached, plain_columns
from portal.extensions import db
from portal.ledger.models import Batch
from tests import factories
from tests.sql import statements_of


def _row(model, id_):
    """Every column of the row, by attribute, read outside the session's identity map."""
    columns = plain_columns(model)
    table = model.__table__
    row = db.session.execute(
        select(*(table.c[name] for _key, name in columns)).where(table.c.id == id_)
    ).one()
    return {key: row[n] for n, (key, _name) in enumerate(columns)}


def _fresh_batch():
    batch = factories.batch(quantity=100, code="ATT-2021", vintage=2021)
    db.session.commit()
    id_ = batch.id
    db.session.expunge_all()
    return id_


def test_an_attached_row_is_a_clean_persistent_object_found_again_without_a_statement(any_app):
    id_ = _fresh_batch()
    values = _row(Batch, id_)

    batch = attached(Batch, values)

    state = inspect(batch)
    assert state.persistent and not state.modified and batch in db.session
    assert state.key == identity_key(Batch, id_)
    assert batch not in db.session.dirty and not db.session.new
    assert (batch.id, batch.code, batch.quantity) == (id_, "ATT-2021", 100)
    # The session's own object: a look-up by key and a query give it back, without reading it.
    assert statements_of(lambda: db.session.get(Batch, id_)) == []
    assert db.session.get(Batch, id_) is batch
    assert db.session.scalars(select(Batch).where(Batch.id == id_)).one() is batch
    # Attached again (another read of the same row): still the same object.
    assert attached(Batch, values) is batch


def test_an_attached_objects_relationships_load_when_asked_for(any_app):
    id_ = _fresh_batch()
    batch = attached(Batch, _row(Batch, id_))

    sent = statements_of(lambda: batch.project.code)

    assert len(sent) == 1 and "projects" in sent[0]
    assert batch.project.region.code  # and onwards


def test_a_change_to_an_attached_object_is_written_and_a_commit_expires_it(any_app):
    id_ = _fresh_batch()
    batch = attached(Batch, _row(Batch, id_))

    batch.code = "ATT-2021-B"
    assert batch in db.session.dirty
    db.session.commit()

    assert "code" in inspect(batch).expired_attributes  # expired at commit, as any loaded object
    db.session.execute(update(Batch).where(Batch.id == id_).values(code="ATT-2021-C"))
    assert batch.code == "ATT-2021-C"  # read again
    db.session.commit()
    db.session.expunge_all()
    assert db.session.get(Batch, id_).code == "ATT-2021-C"


def test_an_attached_object_is_forgotten_with_a_rollback_like_a_loaded_one(any_app):
    id_ = _fresh_batch()
    batch = attached(Batch, _row(Batch, id_))
    batch.code = "NEVER"

    db.session.rollback()

    assert batch.code == "ATT-2021"  # the change undone, the row read again
    assert db.session.get(Batch, id_) is batch


def test_attaching_a_row_the_session_holds_expired_refreshes_that_object(any_app):
    id_ = _fresh_batch()
    held = db.session.get(Batch, id_)
    db.session.expire(held)
    values = _row(Batch, id_)

    again = attached(Batch, values)

    assert again is held
    assert statements_of(lambda: held.code) == []  # its attributes set from the row
    assert held.code == "ATT-2021"


FIRST_THING = """
import sys
from tests.conftest import make_app
from portal.core.database import attached
from portal.extensions import db
from portal.ledger.models import Batch
from portal.catalog.models import Project
from sqlalchemy.orm.attributes import set_committed_value

app = make_app(sys.argv[1])
with app.app_context():
    batch = attached(Batch, {"id": 1, "code": "FIRST"})
    set_committed_value(batch, "project", attached(Project, {"id": 2, "code": "P"}))
    print(batch.project.code)
"""


def test_a_fresh_process_can_attach_before_the_orm_has_run_a_query(tmp_path, sqlite_template):
    """A web worker's first request may attach rows (an API key and its organisation) before
    any query has set up the mappers' relationships."""
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    path = tmp_path / "portal.db"
    shutil.copy(sqlite_template, path)
    done = subprocess.run(
        [sys.executable, "-c", FIRST_THING, f"sqlite:///{path}"],
        capture_output=True,
        text=True,
        cwd=Path(__file__).parents[2],
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "P"
