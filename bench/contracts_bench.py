"""Offtake contracts on PostgreSQL, each figure with its baseline from the same run.

1. Reservation on issuance: ``--contracts`` (1,000) active contracts that want vintage-2026 CCER
   credits of one county, none in stock, four tranches of 100 t each. A new vintage-2026 batch is recorded
   through the catalog (``record_issuance``, which reserves from it for the contracts, soonest
   due first, in the same transaction). Its time is compared with recording the same batch
   before those contracts existed (the demo's own contracts are there both times).
2. The supply-planning view at the loaded scale: ``contracts.plan()`` in process, and the page
   ``/staff/contracts/planning`` through the WSGI app signed in as the auditor, against
   ``/healthz`` through the same client.

    python bench/contracts_bench.py --url postgresql+psycopg://postgres@127.0.0.1:5432/bench \
        [--load-scale 100] [--contracts 1000]
"""

import argparse
import statistics
import time
from datetime import date, timedelta
from decimal import Decimal

from common import load_demo, make_app
from sqlalchemy import func, select, text


def _project_without(db, year):
    from portal.catalog.models import Project
    from portal.ledger.models import Batch

    taken = select(Batch.project_id).where(Batch.vintage_start >= date(year, 1, 1))
    free = db.session.scalars(
        select(Project)
        .where(Project.standard == "CCER", Project.type == "forestry", Project.id.not_in(taken))
        .order_by(Project.id)
    ).all()
    # Two projects in different counties: the contracts want the second one's county only.
    first = free[0]
    return first, next(p for p in free if p.region_id != first.region_id)


def _issue(db, project, quantity, month):
    from portal.catalog import services as catalog

    started = time.perf_counter()
    batch = catalog.record_issuance(
        project,
        vintage_start=date(2026, 1, 1),
        vintage_end=date(2026, month, 28),
        quantity=quantity,
        buffer_quantity=0,
        issued_on=date(2026, 11, 1),
        registry_reference=f"BENCH-{project.code}-{month}",
        registry_serial_start="",
        registry_serial_end="",
        price_per_t=Decimal("66.00"),
        actor="bench",
    )
    db.session.commit()
    return time.perf_counter() - started, batch


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--load-scale", type=int, default=0)
    parser.add_argument("--contracts", type=int, default=1000)
    parser.add_argument("--quantity", type=int, default=250_000, help="tonnes in the new batch")
    args = parser.parse_args()
    if args.load_scale:
        print(f"demo load --scale {args.load_scale}: {load_demo(args.url, args.load_scale):.1f} s")

    app = make_app(args.url)
    from portal.buyers.models import Organisation, User
    from portal.contracts import services as contracts
    from portal.contracts.models import Contract
    from portal.extensions import db

    with app.app_context():
        counts = db.session.execute(
            text("SELECT (SELECT count(*) FROM batches), (SELECT count(*) FROM certificates)")
        ).one()
        active = db.session.scalar(
            select(func.count()).select_from(Contract).where(Contract.status == "active")
        )
        print(f"database: {counts[0]} batches, {counts[1]} certificates, {active} active contracts")
        baseline_project, project = _project_without(db, 2026)

        base_s, _ = _issue(db, baseline_project, args.quantity, 6)
        print(f"baseline: recording a {args.quantity} t batch that no contract wants: {base_s * 1000:.0f} ms")

        owner = db.session.scalar(select(User).filter_by(role="sales"))
        orgs = db.session.scalars(select(Organisation).order_by(Organisation.id)).all()
        today = contracts.beijing_today()
        started = time.perf_counter()
        numbers = []
        for n in range(args.contracts):
            terms = {
                "title": f"bench {n}",
                "start": today.isoformat(),
                "end": (today + timedelta(days=900)).isoformat(),
                "price_per_t": "70.00",
                "standard": "CCER",
                "vintage_from": 2026,
                "counties": [project.region.code],
                "tranches": [
                    {
                        "due": (today + timedelta(days=30 + 7 * (n % 50) + 150 * q)).isoformat(),
                        "quantity": 100,
                    }
                    for q in range(4)
                ],
            }
            contract, _ = contracts.create_draft(orgs[n % len(orgs)], terms, owner=owner, actor="bench")
            contracts.sign(contract, actor="bench")
            db.session.commit()
            numbers.append(contract.number)
        setup_s = time.perf_counter() - started
        print(f"{args.contracts} contracts drafted and signed (nothing to reserve): {setup_s:.1f} s")

        issue_s, batch = _issue(db, project, args.quantity, 6)
        reserved = db.session.scalar(
            text(
                "SELECT coalesce(sum(b.serial_end - b.serial_start + 1), 0) FROM blocks b "
                "JOIN accounts a ON a.id = b.account_id WHERE a.kind = 'reserve' AND b.batch_id = :id"
            ),
            {"id": batch.id},
        )
        served = db.session.scalar(
            text(
                "SELECT count(DISTINCT a.id) FROM blocks b JOIN accounts a ON a.id = b.account_id "
                "WHERE a.kind = 'reserve' AND b.batch_id = :id"
            ),
            {"id": batch.id},
        )
        print(
            f"recording the batch with {args.contracts} active contracts wanting it: {issue_s * 1000:.0f} ms "
            f"(×{issue_s / base_s:.1f} the baseline); {reserved} t reserved for {served} contracts "
            f"({issue_s / max(served, 1) * 1000:.2f} ms per contract served)"
        )

        runs = []
        for _ in range(10):
            started = time.perf_counter()
            plan = contracts.plan()
            runs.append(time.perf_counter() - started)
            db.session.rollback()
        print(
            f"contracts.plan(): median {statistics.median(runs) * 1000:.1f} ms over {plan.active_contracts} "
            f"active contracts, {len(plan.years)} years"
        )

    client = app.test_client()
    with app.app_context():
        from portal.demo.services import DEMO_PASSWORD

        auditor = db.session.scalar(select(User).filter_by(role="auditor"))
    app.config["WTF_CSRF_ENABLED"] = False
    client.post("/login", data={"email": auditor.email, "password": DEMO_PASSWORD})

    def timed(path, n=20):
        out = []
        for _ in range(n):
            started = time.perf_counter()
            response = client.get(path)
            out.append(time.perf_counter() - started)
            assert response.status_code == 200, (path, response.status_code)
        return statistics.median(out)

    health = timed("/healthz", 50)
    try:
        page = timed("/staff/contracts/planning")
        print(
            f"/staff/contracts/planning: median {page * 1000:.1f} ms, /healthz {health * 1000:.2f} ms "
            f"(the page costs ×{page / health:.0f} a /healthz)"
        )
    except AssertionError as exc:
        print(f"planning page not measured: {exc}")


if __name__ == "__main__":
    main()
