"""Reading a certificate's public page and JSON: one statement each, an ETag naming everything
that can change (revocation, the registry's decisions, the transparency log) and the language,
304 for a current copy, and a change showing on the very next request."""

import pytest
from sqlalchemy import event, select

from portal.buyers import services as buyers
from portal.certificates import services, signing
from portal.certificates.models import Certificate
from portal.extensions import db
from portal.registry import instructions
from portal.registry.models import RegistryInstruction
from portal.timeutil import beijing_today
from tests import factories
from tests.sql import statements_of


@pytest.fixture
def cert(held):
    steel, _ = held
    certificate, _ = services.retire_from_holding(
        steel, 9, beneficiary="鞍钢", purpose="voluntary", actor="test"
    )
    db.session.commit()
    return certificate


def _get(client, path, **headers):
    found = []
    statements = statements_of(lambda: found.append(client.get(path, headers=headers)))
    return found[0], statements


@pytest.mark.parametrize(
    ("path", "kept"),
    [("/certificates/{}", 1), ("/certificates/{}?lang=en", 0), ("/api/v1/certificates/{}", 1)],
)
def test_a_certificate_is_read_in_one_statement_drawn_kept_or_cached(cert, app, client, path, kept):
    path = path.format(cert.number)
    signing.public_key(cert.key_id)  # published keys are read once per process
    first, statements = _get(client, path)
    assert first.status_code == 200
    # The read; when asked without a query, the read brings only what a kept answer is checked
    # with, so drawing reads the rest of the certificate, and the drawn answer is kept.
    assert len(statements) == 1 + 2 * kept, statements
    again, statements = _get(client, path)  # kept, or from the worker's cache of drawn answers
    assert again.get_data() == first.get_data() and len(statements) == 1, statements


def test_an_unknown_number_still_counts_against_the_address(cert, app, client):
    response = client.get("/certificates/CFC-2026-AAAA-AAAA")
    assert response.status_code == 404 and "ETag" not in response.headers


@pytest.mark.parametrize("path", ["/certificates/{}", "/api/v1/certificates/{}"])
def test_a_current_copy_is_answered_304_without_a_body(cert, client, path):
    path = path.format(cert.number)
    first = client.get(path)
    etag = first.headers["ETag"]
    assert first.headers["Cache-Control"] == "public, no-cache"
    if path.startswith("/certificates/"):  # the JSON is the same in every language, for everyone
        assert {"Cookie", "Accept-Language"} <= set(first.headers["Vary"].replace(" ", "").split(","))
    assert cert.number in first.get_data(as_text=True)
    not_modified = client.get(path, headers={"If-None-Match": etag})
    assert not_modified.status_code == 304 and not_modified.get_data() == b""
    assert not_modified.headers["ETag"] == etag
    assert client.get(path, headers={"If-None-Match": '"something-else"'}).status_code == 200


def test_each_language_has_its_own_etag(cert, app, client):
    zh = client.get(f"/certificates/{cert.number}?lang=zh")
    en = client.get(f"/certificates/{cert.number}?lang=en")
    assert zh.headers["ETag"] != en.headers["ETag"]
    assert "退役证明" in zh.get_data(as_text=True) or "证明" in zh.get_data(as_text=True)
    assert "Retirement certificate" in en.get_data(as_text=True)
    # The session remembers English: a Chinese copy is not current for it.
    assert (
        client.get(f"/certificates/{cert.number}", headers={"If-None-Match": zh.headers["ETag"]}).status_code
        == 200
    )
    # An answer that sets the session cookie is for this client only; one that does not is public.
    assert en.headers["Cache-Control"] == "private, no-cache" and "Set-Cookie" in en.headers
    # The next answer leaves the session as it was: no cookie, so public (it varies on Cookie).
    again = client.get(f"/certificates/{cert.number}")
    assert "Set-Cookie" not in again.headers and again.headers["Cache-Control"] == "public, no-cache"
    assert "Cookie" in again.headers["Vary"]
    cookieless = app.test_client().get(f"/certificates/{cert.number}")
    assert (
        "Set-Cookie" not in cookieless.headers and cookieless.headers["Cache-Control"] == "public, no-cache"
    )
    # The JSON has no words to translate: one answer, one ETag, in every language.
    api_zh = client.get(f"/api/v1/certificates/{cert.number}?lang=zh")
    api_en = client.get(f"/api/v1/certificates/{cert.number}?lang=en")
    assert api_zh.headers["ETag"] == api_en.headers["ETag"] and api_zh.get_data() == api_en.get_data()


