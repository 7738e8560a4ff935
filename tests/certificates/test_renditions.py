"""Certificates' public answers kept drawn (``certificates.renditions``): a kept page or JSON is
served only while it names exactly what the certificate is now, is drawn again after any
change (revocation, a payload altered in the database, another release), and what is drawn
ahead is exactly what a visitor is served. On both databases."""

import pytest
from flask import current_app
from sqlalchemy import select, text, update

from portal.buyers import services as buyers
from portal.certificates import renditions, revocation, services, signing
from portal.certificates.models import Certificate, Rendition
from portal.extensions import db
from tests import factories
from tests.conftest import Client
from tests.sql import statements_of

PAGE = "/certificates/{}"
JSON = "/api/v1/certificates/{}"


@pytest.fixture
def app_(any_app):
    any_app.test_client_class = Client
    return any_app


@pytest.fixture
def cert(app_):
    steel, _ = factories.steel_and_cement()
    batch = factories.batch(quantity=1000, code="CCER-R-2021", vintage=2021)
    buyers.deliver_from_inventory(steel, 50, batch_codes=[batch.code])
    certificate, _ = services.retire_from_holding(
        steel, 7, beneficiary="鞍钢", purpose="voluntary", actor="test"
    )
    db.session.commit()
    signing.public_key(certificate.key_id)  # published keys are read once per process
    return certificate


def _reads() -> int:
    """Statements an engine event sees for the state's read: none on PostgreSQL, where it goes
    through the driver's own cursor (``core.database.raw_rows``)."""
    return 0 if db.engine.dialect.name == "postgresql" else 1


def _kept(certificate_id: int) -> dict[str, Rendition]:
    db.session.rollback()  # a fresh snapshot: kept on PostgreSQL by another connection
    rows = db.session.scalars(select(Rendition).where(Rendition.certificate_id == certificate_id))
    return {r.kind: r for r in rows}


def _forget_cached():
    """Empty this worker's cache of drawn answers (``views.page_cache``)."""
    current_app.extensions.pop("certificate_cache", None)


def _tamper(statement, **params):
    """Run ``statement`` past the certificates' immutability triggers, as someone with write
    access to the database could (PostgreSQL: triggers off for the transaction; SQLite: dropped)."""
    if db.engine.dialect.name == "postgresql":
        db.session.execute(text("SET LOCAL session_replication_role = replica"))
    else:
        for (name,) in db.session.execute(
            text("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'certificates'")
        ).all():
            db.session.execute(text(f"DROP TRIGGER {name}"))
    db.session.execute(text(statement), params)
    db.session.commit()


def _fresh(client, path):
    """The answer drawn from scratch: nothing kept, nothing cached."""
    db.session.execute(text("DELETE FROM certificate_renditions"))
    db.session.commit()
    _forget_cached()
    return client.get(path)


@pytest.mark.parametrize("path, kind", [(PAGE, "page:zh"), (JSON, "json")])
def test_the_first_view_is_kept_and_the_next_served_from_it_exactly(app_, cert, path, kind):
    client = app_.test_client()
    path = path.format(cert.number)
    found = []
    first_statements = statements_of(lambda: found.append(client.get(path)))
    first = found[0]
    assert first.status_code == 200
    # The read (of what a kept answer is checked with), the rest of the certificate to draw it
    # from, and the drawn answer kept.
    assert len(first_statements) == 2 * _reads() + 1, [s[:90] for s in first_statements]
    kept = _kept(cert.id)
    assert set(kept) == {kind}
    assert kept[kind].body == first.get_data()
    _forget_cached()
    again_statements = statements_of(lambda: found.append(client.get(path)))
    again = found[1]
    assert len(again_statements) == _reads(), again_statements  # the read brings the kept answer
    assert again.get_data() == first.get_data() and again.headers["ETag"] == first.headers["ETag"]
    assert _fresh(client, path).get_data() == first.get_data()


def test_a_revocation_shows_at_once_though_the_page_and_json_were_kept(app_, cert):
    client = app_.test_client()
    page, json_ = client.get(PAGE.format(cert.number)), client.get(JSON.format(cert.number))
    assert set(_kept(cert.id)) == {"page:zh", "json"}
    revocation.revoke(db.session.get(Certificate, cert.id), "登记簿撤销了这批碳信用", actor="operator@test")
    db.session.commit()
    page_after, json_after = client.get(PAGE.format(cert.number)), client.get(JSON.format(cert.number))
    assert page_after.headers["ETag"] != page.headers["ETag"]
    assert "登记簿撤销了这批碳信用" in page_after.get_data(as_text=True)
    assert json_after.get_json()["status"] == "revoked" and json_.get_json()["status"] == "valid"
    kept = _kept(cert.id)
    assert kept["page:zh"].body == page_after.get_data()  # replaced, not added
    assert kept["json"].body == json_after.get_data()
    assert page_after.get_data() == _fresh(client, PAGE.format(cert.number)).get_data()


