"""``make run`` and ``scripts/serve``: what they hand the portal. Run with stand-in programs in
place of the virtualenv's (each records its environment), so that the real Makefile and script
run, fast, without serving anything."""

import os
import stat
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

RECORDER = """#!/bin/sh
echo "$(basename "$0") PORTAL_BASE_URL=${PORTAL_BASE_URL:-}" >> "$RECORD"
# The jobs worker runs until stopped (the script stops it when gunicorn ends).
case "$*" in *"jobs worker"*) sleep 30;; esac
"""


@pytest.fixture
def fake_bin(tmp_path):
    """A BIN folder whose flask, pybabel and gunicorn only record PORTAL_BASE_URL; installed
    already (make does not reinstall)."""
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    for name in ("flask", "pybabel", "gunicorn", "python"):
        path = bin_ / name
        path.write_text(RECORDER)
        path.chmod(path.stat().st_mode | stat.S_IEXEC)
    (bin_ / ".installed").touch()
    os.utime(bin_ / ".installed", (4102444800, 4102444800))  # newer than pyproject.toml
    return bin_


def _run(fake_bin, tmp_path, *args, **env):
    record = tmp_path / "record.txt"
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PORTAL_", "STRIPE_"))}
    output = tmp_path / "output.txt"
    with output.open("w") as out:  # a file, not a pipe: the script's minute loop may outlive it a moment
        result = subprocess.run(
            ["make", "--no-print-directory", "run", f"BIN={fake_bin}", *args],
            cwd=ROOT,
            env={**clean, "RECORD": str(record), "STRIPE_API_BASE": "http://127.0.0.1:9", **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=120,
        )
    assert result.returncode == 0, output.read_text()
    return record.read_text().splitlines()


def test_links_follow_the_port_make_run_serves_on(fake_bin, tmp_path):
    """With PORT=8611 certificates, QR codes and mail pointed to 127.0.0.1:8000."""
    lines = _run(fake_bin, tmp_path, "PORT=8611")
    # The demo data is loaded (and its certificates signed) with the same address it is served on.
    assert "flask PORTAL_BASE_URL=http://127.0.0.1:8611" in lines
    assert "gunicorn PORTAL_BASE_URL=http://127.0.0.1:8611" in lines


def test_a_configured_base_url_wins(fake_bin, tmp_path):
    lines = _run(fake_bin, tmp_path, "PORT=8611", PORTAL_BASE_URL="https://tanhui.example.cn")
    assert {line for line in lines if line.startswith(("flask", "gunicorn"))} == {
        "flask PORTAL_BASE_URL=https://tanhui.example.cn",
        "gunicorn PORTAL_BASE_URL=https://tanhui.example.cn",
    }
