"""The transparency log through the services and the public API: appends with the events,
proofs that verify, refusals that are 4xx error objects, and ``flask log verify``."""

import base64
import hashlib
import json

import pytest
from sqlalchemy import func, select, text

import portal_verify as verifier
from portal.buyers import services as buyers
from portal.certificates import services as certificates
from portal.certificates.models import Certificate, Source
from portal.extensions import db
from portal.transparency import merkle
from portal.transparency import services as transparency
from portal.transparency.models import LogEntry, LogNode, TreeHead
from tests import factories
from tests.transparency.helpers import b64, leaf, retire, revoke, sign


def keys(client):
    return verifier.load_keys(client.get("/api/v1/signing-keys").get_json())


def test_issuance_and_revocation_are_logged_with_their_signed_records(stocked, app, client):
    steel, _ = stocked
    first = retire(steel, 3)
    second = retire(steel, 2)
    revoke(first)
    rows = db.session.execute(
        select(LogEntry.leaf_index, LogEntry.kind, LogEntry.certificate_number).order_by(LogEntry.leaf_index)
    ).all()
    assert [tuple(r) for r in rows] == [
        (0, "issuance", first.number),
        (1, "issuance", second.number),
        (2, "revocation", first.number),
    ]
    body = client.get("/api/v1/log/entries?start=0&end=3").get_json()
    assert body["tree_size"] == 3 and [e["leaf_index"] for e in body["entries"]] == [0, 1, 2]
    issued = leaf(body["entries"][0])
    assert issued["statement"] == first.payload and issued["signature"]["value"] == first.signature
    revoked = leaf(body["entries"][2])
    assert json.loads(revoked["statement"]) == {
        "v": 1,
        "type": "revocation",
        "number": first.number,
        "revoked_at": first.revoked_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "reason": "登记机构更正",
    }
    known = keys(client)
    assert verifier.signed(known, revoked["statement"], revoked["signature"])
    # The certificate's JSON and page say where it is logged, with the proof's link.
    data = client.get(f"/api/v1/certificates/{first.number}").get_json()["transparency_log"]
    assert [(e["kind"], e["leaf_index"]) for e in data["entries"]] == [("issuance", 0), ("revocation", 2)]
    assert data["proof_url"] == (
        app.config["BASE_URL"].rstrip("/") + f"/api/v1/log/proof/inclusion?certificate={first.number}"
    )
    # The answer is cached for everyone: a request naming another host cannot put it in a link.
    for host in ("evil.example", "localhost"):
        forged = client.get(f"/api/v1/certificates/{second.number}", headers={"Host": host}).get_json()
        assert forged["transparency_log"]["proof_url"].startswith(app.config["BASE_URL"].rstrip("/") + "/")
        assert "evil" not in json.dumps(forged)
    for lang, words in (("en", "Logged at index 1"), ("zh", "记录于第 1 号")):
        page = client.get(f"/certificates/{second.number}?lang={lang}").get_data(as_text=True)
        assert words in page and f"/api/v1/log/proof/inclusion?certificate={second.number}" in page


def test_a_retirement_answer_already_shows_its_place_in_the_log(stocked, app, client):
    key = factories.api_key(app, "--org", factories.STEEL_USCC)
    response = client.post(
        "/api/v1/retirements",
        json={"quantity": 2, "beneficiary": "x", "purpose": "voluntary"},
        headers=factories.bearer(key),
    )
    assert response.status_code == 201
    assert response.get_json()["certificate"]["transparency_log"]["entries"] == [
        {
            "kind": "issuance",
            "leaf_index": 0,
            "logged_at": response.get_json()["certificate"]["transparency_log"]["entries"][0]["logged_at"],
        }
    ]


def _retire_uncommitted(org):
    return certificates.retire_into_certificate(
        buyers.holding_account(org),
        org,
        1,
        beneficiary="x",
        purpose="voluntary",
        source=Source.HOLDING,
        actor="t",
    )


