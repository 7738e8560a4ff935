"""Many buyers at once: the last tonne is sold once, on PostgreSQL and on SQLite."""

import random
import threading
from concurrent.futures import ThreadPoolExecutor

from portal.extensions import db
from portal.ledger import services as ledger
from portal.ledger.errors import CapacityExceeded, InsufficientCredits
from portal.ledger.models import AccountKind
from portal.ledger.verify import verify_ledger
from tests import factories

WORKERS = 24


def _race(app, quantity_each, workers):
    barrier = threading.Barrier(workers)

    def worker(i):
        with app.app_context():
            try:
                holding = ledger.open_account(AccountKind.HOLDING, f"ORG-{i:02d}")
                db.session.commit()
                barrier.wait(timeout=60)
                try:
                    ledger.transfer(
                        quantity_each,
                        source=ledger.system_account(AccountKind.INVENTORY),
                        destination=holding,
                        reference=f"race:{i}",
                    )
                    db.session.commit()
                    return "ok"
                except InsufficientCredits:
                    db.session.rollback()
                    return "short"
            finally:
                db.session.remove()

    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(worker, range(workers)))


def test_twenty_four_buyers_race_for_one_hundred_tonnes(any_app):
    batch = factories.batch(quantity=100)
    db.session.commit()

    outcomes = _race(any_app, 10, WORKERS)

    assert outcomes.count("ok") == 10
    assert outcomes.count("short") == WORKERS - 10
    db.session.expire_all()
    serials = []
    for i in range(WORKERS):
        holding = ledger.find_account(AccountKind.HOLDING, f"ORG-{i:02d}")
        held = ledger.blocks_of(holding)
        assert ledger.balance(holding) in (0, 10)
        serials += [n for block in held for n in range(block.serial_start, block.serial_end + 1)]
    assert sorted(serials) == list(range(1, 101))  # every serial sold, none twice
    assert ledger.balance(ledger.system_account(AccountKind.INVENTORY), batch) == 0
    report = verify_ledger()
    assert report.ok, report.problems


def test_mixed_concurrent_workload_keeps_every_invariant(any_app):
    """Holds, releases, deliveries and retirements across batches from 8 threads at once."""
    for vintage in (2021, 2022, 2023):
        factories.batch(quantity=300, vintage=vintage)
    db.session.commit()
    total = 900

    def worker(i):
        rng = random.Random(i)
        errors = 0
        with app.app_context():
            try:
                inventory = ledger.system_account(AccountKind.INVENTORY)
                hold = ledger.open_account(AccountKind.HOLD, f"order-{i}", capacity=60)
                holding = ledger.open_account(AccountKind.HOLDING, f"ORG-{i}")
                db.session.commit()
                for _ in range(25):
                    op = rng.choice(("hold", "release", "pay", "retire"))
                    q = rng.randint(1, 40)
                    try:
                        if op == "hold":
                            ledger.transfer(q, source=inventory, destination=hold)
                        elif op == "release":
                            ledger.transfer(q, source=hold, destination=inventory)
                        elif op == "pay":
                            ledger.transfer(q, source=hold, destination=holding)
                        else:
                            ledger.retire(q, source=holding)
                        db.session.commit()
                    except (InsufficientCredits, CapacityExceeded):
                        db.session.rollback()
                        errors += 1
            finally:
                db.session.remove()
        return errors

    app = any_app
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(worker, range(8)))  # any unexpected error (a deadlock, say) is raised here

    db.session.expire_all()
    report = verify_ledger()
    assert report.ok, report.problems
    assert report.serials == total
