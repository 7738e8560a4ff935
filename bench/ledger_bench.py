"""Ledger movements per second, SQLite and PostgreSQL, 1 and 8 concurrent clients.

Each figure is also given as a ratio to a baseline measured in the same run on the same
database: the smallest write transaction the portal can make (one UPDATE of one row and a
commit, through the same session machinery). A movement is: lock, read the blocks, split one,
move it, merge neighbours, append a journal entry, commit.

Scenarios:
  hot     every client takes from the shared inventory, oldest vintage first: all contend for
          the same batch (the worst case: the lock serialises them, as it must)
  spread  each client takes from its own batch (buyers choosing different batches)

    python bench/ledger_bench.py [--seconds 5] [--backends sqlite,postgresql]
"""

import argparse
import json
import random
from datetime import date

from common import fresh_database, make_app, rate
from sqlalchemy import text

BATCHES = 16
QUANTITY = 2_000_000


def setup(url):
    from portal.catalog.models import Project, Region
    from portal.extensions import db
    from portal.ledger import services as ledger
    from portal.ledger.models import AccountKind, Batch

    app = make_app(url)
    with app.app_context():
        region = Region(
            code="aohan", name_zh="敖汉旗", name_en="Aohan Banner", pinyin="Aohan Qi", kind="banner"
        )
        project = Project(
            code="BENCH",
            name_zh="基准项目",
            name_en="Bench project",
            standard="CCER",
            methodology="CCER-14-001-V01",
            type="forestry",
            region=region,
            area_ha=1000,
            crediting_start=date(2021, 1, 1),
            crediting_end=date(2050, 12, 31),
        )
        db.session.add(project)
        db.session.flush()
        for i in range(BATCHES):
            batch = Batch(
                code=f"BENCH-{i:02d}",
                project_id=project.id,
                vintage_start=date(2021, 1, 1),
                vintage_end=date(2021, 12, 31),
                quantity=QUANTITY,
                issued_on=date(2022, 6, 1),
            )
            ledger.issue_batch(batch)
        for i in range(16):
            ledger.open_account(AccountKind.HOLDING, f"BENCH-ORG-{i}")
        db.session.execute(text("CREATE TABLE bench_noop (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)"))
        for i in range(16):
            db.session.execute(text("INSERT INTO bench_noop (id, n) VALUES (:i, 0)"), {"i": i})
        db.session.commit()
        db.engine.dispose()


def baseline_write(index, n):
    from portal.extensions import db

    db.session.execute(text("UPDATE bench_noop SET n = n + 1 WHERE id = :i"), {"i": index})
    db.session.commit()


def _move(index, n, batch_codes):
    from portal.extensions import db
    from portal.ledger import services as ledger
    from portal.ledger.models import AccountKind

    rng = random.Random(index * 1_000_003 + n)
    ledger.transfer(
        rng.randint(1, 50),
        source=ledger.system_account(AccountKind.INVENTORY),
        destination=ledger.find_account(AccountKind.HOLDING, f"BENCH-ORG-{index}"),
        batch_codes=batch_codes,
        reference="bench",
    )
    db.session.commit()


def move_hot(index, n):
    _move(index, n, None)


def move_spread(index, n):
    _move(index, n, [f"BENCH-{index % BATCHES:02d}"])


def verify(url):
    from portal.ledger.verify import verify_ledger

    app = make_app(url)
    with app.app_context():
        report = verify_ledger()
        return report.ok, report.entries


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()
    results = []
    for backend in args.backends.split(","):
        url = fresh_database(backend)
        setup(url)
        for clients in (1, 8):
            base = rate(url, baseline_write, clients, args.seconds)
            for scenario, func in (("hot", move_hot), ("spread", move_spread)):
                moves = rate(url, func, clients, args.seconds)
                row = {
                    "backend": backend,
                    "clients": clients,
                    "scenario": scenario,
                    "movements_per_s": round(moves, 1),
                    "baseline_write_tx_per_s": round(base, 1),
                    "ratio": round(moves / base, 3),
                }
                results.append(row)
                print(
                    f"{backend:10} {clients} client(s) {scenario:6}: {moves:8.1f} movements/s, "
                    f"baseline {base:8.1f} write tx/s, ratio {moves / base:.3f}",
                    flush=True,
                )
        ok, entries = verify(url)
        print(f"{backend:10} ledger verify after the run: {'OK' if ok else 'BROKEN'} ({entries} entries)")
        assert ok
    print(json.dumps(results))


if __name__ == "__main__":
    main()
