"""``portal-verify`` against the portal served over real HTTP: certificates, proofs, offline
checks, the consistency of saved tree heads, and the monitor catching a changed or removed leaf."""

import base64
import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from sqlalchemy import text
from werkzeug.serving import make_server

import portal_verify
from portal.extensions import db
from tests.transparency.helpers import retire, revoke, sign


@pytest.fixture
def served(app):
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()


def run(capsys, *argv):
    # SQLite: this thread's open transaction holds the write lock the served requests need.
    db.session.rollback()
    code = portal_verify.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def tamper(statement, params=None):
    for row in db.session.execute(
        text("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name LIKE 'log_%'")
    ).all():
        db.session.execute(text(f"DROP TRIGGER {row.name}"))
    db.session.execute(text(statement), params or {})
    db.session.commit()


def test_check_online_offline_and_since_an_earlier_head(stocked, served, capsys, tmp_path):
    steel, _ = stocked
    made = [retire(steel) for _ in range(4)]
    sign()
    saved = tmp_path / "saved"
    code, out, err = run(capsys, "check", made[1].number, "--url", served, "--save", str(saved))
    assert code == 0, err
    assert f"ok: issuance of {made[1].number} logged at index 1, included in the tree of size 4" in out
    assert {p.name for p in saved.iterdir()} == {
        "keys.json",
        "certificate.json",
        "tree-head.json",
        "inclusion.json",
    }
    code, out, err = run(capsys, "check", made[1].number, "--offline", str(saved))
    assert code == 0 and err == ""
    earlier = tmp_path / "head-4.json"
    earlier.write_text((saved / "tree-head.json").read_text())
    made += [retire(steel) for _ in range(5)]
    revoke(made[1])
    sign()
    code, out, err = run(capsys, "check", made[1].number, "--url", served, "--since", str(earlier))
    assert code == 0, err
    assert "revocation of" in out and "the tree of size 10 extends the tree of size 4" in out
    # A saved head whose root was changed: its signature no longer holds.
    forged = json.loads(earlier.read_text())
    forged["root_hash"] = base64.b64encode(bytes(32)).decode()
    earlier.write_text(json.dumps(forged))
    code, out, err = run(capsys, "check", made[1].number, "--url", served, "--since", str(earlier))
    assert (
        code == 1
        and err.count("\n") == 1
        and err.startswith("FAIL: the earlier tree head of size 4 is not signed")
    )


def test_check_explains_each_failure_in_one_line(stocked, served, capsys, tmp_path):
    steel, _ = stocked
    made = retire(steel)
    code, _out, err = run(capsys, "check", made.number, "--url", served)
    assert code == 1 and err.startswith("FAIL: ") and "404" in err and err.count("\n") == 1  # no head yet
    sign()
    code, _out, err = run(capsys, "check", "CFC-2026-0000-0000", "--url", served)
    assert code == 1 and "unknown_certificate" in err and err.count("\n") == 1
    code, _out, err = run(capsys, "check", made.number, "--url", "http://127.0.0.1:9")
    assert code == 1 and err.startswith("FAIL: cannot read") and err.count("\n") == 1
    saved = tmp_path / "saved"
    assert run(capsys, "check", made.number, "--url", served, "--save", str(saved))[0] == 0
    proof = json.loads((saved / "inclusion.json").read_text())
    proof["entries"][0]["leaf_input"] = proof["entries"][0]["leaf_input"][:-8] + "AAAAAAA="
    (saved / "inclusion.json").write_text(json.dumps(proof))
    code, _out, err = run(capsys, "check", made.number, "--offline", str(saved))
    assert code == 1 and err.startswith("FAIL: ")


def test_the_monitor_follows_the_log_and_catches_a_rewritten_leaf(stocked, served, capsys, tmp_path):
    steel, _ = stocked
    state = tmp_path / "state.json"
    made = [retire(steel) for _ in range(6)]
    sign()
    code, out, err = run(capsys, "monitor", served, "--state", str(state))
    assert code == 0, err
    assert "ok: 6 new entries" in out and json.loads(state.read_text())["tree_size"] == 6
    made += [retire(steel) for _ in range(3)]
    sign()
    made += [retire(steel) for _ in range(3)]
    revoke(made[0])
    sign()
    code, out, err = run(capsys, "monitor", served, "--state", str(state))
    assert code == 0, err
    assert "ok: 7 new entries; 2 tree head(s) checked" in out
    made += [retire(steel) for _ in range(4)]
    sign()
    kept = state.read_text()
    # A leaf rewritten in the database after the portal signed it.
    tamper(
        "UPDATE log_entries SET leaf_input = replace(leaf_input, :a, :b) WHERE leaf_index = 15",
        {"a": made[14].number.encode(), "b": made[13].number.encode()},
    )
    code, _out, err = run(capsys, "monitor", served, "--state", str(state))
    assert code == 1 and "FAIL: " in err
    assert state.read_text() == kept  # nothing accepted


def test_the_monitor_catches_a_removed_leaf(stocked, served, capsys, tmp_path):
    steel, _ = stocked
    state = tmp_path / "state.json"
    [retire(steel) for _ in range(3)]
    sign()
    assert run(capsys, "monitor", served, "--state", str(state))[0] == 0
    [retire(steel) for _ in range(3)]
    sign()
    tamper("DELETE FROM log_entries WHERE leaf_index = 4")
    code, _out, err = run(capsys, "monitor", served, "--state", str(state))
    assert code == 1 and "FAIL: log entry 4 is missing" in err


def test_the_verifier_imports_nothing_but_cryptography_and_the_standard_library():
    source = Path(portal_verify.__file__).read_text()
    imported = {
        line.split()[1].split(".")[0] for line in source.splitlines() if line.startswith(("import ", "from "))
    }
    assert imported - set(sys.stdlib_module_names) == {"cryptography"}
    # It runs as a program of its own, in a Python that has never imported the portal.
    result = subprocess.run(
        [sys.executable, "-I", portal_verify.__file__, "check", "X", "--offline", "/nonexistent"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1 and result.stderr.startswith("FAIL: cannot read /nonexistent/keys.json")
