"""Time of ``ledger verify`` at a demo scale, as a ratio to reading the same rows.

The baseline reads every batch, block and journal row into Python tuples and does nothing else:
the least any full check must do. The ratio is the price of replaying and checking.

    python bench/verify_bench.py [--scale 100] [--url postgresql+psycopg://…] [--reuse]

``--reuse`` skips the (slow) load when the database already holds the demo data set.
"""

import argparse
import logging
import time

from common import PG_DEFAULT, fresh_database, make_app
from sqlalchemy import select


def read_rows():
    from portal.extensions import db
    from portal.ledger.models import Batch, Block, LedgerEntry

    rows = 0
    for query in (
        select(Batch.id, Batch.code, Batch.quantity),
        select(Block.batch_id, Block.serial_start, Block.serial_end, Block.account_id).order_by(
            Block.batch_id, Block.serial_start
        ),
        select(
            LedgerEntry.id,
            LedgerEntry.batch_id,
            LedgerEntry.kind,
            LedgerEntry.serial_start,
            LedgerEntry.serial_end,
            LedgerEntry.quantity,
            LedgerEntry.from_account_id,
            LedgerEntry.to_account_id,
        ).order_by(LedgerEntry.batch_id, LedgerEntry.id),
    ):
        rows += len(db.session.execute(query).all())
    return rows


def timed(func, repeat=3):
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        result = func()
        times.append(time.perf_counter() - started)
    return sorted(times)[len(times) // 2], result


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=int, default=100)
    parser.add_argument("--url", default=None, help="default: reset and use the PostgreSQL test database")
    parser.add_argument("--reuse", action="store_true")
    args = parser.parse_args()
    logging.disable(logging.INFO)

    url = args.url or PG_DEFAULT
    if not args.reuse:
        url = fresh_database("postgresql") if args.url is None else url
        from portal.demo import services as demo
        from portal.extensions import db

        with make_app(url).app_context():
            started = time.perf_counter()
            demo.load(args.scale)
            db.session.commit()
            print(f"demo load --scale {args.scale}: {time.perf_counter() - started:.1f} s")

    from portal.extensions import db
    from portal.ledger.verify import verify_ledger

    with make_app(url).app_context():
        base, rows = timed(read_rows)
        db.session.rollback()
        check, report = timed(verify_ledger)
        assert report.ok, report.problems[:5]
        print(f"ledger verify: {report.batches} batches, {report.blocks} blocks, {report.entries} entries")
        print(
            f"  verify {check:.3f} s; baseline (read the {rows} rows) {base:.3f} s; ratio {check / base:.2f}"
        )


if __name__ == "__main__":
    main()
