"""Where the time goes on the paths where money moves: one client, in process, on PostgreSQL.

For a ledger movement (``movement``: a transfer of a few tonnes from inventory to a holding, as
``ledger_bench`` makes them) and for an order placed and then fulfilled (``fulfilment``: as
``orders_bench``'s hold → retire), prints the SQL statements one operation sends, then the
operations per second of one client with the CPU milliseconds spent in the application per
operation (the rest of the wall time is the database and the network), and, with
``--profile``, pyinstrument's profile of 200 operations.

    python bench/profile_paths.py [--url postgresql+psycopg://…/bench] [--path movement|fulfilment] [--profile]

The database at ``--url`` (default ``PORTAL_BENCH_POSTGRES_URL``) is reset.
"""

import argparse
import os
import time

from common import PG_DEFAULT, fresh_database, make_app
from sqlalchemy import event


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default=os.environ.get("PORTAL_BENCH_POSTGRES_URL", PG_DEFAULT))
    parser.add_argument("--path", choices=("movement", "fulfilment"), default="movement")
    parser.add_argument("--operations", type=int, default=200)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    url = fresh_database("postgresql", args.url)
    if args.path == "movement":
        import ledger_bench

        ledger_bench.setup(url)
        operation, baseline = ledger_bench.move_spread, ledger_bench.baseline_write
    else:
        import orders_bench

        orders_bench.setup(url)
        operation, baseline = orders_bench.hold_and_retire, orders_bench.baseline_write
        if args.operations > 100:
            args.operations = 100
    app = make_app(url)
    with app.app_context():
        from portal.extensions import db

        sent = []

        def record(conn, cursor, statement, parameters, context, executemany):
            sent.append(" ".join(statement.split())[:110])

        for n in range(5):  # warm: accounts, signing key, prepared statements
            operation(0, n)
        event.listen(db.engine, "before_cursor_execute", record)
        operation(0, 99)
        event.remove(db.engine, "before_cursor_execute", record)
        print(f"{args.path}: {len(sent)} statements (and a COMMIT per transaction)")
        for statement in sent:
            print("  ", statement)
        for name, func in ((args.path, operation), ("smallest write transaction", baseline)):
            wall, cpu = time.perf_counter(), time.process_time()
            for n in range(args.operations):
                func(0, 1000 + n)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            print(
                f"{name}: {args.operations / wall:.0f}/s with one client; per operation {wall / args.operations * 1000:.2f} ms"
                f" wall, of which {cpu / args.operations * 1000:.2f} ms CPU in the application"
            )
        if args.profile:
            from pyinstrument import Profiler

            profiler = Profiler(interval=0.0005)
            profiler.start()
            for n in range(args.operations):
                operation(0, 5000 + n)
            profiler.stop()
            print(profiler.output_text(unicode=False, color=False))


if __name__ == "__main__":
    main()
