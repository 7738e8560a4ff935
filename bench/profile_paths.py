"""Where the time goes on the paths where money moves: one client, in process, on PostgreSQL.

For a ledger movement (``movement``: a transfer of a few tonnes from inventory to a holding, as
``ledger_bench`` makes them) and for an order placed and then fulfilled (``fulfilment``: as
``orders_bench``'s hold → retire) and for a retirement through the API (``retirement``:
``POST /api/v1/retirements`` of 1 t from a demo organisation's holding, through the test client,
as ``certificate_bench`` makes them on a scale-1 demo data set), prints the SQL statements one operation sends, then the
operations per second of one client with the CPU milliseconds spent in the application per
operation (the rest of the wall time is the database and the network) and by the whole machine
(the application, PostgreSQL, the kernel), and the bytes of write-ahead log the server wrote per
operation (exact, whatever the machine's noise: what was written, not how fast), with the log's
range for ``pg_waldump -s … -e … --stats=record`` (rows inserted, index entries, row locks).
With ``--profile``, pyinstrument's profile of 200 operations.

    python bench/profile_paths.py [--url postgresql+psycopg://…/bench] [--path movement|fulfilment|retirement] [--profile]

The database at ``--url`` (default ``PORTAL_BENCH_POSTGRES_URL``) is reset.
"""

import argparse
import contextlib
import os
import time

from common import PG_DEFAULT, fresh_database, make_app
from sqlalchemy import event


def api_retirement(url):
    """``POST /api/v1/retirements`` of 1 t through the test client, and ``GET /healthz`` as the
    baseline (both through the whole request cycle)."""
    from sqlalchemy import select

    from portal.buyers import services as buyers
    from portal.buyers.models import Organisation
    from portal.extensions import db

    app = make_app(url)
    app.config["API_RATE_LIMIT"] = 10**9  # as certificate_bench's server
    with app.app_context():
        org = db.session.scalars(select(Organisation).order_by(Organisation.id).limit(1)).one()
        _key, plaintext = buyers.create_api_key(organisation=org, label="bench", actor="bench")
        db.session.commit()
    client = app.test_client()
    headers = {"Authorization": f"Bearer {plaintext}"}
    body = {"quantity": 1, "beneficiary": "bench", "purpose": "voluntary"}

    def retire(_client, _n):
        response = client.post("/api/v1/retirements", json=body, headers=headers)
        assert response.status_code == 201, response.get_data(as_text=True)

    def healthz(_client, _n):
        assert client.get("/healthz").status_code == 200

    return app, retire, healthz


def machine_cpu() -> float:
    """Seconds of CPU the whole machine has spent, all cores (``/proc/stat``: all but idle and
    I/O wait); 0 where there is no ``/proc``."""
    try:
        with open("/proc/stat") as stat:
            ticks = [int(value) for value in stat.readline().split()[1:]]
    except OSError:
        return 0.0
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def wal_position(engine) -> str:
    """Where the server's write-ahead log is being written now (an LSN such as ``0/84808460``)."""
    with engine.connect() as connection:
        return connection.exec_driver_sql("SELECT pg_current_wal_insert_lsn()").scalar()


def wal_bytes(engine, start: str, end: str) -> int:
    """The bytes of write-ahead log between two positions: everything the server wrote between
    them, for every database on it (so measure on a server with nothing else writing)."""
    with engine.connect() as connection:
        return int(
            connection.exec_driver_sql(
                "SELECT pg_wal_lsn_diff(%(end)s, %(start)s)", {"start": start, "end": end}
            ).scalar()
        )


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default=os.environ.get("PORTAL_BENCH_POSTGRES_URL", PG_DEFAULT))
    parser.add_argument("--path", choices=("movement", "fulfilment", "retirement"), default="movement")
    parser.add_argument("--operations", type=int, default=200)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    if args.path == "retirement":
        from common import load_demo

        load_demo(args.url, 1)
        url = args.url
    else:
        url = fresh_database("postgresql", args.url)
    app = None
    if args.path == "retirement":
        app, operation, baseline = api_retirement(url)
    elif args.path == "movement":
        import ledger_bench

        ledger_bench.setup(url)
        operation, baseline = ledger_bench.move_spread, ledger_bench.baseline_write
    else:
        import orders_bench

        orders_bench.setup(url)
        operation, baseline = orders_bench.hold_and_retire, orders_bench.baseline_write
        if args.operations > 100:
            args.operations = 100
    from portal.extensions import db

    # The requests push their own application context, as in production (where the session is
    # removed after each); the other paths run in one.
    app, requests = (app, True) if app is not None else (make_app(url), False)
    with app.app_context():
        engine = db.engine
    with contextlib.nullcontext() if requests else app.app_context():
        sent = []

        def record(conn, cursor, statement, parameters, context, executemany):
            sent.append(" ".join(statement.split())[:110])

        for n in range(5):  # warm: accounts, signing key, prepared statements
            operation(0, n)
        event.listen(engine, "before_cursor_execute", record)
        operation(0, 99)
        event.remove(engine, "before_cursor_execute", record)
        print(f"{args.path}: {len(sent)} statements (and a COMMIT per transaction)")
        for statement in sent:
            print("  ", statement)
        names = (args.path, "GET /healthz" if requests else "smallest write transaction")
        for name, func in zip(names, (operation, baseline), strict=True):
            start_lsn = wal_position(engine)
            wall, cpu, machine = time.perf_counter(), time.process_time(), machine_cpu()
            for n in range(args.operations):
                func(0, 1000 + n)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            machine = machine_cpu() - machine
            end_lsn = wal_position(engine)
            print(
                f"{name}: {args.operations / wall:.0f}/s with one client; per operation {wall / args.operations * 1000:.2f} ms"
                f" wall, of which {cpu / args.operations * 1000:.2f} ms CPU in the application;"
                f" {machine / args.operations * 1000:.2f} ms CPU of the whole machine (the application,"
                " the database, the kernel)"
            )
            print(
                f"{name}: {wal_bytes(engine, start_lsn, end_lsn) / args.operations:.0f} bytes of WAL per operation"
                f" (pg_waldump -s {start_lsn} -e {end_lsn} --stats=record)"
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
