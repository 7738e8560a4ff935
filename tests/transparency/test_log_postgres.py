"""The log under concurrency on PostgreSQL: every retirement gets its own consecutive leaf."""

import pytest
from sqlalchemy import select

import portal_verify as verifier
from portal.buyers import services as buyers
from portal.certificates import services as certificates
from portal.certificates.models import Certificate, Source
from portal.extensions import db
from portal.transparency import merkle
from portal.transparency import services as transparency
from portal.transparency.models import LogEntry
from portal.transparency.proofs import node_hashes
from tests.concurrency import race
from tests.transparency.helpers import b64, retire, revoke, sign

pytestmark = pytest.mark.postgres


def test_fifty_concurrent_retirements_give_fifty_consecutive_provable_leaves(pg_stocked, pg_app):
    steel, _ = pg_stocked
    steel_id = steel.id

    def work(i):
        from portal.buyers.models import Organisation

        org = db.session.get(Organisation, steel_id)
        certificate = certificates.retire_into_certificate(
            buyers.holding_account(org),
            org,
            1 + i % 3,
            beneficiary=f"guest {i}",
            purpose="voluntary",
            source=Source.HOLDING,
            actor="test",
        )
        db.session.commit()
        return certificate.number

    numbers = race(pg_app, 50, work)
    assert len(set(numbers)) == 50
    rows = db.session.execute(
        select(LogEntry.leaf_index, LogEntry.certificate_number).order_by(LogEntry.leaf_index)
    ).all()
    assert [r.leaf_index for r in rows] == list(range(50))
    assert sorted(r.certificate_number for r in rows) == sorted(numbers)
    head = sign()
    assert head.tree_size == 50
    client = pg_app.test_client()
    for number in numbers:
        proof = client.get(f"/api/v1/log/proof/inclusion?certificate={number}&tree_size=50").get_json()
        (entry,) = proof["entries"]
        data = b64(entry["leaf_input"])
        path = [b64(p) for p in entry["audit_path"]]
        assert verifier.verify_inclusion(
            verifier.leaf_hash(data), entry["leaf_index"], 50, path, head.root_hash
        )
    assert transparency.verify_log().ok


