"""The end of a request (``core.database.configure``'s ``commit_request``): what the request
changed is committed with a successful answer and undone with an error; a view that committed
its own work costs no second commit."""

from sqlalchemy import event, select
from sqlalchemy.orm import Session

from portal.catalog.models import Region
from portal.extensions import db
from tests import factories


def _transactions_during(func) -> int:
    """How many transactions the session began (including ones that never reached the database)."""
    begun = []

    def count(_session, transaction):
        if transaction.parent is None:
            begun.append(transaction)

    event.listen(Session, "after_transaction_create", count)
    try:
        func()
    finally:
        event.remove(Session, "after_transaction_create", count)
    return len(begun)


def _names(code):
    db.session.remove()
    return db.session.scalars(select(Region.name_en).where(Region.code == code)).all()


def test_a_successful_answer_commits_what_the_view_left_pending(any_app):
    @any_app.route("/test-pending", methods=["POST"])
    def pending():
        factories.region(code="pending")
        return "ok"

    assert any_app.test_client().post("/test-pending").status_code == 200
    assert len(_names("pending")) == 1


def test_a_change_made_after_the_views_own_commit_is_committed_too(any_app):
    region = factories.region(code="late")
    db.session.commit()
    region_id = region.id
    db.session.remove()

    @any_app.route("/test-late", methods=["POST"])
    def late():
        found = db.session.get(Region, region_id)
        db.session.commit()  # the view's own commit: the object stays, expired
        found.name_en = "Changed late"  # no statement: the session has begun nothing since
        return "ok"

    assert any_app.test_client().post("/test-late").status_code == 200
    assert _names("late") == ["Changed late"]


def test_an_error_answer_undoes_what_the_view_left_pending(any_app):
    @any_app.route("/test-refused", methods=["POST"])
    def refused():
        factories.region(code="refused")
        return "no", 400

    assert any_app.test_client().post("/test-refused").status_code == 400
    assert _names("refused") == []


def test_a_view_that_committed_its_work_begins_nothing_more(any_app):
    @any_app.route("/test-committed", methods=["POST"])
    def committed():
        factories.region(code="committed")
        db.session.commit()
        return "ok"

    client = any_app.test_client()
    assert _transactions_during(lambda: client.post("/test-committed")) == 1
    assert len(_names("committed")) == 1


def test_a_commit_keeping_what_was_loaded_commits_and_reads_nothing_again(any_app):
    """``commit_keeping_loaded``: the transaction is committed, the objects the session loaded
    keep their values (reading them sends no statement), and the next commit expires again."""
    from portal.core.database import commit_keeping_loaded
    from tests.sql import statements_of

    region = factories.region(code="kept")
    db.session.commit()
    region = db.session.scalars(select(Region).where(Region.code == "kept")).one()
    region.name_en = "Kept"
    commit_keeping_loaded()
    assert statements_of(lambda: region.name_en) == []
    assert _names("kept") == ["Kept"]
    region = db.session.scalars(select(Region).where(Region.code == "kept")).one()
    db.session.commit()
    assert len(statements_of(lambda: region.name_en)) == 1  # expired, read again