def test_an_event_rolled_back_is_never_logged(stocked, app):
    steel, _ = stocked
    # Refused inside a savepoint (as retiring from the holding does): the transaction goes on.
    with pytest.raises(RuntimeError), db.session.begin_nested():
        _retire_uncommitted(steel)
        raise RuntimeError("refused after the certificate was made")
    kept = _retire_uncommitted(steel)
    db.session.commit()
    _retire_uncommitted(steel)
    db.session.rollback()  # a whole transaction undone
    numbers = list(db.session.scalars(select(LogEntry.certificate_number).order_by(LogEntry.leaf_index)))
    assert numbers == [kept.number]
    assert set(numbers) == set(db.session.scalars(select(Certificate.number)))
    # A savepoint released keeps its event.
    with db.session.begin_nested():
        inner = _retire_uncommitted(steel)
    db.session.commit()
    assert (
        db.session.scalar(select(LogEntry.certificate_number).where(LogEntry.leaf_index == 1)) == inner.number
    )
    assert transparency.verify_log().ok


def test_proofs_verify_against_signed_tree_heads(stocked, app, client):
    steel, _ = stocked
    made = [retire(steel) for _ in range(5)]
    first_head = sign()
    made += [retire(steel) for _ in range(6)]
    revoke(made[2])
    head = client.get("/api/v1/log/tree-head").get_json()
    assert head["tree_size"] == 5
    sign()
    head = client.get("/api/v1/log/tree-head").get_json()
    known = keys(client)
    verifier.check_head(known, head)
    assert head["tree_size"] == 12
    root = b64(head["root_hash"])
    for certificate in made:
        proof = client.get(f"/api/v1/log/proof/inclusion?certificate={certificate.number}").get_json()
        assert proof["tree_size"] == 12 and proof["tree_head"] == head
        for entry in proof["entries"]:
            data = b64(entry["leaf_input"])
            path = [b64(p) for p in entry["audit_path"]]
            assert verifier.verify_inclusion(verifier.leaf_hash(data), entry["leaf_index"], 12, path, root)
        assert proof["leaf_index"] == proof["entries"][0]["leaf_index"]
    revoked = client.get(f"/api/v1/log/proof/inclusion?certificate={made[2].number}").get_json()
    assert [e["kind"] for e in revoked["entries"]] == ["issuance", "revocation"]
    # Against an older tree, only what it held.
    older = client.get(f"/api/v1/log/proof/inclusion?certificate={made[2].number}&tree_size=5").get_json()
    assert [e["kind"] for e in older["entries"]] == ["issuance"] and "tree_head" not in older
    earlier_root = first_head.root_hash
    proof = client.get("/api/v1/log/proof/consistency?first=5&second=12").get_json()["proof"]
    assert verifier.verify_consistency(5, 12, earlier_root, root, [b64(p) for p in proof])
    latest = client.get("/api/v1/log/proof/consistency?first=5").get_json()
    assert latest["second"] == 12 and latest["proof"] == proof
    history = client.get("/api/v1/log/tree-heads").get_json()
    assert [h["tree_size"] for h in history["tree_heads"]] == [5, 12] and not history["more"]
    assert [
        h["tree_size"] for h in client.get("/api/v1/log/tree-heads?after=5").get_json()["tree_heads"]
    ] == [12]
    # Nothing new: no new head.
    assert sign() is None
    assert transparency.verify_log().ok


def test_the_tree_head_signature_is_over_the_documented_message(stocked, app):
    steel, _ = stocked
    retire(steel)
    head = sign()
    text_ = (
        "chifeng-carbon-portal transparency log tree head v1\n"
        f"1\n{base64.b64encode(head.root_hash).decode()}\n{head.timestamp}\n"
    )
    assert transparency.message(1, head.root_hash, head.timestamp) == text_
    data = db.session.scalar(select(LogEntry.leaf_input))
    assert head.root_hash == hashlib.sha256(b"\x00" + data).digest()


def test_the_first_head_is_of_the_empty_tree_then_only_growth_is_signed(app, client):
    assert client.get("/api/v1/log/tree-head").status_code == 404
    head = sign()
    assert head.tree_size == 0 and head.root_hash == merkle.EMPTY_ROOT
    assert sign() is None
    assert client.get("/api/v1/log/tree-head").get_json()["tree_size"] == 0