def test_a_revocation_changes_the_etag_and_shows_on_the_very_next_request(cert, client):
    page = client.get(f"/certificates/{cert.number}?lang=en")
    data = client.get(f"/api/v1/certificates/{cert.number}")
    assert "Valid" in page.get_data(as_text=True) and data.get_json()["status"] == "valid"

    services.revoke(services.find(cert.number), "核证机构撤销了该批次", actor="test")
    db.session.commit()

    after = client.get(
        f"/certificates/{cert.number}?lang=en", headers={"If-None-Match": page.headers["ETag"]}
    )
    assert after.status_code == 200 and after.headers["ETag"] != page.headers["ETag"]
    html = after.get_data(as_text=True)
    assert "Revoked" in html and "核证机构撤销了该批次" in html
    assert "Revocation" in html  # its entry in the transparency log
    api = client.get(f"/api/v1/certificates/{cert.number}", headers={"If-None-Match": data.headers["ETag"]})
    assert api.status_code == 200 and api.headers["ETag"] != data.headers["ETag"]
    body = api.get_json()
    assert body["status"] == "revoked" and body["revoked"]["reason"] == "核证机构撤销了该批次"
    assert [e["kind"] for e in body["transparency_log"]["entries"]] == ["issuance", "revocation"]


def test_a_registry_confirmation_changes_the_etag_and_the_page(cert, client):
    page = client.get(f"/certificates/{cert.number}?lang=en")
    data = client.get(f"/api/v1/certificates/{cert.number}")
    assert data.get_json()["registry"]["status"] == "pending"

    (instruction,) = db.session.scalars(
        select(RegistryInstruction).where(RegistryInstruction.certificate_id == cert.id)
    )
    instructions.confirm(
        instruction,
        reference="ZX-2026-000123",
        registry_date=beijing_today().isoformat(),
        serial_start="CN-CCER-14-2024001-2021-000001001",
        serial_end="CN-CCER-14-2024001-2021-000001009",
        actor="test",
    )
    db.session.commit()

    after = client.get(
        f"/certificates/{cert.number}?lang=en", headers={"If-None-Match": page.headers["ETag"]}
    )
    assert after.status_code == 200 and after.headers["ETag"] != page.headers["ETag"]
    assert "ZX-2026-000123" in after.get_data(as_text=True)
    api = client.get(f"/api/v1/certificates/{cert.number}", headers={"If-None-Match": data.headers["ETag"]})
    assert api.status_code == 200 and api.headers["ETag"] != data.headers["ETag"]
    body = api.get_json()
    assert body["registry"]["status"] == "confirmed" and body["registry"]["reference"] == "ZX-2026-000123"
    assert body["transparency_log"]["entries"][-1]["kind"] == "registry_confirmation"


def test_the_state_orders_its_rows_itself_and_brings_the_kept_body(any_app):
    """The read sorts nothing on the server (``state._RAW_QUERY``): its rows, one per instruction
    and log entry, each with the kept body, are put in order by ``state.read``."""

    from portal.certificates import state

    steel, _ = factories.steel_and_cement()
    factories.batch(quantity=5, code="ORD-2021", vintage=2021)
    factories.batch(quantity=100, code="ORD-2022", vintage=2022)
    buyers.deliver_from_inventory(steel, 10)
    certificate, _ = services.retire_from_holding(steel, 10, beneficiary="X", purpose="voluntary", actor="t")
    db.session.commit()
    number = certificate.number
    services.revoke(services.find(number), "entered twice", actor="test")
    db.session.commit()
    client = any_app.test_client()
    drawn = client.get(f"/api/v1/certificates/{number}").get_data()  # drawn and kept
    found = state.read(number, "json")
    # two batches: two registry instructions; two log entries: 4 rows
    ids = sorted(
        db.session.scalars(
            select(RegistryInstruction.id).where(RegistryInstruction.certificate_id == certificate.id)
        )
    )
    assert len(ids) == 2 and [row.id for row in found.instructions] == ids
    assert [entry.kind for entry in found.log_entries] == ["issuance", "revocation"]
    assert found.log_entries[0].leaf_index < found.log_entries[1].leaf_index
    assert found.kept.body == drawn
    assert state.read(number, "page:en").kept is None  # never drawn in English
    # A read for a kept answer brings only what it is checked with; ``complete`` reads the rest
    # (unchanged since issue) and then the certificate is exactly as a whole read gives it.
    whole = state.read(number).certificate
    partial = found.certificate
    assert "beneficiary" not in partial.__dict__ and partial.payload == whole.payload
    assert partial.status == whole.status == "revoked" and partial.revoked_by == whole.revoked_by
    state.complete(partial)
    columns = [column.key for column in Certificate.__table__.columns]
    assert [getattr(partial, c) for c in columns] == [getattr(whole, c) for c in columns]


