"""Catalog pages and API under load: requests per second and p50 / p95 latency, each as a ratio
to /healthz measured in the same run.

Serves the portal with gunicorn (2 sync workers) against a database holding the demo data set
(``demo load --scale 100`` on PostgreSQL), and loads it with ``wrk`` (Debian package).

    python bench/catalog_bench.py --url postgresql+psycopg://…/bench [--load-scale 100] [--seconds 10]

``--load-scale N`` first resets the database and loads the demo data set at that scale.
Also prints the SQL statements per page, with 5 and with 100 rows shown (no N+1: they must match).
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from common import ROOT, fresh_database, make_app

BIN = Path(sys.executable).parent
LUA = """
done = function(summary, latency, requests)
  io.write(string.format("RESULT %f %f %f %d\\n", summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, summary.errors.status))
end
"""


def wrk(url, seconds, connections=16):
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(LUA)
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "-s", f.name, url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps, p50, p95, errors = re.search(r"RESULT (\S+) (\S+) (\S+) (\d+)", out).groups()
    return float(rps), float(p50), float(p95), int(errors)


def query_counts(url):
    from sqlalchemy import event

    from portal.extensions import db

    app = make_app(url)
    counts = {}
    with app.app_context():
        client = app.test_client()
        for label, path in (
            ("/ (5 rows)", "/?per_page=5"),
            ("/ (100 rows)", "/?per_page=100"),
            ("/api/v1/batches (5)", "/api/v1/batches?per_page=5"),
            ("/api/v1/batches (100)", "/api/v1/batches?per_page=100"),
            ("project page", "/projects/AH-FOR-01"),
        ):
            statements = []
            listener = lambda *a, found=statements: found.append(1)  # noqa: E731
            event.listen(db.engine, "before_cursor_execute", listener)
            assert client.get(path).status_code == 200
            event.remove(db.engine, "before_cursor_execute", listener)
            counts[label] = len(statements)
    return counts


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--load-scale", type=int, default=0)
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is needed: apt-get install wrk")
    if args.load_scale:
        os.environ["PORTAL_BENCH_POSTGRES_URL"] = args.url
        fresh_database("postgresql")
        subprocess.run(
            [str(BIN / "flask"), "demo", "load", "--scale", str(args.load_scale)],
            check=True,
            cwd=ROOT,
            env=dict(os.environ, FLASK_APP="portal", PORTAL_DATABASE_URL=args.url),
        )

    for label, count in query_counts(args.url).items():
        print(f"SQL statements for {label}: {count}")

    port = 8765
    env = dict(
        os.environ, PORTAL_DATABASE_URL=args.url, PORTAL_SECRET_KEY="bench", PORTAL_LOG_LEVEL="WARNING"
    )
    server = subprocess.Popen(
        [str(BIN / "gunicorn"), "--workers", "2", "--bind", f"127.0.0.1:{port}", "portal:create_app()"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(base + "/healthz", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        pages = [
            ("/healthz", "/healthz"),
            ("/", "/"),
            ("filtered /", "/?standard=CCER&county=aohan&vintage=2023&min_available=1000&sort=price_asc"),
            ("/api/v1/batches", "/api/v1/batches"),
            ("project page", "/projects/AH-FOR-01"),
        ]
        for _label, path in pages:  # warm up every worker's caches
            wrk(base + path, 1)
        results = {label: wrk(base + path, args.seconds) for label, path in pages}
        health = results["/healthz"][0]
        print(f"{'page':18} {'req/s':>8} {'ratio':>6} {'p50 ms':>7} {'p95 ms':>7} {'non-2xx':>7}")
        for label, (rps, p50, p95, errors) in results.items():
            print(f"{label:18} {rps:8.1f} {rps / health:6.3f} {p50:7.1f} {p95:7.1f} {errors:7d}")
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()