BAD = [
    ("/api/v1/log/entries?start=-1", 400, "invalid_parameter"),
    ("/api/v1/log/entries?start=1.5", 400, "invalid_parameter"),
    ("/api/v1/log/entries?start=abc", 400, "invalid_parameter"),
    ("/api/v1/log/entries?start=%EF%BC%91", 400, "invalid_parameter"),  # a full-width digit
    ("/api/v1/log/entries?start=99999999999999999999", 400, "invalid_parameter"),
    ("/api/v1/log/entries?start=2&end=1", 400, "invalid_range"),
    ("/api/v1/log/entries?start=2&end=2", 400, "invalid_range"),
    ("/api/v1/log/entries?start=3", 400, "beyond_tree"),
    ("/api/v1/log/tree-heads?after=-3", 400, "invalid_parameter"),
    ("/api/v1/log/proof/consistency", 400, "missing_parameter"),
    ("/api/v1/log/proof/consistency?first=0&second=2", 400, "invalid_parameter"),
    ("/api/v1/log/proof/consistency?first=-1&second=2", 400, "invalid_parameter"),
    ("/api/v1/log/proof/consistency?first=x&second=2", 400, "invalid_parameter"),
    ("/api/v1/log/proof/consistency?first=2&second=1", 400, "invalid_range"),
    ("/api/v1/log/proof/consistency?first=1&second=4", 400, "beyond_tree"),
    ("/api/v1/log/proof/consistency?first=3&second=3", 400, "beyond_tree"),
    ("/api/v1/log/proof/consistency?first=1&second=9223372036854775807", 400, "beyond_tree"),
    ("/api/v1/log/proof/inclusion?certificate=CFC-2026-0000-0000", 404, "unknown_certificate"),
    ("/api/v1/log/proof/inclusion?certificate=", 404, "unknown_certificate"),
    ("/api/v1/log/proof/inclusion?certificate=%E2%80%AE" + "x" * 500, 404, "unknown_certificate"),
]


@pytest.mark.parametrize(("path", "status", "code"), BAD)
def test_bad_input_is_a_clear_4xx_error_object(stocked, app, client, path, status, code):
    steel, _ = stocked
    retire(steel)
    retire(steel)
    before = db.session.scalar(select(func.count()).select_from(LogEntry))
    response = client.get(path)
    assert response.status_code == status, response.get_data(as_text=True)
    error = response.get_json()["error"]
    assert error["code"] == code and error["message"]
    assert db.session.scalar(select(func.count()).select_from(LogEntry)) == before


def test_inclusion_refusals_for_sizes_and_unsigned_entries(stocked, app, client):
    steel, _ = stocked
    first = retire(steel)
    response = client.get(f"/api/v1/log/proof/inclusion?certificate={first.number}")
    assert response.status_code == 409 and response.get_json()["error"]["code"] == "not_yet_signed"
    assert response.headers["Retry-After"]
    assert "0" in response.get_json()["error"]["message"]
    second = retire(steel)
    sign()
    for query, code in (
        (f"certificate={second.number}&tree_size=1", "leaf_not_in_tree"),
        (f"certificate={second.number}&tree_size=0", "invalid_parameter"),
        (f"certificate={second.number}&tree_size=-2", "invalid_parameter"),
        (f"certificate={second.number}&tree_size=3", "beyond_tree"),
        (f"certificate={first.number}&tree_size=1e3", "invalid_parameter"),
    ):
        response = client.get(f"/api/v1/log/proof/inclusion?{query}")
        assert response.status_code == 400, (query, response.get_json())
        assert response.get_json()["error"]["code"] == code
    # A number typed in lower case is found.
    assert client.get(f"/api/v1/log/proof/inclusion?certificate={second.number.lower()}").status_code == 200


def test_unknown_numbers_are_throttled_like_other_look_ups(stocked, app, client):
    from portal.certificates.lookup import LOOKUP_FAILURE_LIMIT

    codes = [
        client.get(f"/api/v1/log/proof/inclusion?certificate=CFC-2026-AAAA-{i:04d}").status_code
        for i in range(LOOKUP_FAILURE_LIMIT + 1)
    ]
    assert codes[:-1] == [404] * LOOKUP_FAILURE_LIMIT and codes[-1] == 429


def run_verify(app):
    return app.test_cli_runner().invoke(args=["log", "verify"])


def test_flask_log_verify_after_retiring_and_revoking(stocked, app):
    steel, _ = stocked
    made = [retire(steel) for _ in range(9)]
    sign()
    revoke(made[4])
    sign()
    result = run_verify(app)
    assert result.exit_code == 0, result.output
    assert "checked 10 leaves, 2 signed tree heads, 9 certificates" in result.output


