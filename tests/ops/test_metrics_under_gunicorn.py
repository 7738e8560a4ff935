"""``/metrics`` under gunicorn with several workers: whichever worker answers a scrape, the
request counts are every worker's together (multiprocess mode, as ``scripts/serve`` runs it)."""

import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.payments import free_port, stop

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _count(body: str) -> float:
    total = 0.0
    for line in body.splitlines():
        if line.startswith("portal_http_requests_total{") and 'endpoint="/healthz"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_counts_are_summed_over_the_workers(tmp_path):
    folder = tmp_path / "metrics"
    folder.mkdir()
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")},
        "PORTAL_INSTANCE_PATH": str(tmp_path),
        "PORTAL_DATABASE_URL": f"sqlite:///{tmp_path}/portal.db",
        "PORTAL_SECRET_KEY": "test",
        "PORTAL_LOG_LEVEL": "WARNING",
        "PORTAL_JOBS_URL": "memory:",
        "PROMETHEUS_MULTIPROC_DIR": str(folder),
        "FLASK_APP": "portal",
    }
    subprocess.run([str(BIN / "flask"), "db", "upgrade"], env=env, cwd=ROOT, check=True, capture_output=True)
    server = subprocess.Popen(
        [
            str(BIN / "gunicorn"),
            "--workers",
            "2",
            "--bind",
            f"127.0.0.1:{port}",
            "--config",
            "python:portal.ops.gunicorn_conf",
            "portal:create_app()",
        ],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:  # a long timeout: a probe given up would still be answered, and counted, later
                urllib.request.urlopen(base + "/healthz", timeout=60).read()
                break
            except OSError:
                time.sleep(0.1)
        for _ in range(59):  # 60 with the one above, spread over the workers
            urllib.request.urlopen(base + "/healthz", timeout=5).read()
        scrapes = [urllib.request.urlopen(base + "/metrics", timeout=5).read().decode() for _ in range(6)]
        assert {_count(body) for body in scrapes} == {60.0}
        # Each worker wrote its own file: the counts really came from several processes.
        assert len({re.sub(r"\D", "", p.name) for p in folder.glob("counter_*.db")}) >= 2
    finally:
        stop(server)