def test_a_payload_altered_in_the_database_is_checked_again_not_served_from_what_was_kept(app_, cert):
    client = app_.test_client()
    genuine = client.get(JSON.format(cert.number)).get_json()
    client.get(PAGE.format(cert.number))
    assert genuine["signature_valid"] is True
    altered = cert.payload.replace('"quantity":7', '"quantity":70')
    assert altered != cert.payload
    _tamper("UPDATE certificates SET payload = :payload WHERE id = :id", payload=altered, id=cert.id)
    _forget_cached()
    shown = client.get(JSON.format(cert.number)).get_json()
    assert shown["signature_valid"] is False and shown["payload"] == altered
    page = client.get(PAGE.format(cert.number)).get_data(as_text=True)
    assert "The signature does not verify." in page or "签名" in page
    assert page == _fresh(client, PAGE.format(cert.number)).get_data(as_text=True)


def test_a_kept_body_whose_stamp_is_not_current_is_never_served(app_, cert):
    client = app_.test_client()
    first = client.get(PAGE.format(cert.number))
    db.session.execute(
        update(Rendition)
        .where(Rendition.certificate_id == cert.id)
        .values(stamp="0" * 64, body=b"<p>forged</p>")
    )
    db.session.commit()
    again = client.get(PAGE.format(cert.number))
    assert again.get_data() == first.get_data() and b"forged" not in again.get_data()
    assert _kept(cert.id)["page:zh"].stamp != "0" * 64  # drawn again and kept in its place


def test_pages_asked_with_a_query_or_by_staff_are_not_kept(app_, cert):
    client = app_.test_client()
    assert client.get(PAGE.format(cert.number) + "?ref=qr").status_code == 200
    assert client.get(PAGE.format(cert.number) + "?lang=en").status_code == 200
    assert _kept(cert.id) == {}
    factories.user("ops@example.com", role="operator")
    db.session.commit()
    staff = app_.test_client()
    staff.post("/login", data={"email": "ops@example.com", "password": factories.PASSWORD})
    page = staff.get(PAGE.format(cert.number))
    assert page.status_code == 200 and f"/certificates/{cert.number}/revoke" in page.get_data(as_text=True)
    assert _kept(cert.id) == {}


def test_drawing_ahead_keeps_what_visitors_are_served_in_each_language(app_, cert):
    number = cert.number  # read before _kept's rollback expires it
    drawn, last = renditions.draw_ahead(limit=10)
    db.session.commit()
    assert (drawn, last) == (1, cert.id)
    kept = _kept(cert.id)
    assert set(kept) == {"page:zh", "page:en", "json"}
    assert renditions.draw_ahead(limit=10) == (0, None)  # nothing left to draw
    english = app_.test_client()
    english.get("/verify?lang=en")
    _forget_cached()
    found = []
    statements = statements_of(lambda: found.append(english.get(PAGE.format(number))))
    assert len(statements) == _reads(), [s[:100] for s in statements]
    assert "Retirement certificate" in found[0].get_data(as_text=True)
    assert kept["page:en"].body == found[0].get_data()
    assert kept["page:zh"].body == app_.test_client().get(PAGE.format(number)).get_data()
    # Another release's renditions (other ETags, so other stamps) are drawn again.
    db.session.execute(update(Rendition).values(release="older", stamp="1" * 64))
    db.session.commit()
    assert renditions.draw_ahead(limit=10)[0] == 1
    assert {r.release for r in _kept(cert.id).values()} == {renditions.validators.release()}


def test_the_command_and_the_job_draw_every_certificate_lacking_its_answers(app_, cert):
    steel = db.session.get(Certificate, cert.id).organisation
    for _ in range(2):
        services.retire_from_holding(steel, 1, beneficiary="鞍钢", purpose="voluntary", actor="test")
    db.session.commit()
    result = app_.test_cli_runner().invoke(args=["certificates", "draw", "--all", "--limit", "2"])
    assert result.exit_code == 0 and "drew 3 certificate(s) ahead" in result.output
    assert db.session.scalar(select(db.func.count()).select_from(Rendition)) == 9
    db.session.execute(text("DELETE FROM certificate_renditions"))
    db.session.commit()
    from portal.jobs.work import JOBS

    assert JOBS["certificates.draw"].run() == "drew 3 certificate(s) ahead"
    assert db.session.scalar(select(db.func.count()).select_from(Rendition)) == 9


def test_kept_answers_are_stored_as_served_and_compressed_by_postgresql(app_, cert):
    """The worker serves a kept body without inflating it; on PostgreSQL the server compresses
    it in the row (lz4 on a server built with it, as this one is)."""
    client = app_.test_client()
    page = client.get(PAGE.format(cert.number))
    assert _kept(cert.id)["page:zh"].body == page.get_data()
    if db.engine.dialect.name != "postgresql":
        return
    compression = db.session.scalar(
        text(
            "SELECT attcompression FROM pg_attribute"
            " WHERE attrelid = 'certificate_renditions'::regclass AND attname = 'body'"
        )
    )
    assert compression == "l"
    stored, served = db.session.execute(
        text(
            "SELECT pg_column_size(body), octet_length(body) FROM certificate_renditions"
            " WHERE certificate_id = :id AND kind = 'page:zh'"
        ),
        {"id": cert.id},
    ).one()
    assert stored < served * 0.8  # compressed in the row (lz4 takes HTML to about 60 %)
