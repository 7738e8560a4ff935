"""Catalog pages and API under load: requests per second and p50 / p95 latency, each as a ratio
to /healthz measured in the same run.

Serves the portal with gunicorn (2 sync workers) against a database holding the demo data set
(``demo load --scale 100`` on PostgreSQL), and loads it with ``wrk`` (Debian package).

    python bench/catalog_bench.py --url postgresql+psycopg://…/bench [--load-scale 100] [--seconds 10]

``--load-scale N`` first resets the database and loads the demo data set at that scale.
Also prints the SQL statements per page, with 5 and with 100 rows shown (no N+1: they must match).
"""

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from common import load_demo, make_app, serve, wrk


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
        print(f"demo load --scale {args.load_scale}: {load_demo(args.url, args.load_scale):.1f} s")

    for label, count in query_counts(args.url).items():
        print(f"SQL statements for {label}: {count}")

    with serve(args.url, Path(tempfile.mkdtemp(prefix="catalogbench-"))) as base:
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


if __name__ == "__main__":
    main()
