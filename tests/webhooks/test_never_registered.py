"""An organisation that never registered a webhook endpoint (``Organisation.webhooks_since``
unset) has its events dropped without its endpoints being read; its first endpoint dates the
column, which is never unset, so that every later event is told again."""

from sqlalchemy import select

from portal.buyers.models import Organisation
from portal.extensions import db
from portal.webhooks import services as webhooks
from portal.webhooks.models import OutgoingEvent
from tests import factories
from tests.sql import statements_of

ALL = ["certificate.issued", "certificate.revoked", "order.fulfilled"]
DATA = {"certificate": {"number": "x"}}


def _steel() -> Organisation:
    return db.session.scalars(select(Organisation).where(Organisation.uscc == factories.STEEL_USCC)).one()


def test_an_event_for_a_loaded_organisation_that_never_had_an_endpoint_reads_nothing(any_app):
    factories.steel_and_cement()
    db.session.commit()
    steel = _steel()
    assert steel.webhooks_since is None
    results = []
    sent = statements_of(lambda: results.append(webhooks.emit(steel.id, "certificate.issued", DATA)))
    assert results == [None] and sent == []


def test_an_organisation_not_loaded_has_its_endpoints_read(any_app):
    factories.steel_and_cement()
    db.session.commit()
    steel_id = _steel().id
    db.session.remove()
    sent = statements_of(lambda: webhooks.emit(steel_id, "certificate.issued", DATA))
    assert any("webhook_endpoints" in statement for statement in sent)


def test_the_first_endpoint_dates_the_organisation_and_its_events_are_told_again(any_app):
    any_app.config["WEBHOOKS_ALLOW_PRIVATE"] = True  # the endpoints' loopback addresses
    factories.steel_and_cement()
    db.session.commit()
    steel = _steel()
    assert webhooks.emit(steel.id, "certificate.issued", DATA) is None
    endpoint, _secret = webhooks.create_endpoint(steel, "http://127.0.0.1:9/hook", ALL, actor="t")
    assert steel.webhooks_since is not None
    # In the same transaction: the organisation as loaded has changed with it.
    assert webhooks.emit(steel.id, "certificate.issued", DATA) is not None
    db.session.commit()
    first = steel.webhooks_since
    webhooks.delete_endpoint(steel, endpoint.public_id, actor="t")
    db.session.commit()
    db.session.remove()
    steel = _steel()
    assert steel.webhooks_since == first  # never unset: a later endpoint is never missed
    webhooks.create_endpoint(steel, "http://127.0.0.1:9/again", ALL, actor="t")
    db.session.commit()
    db.session.remove()
    steel = _steel()
    assert steel.webhooks_since == first
    assert webhooks.emit(steel.id, "certificate.issued", DATA) is not None
    db.session.commit()
    assert db.session.scalar(select(OutgoingEvent.id).order_by(OutgoingEvent.id.desc()).limit(1)) is not None


def test_an_api_retirement_of_an_organisation_without_endpoints_does_not_read_them(any_app):
    from portal.buyers import services as buyers
    from tests.certificates.helpers import retire

    steel, _cement = factories.steel_and_cement()
    factories.batch(quantity=100, code="CCER-W-2021", vintage=2021)
    buyers.deliver_from_inventory(steel, 50)
    db.session.commit()
    key = factories.api_key(any_app, "--org", factories.STEEL_USCC)
    client = any_app.test_client()
    body = {"quantity": 1, "beneficiary": "x", "purpose": "voluntary"}
    answers = []
    sent = statements_of(lambda: answers.append(retire(client, key, body)))
    assert answers[0].status_code == 201
    assert not any("webhook_endpoints" in statement for statement in sent)