def _without_triggers(statement, params=None):
    """Run ``statement`` with the append-only triggers out of the way (SQLite: dropped)."""
    for row in db.session.execute(
        text("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name LIKE 'log_%'")
    ).all():
        db.session.execute(text(f"DROP TRIGGER {row.name}"))
    db.session.execute(text(statement), params or {})
    db.session.commit()


@pytest.mark.parametrize(
    ("tamper", "found"),
    [
        (
            "UPDATE log_entries SET leaf_input = :data WHERE leaf_index = 3",
            "leaf 3: its stored hashes differ",
        ),
        ("DELETE FROM log_entries WHERE leaf_index = 2", "leaf 2 is missing"),
        ("DELETE FROM log_nodes WHERE leaf_index = 5", "leaf 5: its stored hashes differ"),
        ("UPDATE log_tree_heads SET timestamp = timestamp + 1", "the signature does not verify"),
    ],
)
def test_flask_log_verify_catches_a_rewritten_or_deleted_leaf(stocked, app, tamper, found):
    steel, _ = stocked
    made = [retire(steel) for _ in range(7)]
    sign()
    data = db.session.scalar(select(LogEntry.leaf_input).where(LogEntry.leaf_index == 3))
    _without_triggers(tamper, {"data": data.replace(made[3].number.encode(), made[4].number.encode())})
    result = run_verify(app)
    assert result.exit_code == 1
    assert found in result.output


def test_the_log_tables_are_append_only(stocked, app):
    from sqlalchemy.exc import DBAPIError

    steel, _ = stocked
    retire(steel)
    sign()
    for statement in (
        "UPDATE log_entries SET kind = 'revocation'",
        "DELETE FROM log_entries",
        "UPDATE log_nodes SET hashes = x'00'",
        "DELETE FROM log_tree_heads",
    ):
        with pytest.raises(DBAPIError):
            db.session.execute(text(statement))
        db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(TreeHead)) == 1
    assert db.session.scalar(select(func.count()).select_from(LogNode)) == 1


def test_backfill_logs_certificates_from_before_the_log_once(stocked, app):
    steel, _ = stocked
    made = [retire(steel) for _ in range(3)]
    revoke(made[0])
    _without_triggers("DELETE FROM log_entries")
    db.session.execute(text("DELETE FROM log_nodes"))
    db.session.execute(text("DELETE FROM log_state"))
    db.session.commit()
    assert transparency.backfill() == 4
    db.session.commit()
    assert transparency.backfill() == 0
    kinds = list(
        db.session.execute(
            select(LogEntry.kind, LogEntry.certificate_number).order_by(LogEntry.leaf_index)
        ).all()
    )
    assert kinds[:3] == [("issuance", c.number) for c in made] and tuple(kinds[3]) == (
        "revocation",
        made[0].number,
    )
    assert transparency.verify_log().ok


def test_any_package_records_an_event_in_its_transaction(stocked, app, client):
    """A statement of its own, signed by the portal, appended with the transaction; the log's
    verification then also asks that such a confirmation be one the registry hand-off recorded
    (``tests/registry`` logs real ones)."""
    steel, _ = stocked
    made = retire(steel)
    statement = (
        f'{{"number":"{made.number}","reference":"CCER-2026-0001","type":"registry_confirmation","v":1}}'
    )
    pending = transparency.record("registry_confirmation", statement, made.number)
    assert pending.certificate_number == made.number
    db.session.commit()
    entries = client.get("/api/v1/log/entries?start=1").get_json()["entries"]
    assert [(e["leaf_index"], e["kind"], e["certificate"]) for e in entries] == [
        (1, "registry_confirmation", made.number)
    ]
    recorded = leaf(entries[0])
    assert recorded["statement"] == statement
    assert verifier.signed(keys(client), statement, recorded["signature"])
    report = transparency.verify_log()
    assert report.problems == [
        f"leaf 1: no such registry confirmation of certificate {made.number}",
        f"certificate {made.number}: 1 registry confirmation(s) logged, 0 recorded",
    ]
    with pytest.raises(ValueError):
        transparency.record("deletion", statement, made.number)
