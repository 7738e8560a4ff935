"""``/metrics`` under gunicorn with several workers: whichever worker answers a scrape, the
request counts are every worker's together (multiprocess mode, as ``scripts/serve`` runs it)."""

import os
import re
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
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


def _workers(folder: Path) -> set[str]:
    """The processes that have counted something (their files in the multiprocess folder)."""
    return {re.sub(r"\D", "", p.name) for p in folder.glob("counter_*.db")}


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
        # Requests 8 at a time until both workers have answered some (one worker can take every
        # request that comes one by one, on a busy machine): each writes its own file.
        sent, deadline = 1, time.monotonic() + 60
        with ThreadPoolExecutor(8) as pool:
            while len(_workers(folder)) < 2 and time.monotonic() < deadline:
                list(
                    pool.map(lambda _: urllib.request.urlopen(base + "/healthz", timeout=5).read(), range(8))
                )
                sent += 8
        assert len(_workers(folder)) >= 2
        scrapes = [urllib.request.urlopen(base + "/metrics", timeout=5).read().decode() for _ in range(6)]
        assert {_count(body) for body in scrapes} == {float(sent)}
    finally:
        stop(server)