def test_signed_in_visitors_get_a_private_page_without_an_etag(cert, app, client):
    factories.user("ops@example.com", role="operator")
    db.session.commit()
    client.post("/login", data={"email": "ops@example.com", "password": factories.PASSWORD})
    response = client.get(f"/certificates/{cert.number}?lang=en")
    assert response.status_code == 200 and "ETag" not in response.headers
    assert response.headers["Cache-Control"] == "private, no-store"
    assert "Revoke this certificate" in response.get_data(as_text=True)


@pytest.mark.postgres
def test_on_postgresql_one_round_trip_outside_the_session_and_a_revocation_shows_at_once(pg_app):
    from portal.certificates import state
    from portal.certificates.state import reader

    steel, _ = factories.steel_and_cement()
    factories.batch(quantity=100, code="PG-2021", vintage=2021)
    buyers.deliver_from_inventory(steel, 10)
    certificate, _ = services.retire_from_holding(steel, 3, beneficiary="X", purpose="voluntary", actor="t")
    db.session.commit()
    number = certificate.number
    client = pg_app.test_client()
    signing.public_key(certificate.key_id)
    in_session, pages = [], []

    def record(conn, cursor, statement, parameters, context, executemany):
        in_session.append(statement)

    reads = []
    raw_rows = state.raw_rows

    def read(engine, sql, params):  # the reader's queries go through the driver's own cursor
        assert engine is reader()
        reads.append(sql.split()[1])
        return raw_rows(engine, sql, params)

    event.listen(db.engine, "before_cursor_execute", record)
    state.raw_rows = read
    try:
        statements = statements_of(lambda: pages.append(client.get(f"/certificates/{number}")))
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
        state.raw_rows = raw_rows
    (page,) = pages
    # The page drawn is kept on an engine of its own (``certificates.renditions``). The reader
    # read what a kept page is checked with, then, the page not being kept yet, the rest.
    kept = [statement.split("(")[0].strip() for statement in statements]
    assert page.status_code == 200 and in_session == [] and reads == ["c.id,", "organisation_id,"]
    assert kept == ["INSERT INTO certificate_renditions"], statements
    assert reader() is not db.engine
    state.raw_rows, reads[:] = read, []
    try:
        again = client.get(f"/certificates/{number}")  # kept: one round trip
    finally:
        state.raw_rows = raw_rows
    assert again.get_data() == page.get_data() and reads == ["c.id,"]

    services.revoke(services.find(number), "wrong batch", actor="t")
    db.session.commit()
    after = client.get(f"/certificates/{number}", headers={"If-None-Match": page.headers["ETag"]})
    assert after.status_code == 200 and "wrong batch" in after.get_data(as_text=True)
    data = client.get(f"/api/v1/certificates/{number}").get_json()
    assert data["status"] == "revoked"


def test_a_fresh_worker_reads_a_certificate_before_any_other_use_of_the_models(cert, app):
    """The state's certificate is made without the ORM's constructor (``state._detached``): in a
    new process whose first request is a certificate's page, the classes are mapped first."""
    import subprocess
    import sys

    script = (
        "import sys\n"
        "from portal import create_app\n"
        "app = create_app({'DATABASE_URL': sys.argv[1], 'SECRET_KEY': 'x', 'TESTING': True})\n"
        "client = app.test_client()\n"
        "for path in (f'/certificates/{sys.argv[2]}', f'/api/v1/certificates/{sys.argv[2]}'):\n"
        "    answer = client.get(path)\n"
        "    assert answer.status_code == 200, (path, answer.status_code)\n"
        "    assert sys.argv[2].encode() in answer.data\n"
    )
    number = cert.number
    db.session.commit()
    db.session.close()  # on SQLite every transaction writes: none may stay open
    done = subprocess.run(
        [sys.executable, "-c", script, app.config["SQLALCHEMY_DATABASE_URI"], number],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
