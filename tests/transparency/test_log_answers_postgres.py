"""The log's proofs kept once found, and its one-statement append (PostgreSQL): a kept answer
never hides a new signed tree head or a revocation, and a refusal is never kept."""

import pytest

import portal_verify as verifier
from portal.extensions import db
from portal.transparency import proofs
from portal.transparency import services as transparency
from tests.sql import statements_of
from tests.transparency.helpers import b64, retire, revoke, sign

pytestmark = pytest.mark.postgres


class Reads:
    """Queries the proofs send on the log's reader (each through ``core.database.raw_rows``,
    on the connection the thread keeps)."""

    def __init__(self):
        self.count = 0
        self._raw_rows = proofs.raw_rows
        proofs.raw_rows = self.seen

    def seen(self, engine, sql, params):
        assert engine is proofs._reader()
        self.count += 1
        return self._raw_rows(engine, sql, params)

    def close(self):
        proofs.raw_rows = self._raw_rows


def kinds(body):
    return [e["kind"] for e in body["entries"]]


def test_a_new_head_and_a_revocation_show_at_once_in_the_latest_answer(pg_stocked, pg_app):
    steel, _ = pg_stocked
    client = pg_app.test_client()
    made = [retire(steel) for _ in range(3)]
    first = sign()
    latest = f"/api/v1/log/proof/inclusion?certificate={made[1].number}"
    fixed = f"{latest}&tree_size=3"
    before = client.get(latest)
    assert before.status_code == 200 and kinds(before.get_json()) == ["issuance"]
    assert before.get_json()["tree_head"]["tree_size"] == 3
    assert before.headers["Cache-Control"] == "no-cache" and before.headers["ETag"]
    assert client.get(fixed).get_json()["entries"] == before.get_json()["entries"]

    revoke(made[1])
    # Logged, not yet under a signed head: the latest answer is still the head of size 3.
    assert client.get(latest).get_json() == before.get_json()
    assert client.get(latest, headers={"If-None-Match": before.headers["ETag"]}).status_code == 304

    second = sign()
    after = client.get(latest)
    body = after.get_json()
    assert after.status_code == 200 and after.headers["ETag"] != before.headers["ETag"]
    assert kinds(body) == ["issuance", "revocation"] and body["tree_head"]["tree_size"] == 4
    for entry in body["entries"]:
        path = [b64(p) for p in entry["audit_path"]]
        assert verifier.verify_inclusion(
            verifier.leaf_hash(b64(entry["leaf_input"])), entry["leaf_index"], 4, path, second.root_hash
        )
    # The answer for the size the client named does not change, and says it never will.
    again = client.get(fixed)
    assert kinds(again.get_json()) == ["issuance"] and again.get_json() == client.get(fixed).get_json()
    assert again.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert first.tree_size == 3


def test_an_answer_is_read_once_and_a_refusal_is_never_kept(pg_stocked, pg_app):
    steel, _ = pg_stocked
    client = pg_app.test_client()
    made = [retire(steel) for _ in range(5)]
    head = sign()
    reads = Reads()
    try:
        for path in (
            f"/api/v1/log/proof/inclusion?certificate={made[3].number}&tree_size=5",
            "/api/v1/log/proof/consistency?first=2&second=5",
        ):
            answers = [client.get(path) for _ in range(3)]
            assert [a.status_code for a in answers] == [200] * 3
            assert answers[0].get_json() == answers[1].get_json() == answers[2].get_json()
        assert reads.count == 2  # one query each, then kept

        # Beyond the tree: refused, and asked again once the tree has grown, answered.
        beyond = "/api/v1/log/proof/consistency?first=3&second=7"
        inclusion = f"/api/v1/log/proof/inclusion?certificate={made[0].number}&tree_size=7"
        for path in (beyond, inclusion):
            refused = client.get(path)
            assert 400 <= refused.status_code < 500 and refused.get_json()["error"]["code"] == "beyond_tree"
        retire(steel)
        retire(steel)
        later = sign()
        body = client.get(beyond).get_json()
        assert verifier.verify_consistency(3, 7, _root(3), later.root_hash, [b64(p) for p in body["proof"]])
        entry = client.get(inclusion).get_json()["entries"][0]
        assert verifier.verify_inclusion(
            verifier.leaf_hash(b64(entry["leaf_input"])),
            entry["leaf_index"],
            7,
            [b64(p) for p in entry["audit_path"]],
            later.root_hash,
        )
    finally:
        reads.close()
    assert head.tree_size == 5 and transparency.verify_log().ok


def _root(size):
    from portal.transparency import merkle

    hashes = proofs.node_hashes(set(merkle.pieces(0, size)), size)
    return merkle.range_hash(0, size, hashes.__getitem__)


def test_one_leaf_is_appended_in_one_statement(pg_stocked, pg_app):
    """The lock of the log's state, the leaf, its hashes and the new state: one round trip."""
    steel, _ = pg_stocked
    retire(steel)  # the log's state row exists from the first append on
    from portal.buyers import services as buyers
    from portal.certificates import services as certificates
    from portal.certificates.models import Source

    certificates.retire_into_certificate(
        buyers.holding_account(steel),
        steel,
        1,
        beneficiary="一条语句",
        purpose="voluntary",
        source=Source.HOLDING,
        actor="test",
    )
    sent = statements_of(db.session.commit)
    logged = [s for s in sent if "log_" in s]
    assert len(logged) == 1 and "FOR UPDATE" in logged[0] and "INSERT INTO log_nodes" in logged[0]
    sign()
    report = transparency.verify_log()
    assert report.ok and report.leaves == 2
