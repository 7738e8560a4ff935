"""Buying from the catalog, each figure with its baseline from the same run.

1. The project page with its buy forms, served by gunicorn (2 workers) under ``wrk -t2 -c16``,
   against ``/healthz`` in the same run (target: at least 0.3 of it): for a guest (the figure),
   and for the demo buyer signed in, whose page has a layout of its own.
2. Placing orders on PostgreSQL with 8 processes (the hold and its lines, committed; no Stripe):
   orders of 3 lines (3 batches, 1 t each, every line or none) against orders of 1 line (target:
   the 3-line order at least 0.5 of the 1-line order's rate). Each process takes its own batches
   in turn, so that the figure is the cost of the lines, not of waiting for one batch's lock.

    python bench/buying_bench.py [--url postgresql+psycopg://…/bench] [--seconds 10] [--pages-only]

It resets the schema of the database at ``--url`` (default ``PORTAL_BENCH_POSTGRES_URL``).
``--pages-only`` measures the pages and leaves the orders out.
"""

import argparse
import http.cookiejar
import os
import re
import shutil
import sys
import tempfile
import urllib.parse
import urllib.request
from pathlib import Path

from common import PG_DEFAULT, fresh_database, make_app, rate, serve, wrk

_state = None


def setup(url):
    """Demo data (scale 1): buyers, 100 listed batches."""
    from portal.demo import services as demo
    from portal.extensions import db

    app = make_app(url)
    with app.app_context():
        demo.load(1)
        db.session.commit()
        db.engine.dispose()


def signed_in_cookie(base, email="buyer@demo.local", password="demo-password-2026") -> str:
    """The Cookie header of a session signed in through the sign-in form."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    form = opener.open(base + "/login").read().decode()
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', form).group(1)
    data = urllib.parse.urlencode({"email": email, "password": password, "csrf_token": token}).encode()
    opener.open(base + "/login", data)
    if email not in opener.open(base + "/projects/AH-FOR-01").read().decode():
        sys.exit(f"could not sign in as {email}")
    return "; ".join(f"{c.name}={c.value}" for c in jar)


def _prepare():
    global _state
    from sqlalchemy import select

    from portal.buyers.models import Organisation, OrgStatus
    from portal.offsets import services as orders

    if _state is None:
        from portal.extensions import db

        organisations = [
            o.id for o in db.session.scalars(select(Organisation).filter_by(status=OrgStatus.APPROVED))
        ]
        batches = [b.code for b, _price, n in orders.batches_for_sale() if n > 1000]
        _state = organisations, batches
    return _state


def _place(index, n, lines):
    from portal.buyers.models import Organisation
    from portal.extensions import db
    from portal.offsets import services as orders

    organisations, batches = _prepare()
    organisation = db.session.get(Organisation, organisations[index % len(organisations)])
    # Worker i takes batches i, i+8, i+16 …: its own, in turn.
    mine = batches[index::8]
    chosen = [mine[(n * lines + k) % len(mine)] for k in range(lines)]
    orders.create_order(
        organisation,
        lines=[{"batch_code": code, "quantity": 1} for code in dict.fromkeys(chosen)],
        beneficiary="bench",
        purpose="voluntary",
        actor="bench",
    )
    db.session.commit()


def one_line(index, n):
    _place(index, n, 1)


def three_lines(index, n):
    _place(index, n, 3)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default=PG_DEFAULT, help="the PostgreSQL database to reset and use")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--pages-only", action="store_true", help="measure the pages, not the orders")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is needed: apt-get install wrk")
    url = fresh_database("postgresql", args.url)
    setup(url)

    with serve(url, Path(tempfile.mkdtemp(prefix="buyingbench-"))) as base:
        buyer = f'wrk.headers["Cookie"] = "{signed_in_cookie(base)}"\n'
        pages = [
            ("/healthz", "/healthz", ""),
            ("project page", "/projects/AH-FOR-01", ""),
            ("  as buyer", "/projects/AH-FOR-01", buyer),
        ]
        for _label, path, script in pages:  # warm up every worker's caches
            wrk(base + path, 1, script)
        results = {label: wrk(base + path, args.seconds, script) for label, path, script in pages}
    health = results["/healthz"][0]
    print(f"{'page':14} {'req/s':>8} {'ratio':>6} {'p50 ms':>7} {'p95 ms':>7} {'non-2xx':>7}")
    for label, (rps, p50, p95, errors) in results.items():
        print(f"{label:14} {rps:8.1f} {rps / health:6.3f} {p50:7.1f} {p95:7.1f} {errors:7d}")
    if args.pages_only:
        return

    single = rate(url, one_line, 8, args.seconds)
    triple = rate(url, three_lines, 8, args.seconds)
    print(
        f"orders placed on PostgreSQL, 8 processes: 1 line {single:.1f}/s, 3 lines {triple:.1f}/s, "
        f"ratio {triple / single:.3f}"
    )
    from portal.ledger.verify import verify_ledger

    app = make_app(url)
    with app.app_context():
        print("ledger verify after the run:", "OK" if verify_ledger().ok else "FAILED")


if __name__ == "__main__":
    if "PORTAL_BENCH_POSTGRES_URL" not in os.environ:
        os.environ["PORTAL_BENCH_POSTGRES_URL"] = PG_DEFAULT
    main()