def test_concurrent_revocations_and_retirements_neither_deadlock_nor_lose_an_event(pg_stocked, pg_app):
    steel, _ = pg_stocked
    made = []
    for i in range(10):
        made.append(
            certificates.retire_into_certificate(
                buyers.holding_account(steel),
                steel,
                1,
                beneficiary=f"b{i}",
                purpose="voluntary",
                source=Source.HOLDING,
                actor="test",
            ).number
        )
        db.session.commit()
    steel_id = steel.id

    def work(i):
        from portal.buyers.models import Organisation

        if i % 2:
            certificate = db.session.scalar(select(Certificate).filter_by(number=made[i // 2]))
            certificates.revoke(certificate, "registry reversal", actor="test")
        else:
            org = db.session.get(Organisation, steel_id)
            certificates.retire_into_certificate(
                buyers.holding_account(org),
                org,
                1,
                beneficiary="x",
                purpose="voluntary",
                source=Source.HOLDING,
                actor="test",
            )
        db.session.commit()
        return "ok"

    assert race(pg_app, 20, work, timeout=120) == ["ok"] * 20
    sign()
    report = transparency.verify_log()
    assert report.ok, report.problems
    assert report.leaves == 10 + 10 + 10


def test_inclusion_answers_on_postgresql(pg_stocked, pg_app):
    """The one-query inclusion proof: default and explicit sizes, and its refusals."""
    steel, _ = pg_stocked
    client = pg_app.test_client()
    made = [retire(steel) for _ in range(6)]
    response = client.get(f"/api/v1/log/proof/inclusion?certificate={made[0].number}")
    assert response.status_code == 409 and response.get_json()["error"]["code"] == "not_yet_signed"
    head = sign()
    made.append(retire(steel))
    revoke(made[2])
    for number, size in [(c.number, s) for c in made[:6] for s in (None, 6)]:
        query = f"certificate={number}" + (f"&tree_size={size}" if size else "")
        proof = client.get(f"/api/v1/log/proof/inclusion?{query}").get_json()
        for entry in proof["entries"]:
            data, path = b64(entry["leaf_input"]), [b64(p) for p in entry["audit_path"]]
            assert verifier.verify_inclusion(
                verifier.leaf_hash(data), entry["leaf_index"], 6, path, head.root_hash
            )
        assert proof["entries"][0]["logged_at"].endswith("+00:00")
    seven = client.get(f"/api/v1/log/proof/inclusion?certificate={made[2].number}&tree_size=8").get_json()
    assert [e["kind"] for e in seven["entries"]] == ["issuance", "revocation"]
    for query, code in (
        (f"certificate={made[6].number}&tree_size=6", "leaf_not_in_tree"),
        (f"certificate={made[6].number}", "not_yet_signed"),
        (f"certificate={made[1].number}&tree_size=9", "beyond_tree"),
        (f"certificate={made[1].number}&tree_size=100000", "beyond_tree"),
    ):
        response = client.get(f"/api/v1/log/proof/inclusion?{query}")
        assert 400 <= response.status_code < 500 and response.get_json()["error"]["code"] == code, query
    later = sign()
    for first in range(1, 9):
        body = client.get(f"/api/v1/log/proof/consistency?first={first}").get_json()
        earlier = client.get(f"/api/v1/log/proof/inclusion?certificate={made[0].number}&tree_size={first}")
        assert earlier.status_code == 200 and body["second"] == 8
        first_root = merkle.range_hash(0, first, node_hashes(set(merkle.pieces(0, first)), first).__getitem__)
        proof = [b64(p) for p in body["proof"]]
        assert verifier.verify_consistency(first, 8, first_root, later.root_hash, proof)
    assert first_root == later.root_hash and head.tree_size == 6
    response = client.get("/api/v1/log/proof/consistency?first=3&second=9")
    assert response.status_code == 400 and response.get_json()["error"]["code"] == "beyond_tree"
    assert transparency.verify_log().ok


@pytest.mark.parametrize("kept_level", [8, 1])
def test_every_inclusion_and_consistency_proof_of_a_small_log_verifies_at_every_size(
    pg_stocked, pg_app, monkeypatch, kept_level
):
    """Every certificate's proof at every tree size, and every consistency proof between two
    sizes, against roots computed here from the leaves by RFC 9162's definition: the first answer
    for a size reads the tree's right edge, the others use it as kept (``proofs._right_edge``),
    so both ways are checked; and with the worker's kept upper nodes (``proofs.KEPT_LEVEL``: at
    1, nearly every node of a path comes from them once read)."""
    from portal.transparency import proofs

    monkeypatch.setattr(proofs, "KEPT_LEVEL", kept_level)
    steel, _ = pg_stocked
    made = [retire(steel) for _ in range(20)]
    revoke(made[4])
    made.append(retire(steel))
    sign()
    leaves = [bytes(d) for d in db.session.scalars(select(LogEntry.leaf_input).order_by(LogEntry.leaf_index))]
    hashes = [verifier.leaf_hash(d) for d in leaves]

    def root(items):
        if len(items) == 1:
            return items[0]
        k = 1 << ((len(items) - 1).bit_length() - 1)
        return verifier.node_hash(root(items[:k]), root(items[k:]))

    client = pg_app.test_client()
    for size in range(1, len(leaves) + 1):
        expected = root(hashes[:size])
        for certificate in made:
            response = client.get(
                f"/api/v1/log/proof/inclusion?certificate={certificate.number}&tree_size={size}"
            )
            if response.status_code != 200:
                assert response.get_json()["error"]["code"] == "leaf_not_in_tree", (size, certificate.number)
                continue
            for entry in response.get_json()["entries"]:
                assert entry["leaf_index"] < size
                path = [b64(p) for p in entry["audit_path"]]
                assert verifier.verify_inclusion(
                    verifier.leaf_hash(b64(entry["leaf_input"])), entry["leaf_index"], size, path, expected
                ), (size, entry["leaf_index"])
    for second in range(1, len(leaves) + 1):
        for first in range(1, second + 1):
            body = client.get(f"/api/v1/log/proof/consistency?first={first}&second={second}").get_json()
            proof = [b64(p) for p in body["proof"]]
            assert verifier.verify_consistency(
                first, second, root(hashes[:first]), root(hashes[:second]), proof
            ), (first, second)
