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


def _waiting_on_a_lock(pid: int) -> bool:
    from sqlalchemy import text

    with db.engine.connect() as connection:
        return bool(
            connection.scalar(
                text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid AND wait_event_type = 'Lock'"),
                {"pid": pid},
            )
        )


def test_a_movement_sent_with_its_lock_reads_what_the_lock_protects(pg_app):
    """On PostgreSQL a movement's statement goes with the lock of its batch, in one round trip,
    and waits behind it: while one buyer holds the batch (60 of its 100 t moved, not yet
    committed), another's movement of 30 t waits, then takes serials 61–90 (what the first left),
    and one of 50 t is refused with the 40 t left. A statement read with what was committed
    before the lock was granted would have taken serials the first buyer had just bought."""
    import time

    from sqlalchemy import text

    app = pg_app
    factories.batch(quantity=100)
    db.session.commit()
    first_moved, go_on = threading.Event(), threading.Event()

    def first():
        with app.app_context():
            try:
                holding = ledger.open_account(AccountKind.HOLDING, "FIRST")
                db.session.commit()
                ledger.transfer(60, source=ledger.system_account(AccountKind.INVENTORY), destination=holding)
                first_moved.set()
                go_on.wait(timeout=60)
                db.session.commit()
            finally:
                db.session.remove()

    def second(name, quantity, pids):
        with app.app_context():
            try:
                holding = ledger.open_account(AccountKind.HOLDING, name)
                inventory = ledger.system_account(AccountKind.INVENTORY)
                db.session.commit()
                pids.append(db.session.scalar(text("SELECT pg_backend_pid()")))
                try:
                    moved = ledger.transfer(quantity, source=inventory, destination=holding)
                except InsufficientCredits as refused:
                    db.session.rollback()
                    return ("short", refused.params["available"])
                db.session.commit()
                return [(r.serial_start, r.serial_end) for r in moved.ranges]
            finally:
                db.session.remove()

    with ThreadPoolExecutor(3) as pool:
        held = pool.submit(first)
        assert first_moved.wait(timeout=60)
        pids: list[int] = []
        after = [pool.submit(second, "SECOND", 30, pids), pool.submit(second, "THIRD", 50, pids)]
        deadline = time.monotonic() + 60
        while not (len(pids) == 2 and all(_waiting_on_a_lock(pid) for pid in pids)):
            assert time.monotonic() < deadline, "the two movements never waited for the lock"
            time.sleep(0.02)
        go_on.set()
        held.result(timeout=60)
        outcomes = sorted((f.result(timeout=60) for f in after), key=str)

    # Whichever of the two got the lock first: 30 t are serials 61-90, and 50 t never fit.
    assert [(61, 90)] in outcomes
    assert ("short", 40) in outcomes or ("short", 10) in outcomes
    db.session.expire_all()
    assert ledger.balance(ledger.find_account(AccountKind.HOLDING, "SECOND")) == 30
    assert verify_ledger().ok
