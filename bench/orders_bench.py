"""Checkout orders, each figure with its baseline from the same run.

1. End to end, against localstripe: 8 concurrent buyers each loop order (``POST /api/v1/orders``)
   → pay the PaymentIntent with the test card → wait until the signed webhook has retired the
   credits (``GET /api/v1/orders/<id>`` says ``fulfilled``). Orders per second, and the latency
   split into order, payment and webhook wait. localstripe delivers each webhook 1 s after the
   event, so the wait has a 1 s floor; the baseline is ``/healthz`` requests per second at the
   same concurrency.
2. The hold → retire path alone on PostgreSQL, 8 processes: create an order (hold) and fulfil it
   as the webhook handler does (retire, certificate), no Stripe; the baseline is the smallest
   write transaction (one-row UPDATE + commit) at the same concurrency.
3. The webhook's step alone (the issue's "fulfilment"): each of 8 processes first places its
   orders (not timed), then all fulfil theirs at once, as the webhook handler does; the same
   baseline.

    python bench/orders_bench.py [--seconds 10]   (resets the schema of PORTAL_BENCH_POSTGRES_URL)
"""

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

from common import BIN, PG_DEFAULT, free_port, fresh_database, make_app, rate, serve, wait_until_up


def _call(method, url, body=None, key=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def setup(url):
    """Demo data (scale 1) and one API key per buyer organisation."""
    from sqlalchemy import select

    from portal.buyers import services as buyers
    from portal.buyers.models import Organisation
    from portal.demo import services as demo
    from portal.extensions import db

    app = make_app(url)
    with app.app_context():
        demo.load(1)
        keys = [
            buyers.create_api_key(organisation=org, label="bench", actor="bench")[1]
            for org in db.session.scalars(select(Organisation).order_by(Organisation.id))
        ]
        db.session.commit()
        db.engine.dispose()
    return keys


def end_to_end(url, keys, seconds, buyers=8):
    workdir = Path(tempfile.mkdtemp(prefix="ordersbench-"))
    stripe_port = free_port()
    stripe_base = f"http://127.0.0.1:{stripe_port}"
    secret = "whsec_bench"
    stripe = subprocess.Popen(
        [str(BIN / "localstripe"), "--port", str(stripe_port), "--from-scratch"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    print(f"server log: {workdir / 'server.log'}")
    settings = {
        "STRIPE_API_BASE": stripe_base,
        "STRIPE_SECRET_KEY": "sk_test_bench",
        "STRIPE_WEBHOOK_SECRET": secret,
    }
    try:
        wait_until_up(f"{stripe_base}/v1/customers")
        with serve(url, workdir, threads=4, **settings) as base:
            return _end_to_end(base, stripe_base, secret, keys, seconds, buyers)
    finally:
        stripe.terminate()
        stripe.wait(10)


def _end_to_end(base, stripe_base, secret, keys, seconds, buyers):
    data = urllib.parse.urlencode({"url": f"{base}/stripe/webhook", "secret": secret}).encode()
    urllib.request.urlopen(f"{stripe_base}/_config/webhooks/portal", data=data, timeout=5).read()
    import stripe as stripe_lib

    client = stripe_lib.StripeClient("sk_test_bench", base_addresses={"api": stripe_base})

    def healthz_loop(stop, counts, i):
        while not stop.is_set():
            urllib.request.urlopen(base + "/healthz", timeout=10).read()
            counts[i] += 1

    counts = [0] * buyers
    stop = threading.Event()
    threads = [threading.Thread(target=healthz_loop, args=(stop, counts, i)) for i in range(buyers)]
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
    health = sum(counts) / seconds

    timings = []
    lock = threading.Lock()

    def buyer(i, deadline):
        key = keys[i % len(keys)]
        while time.monotonic() < deadline:
            t0 = time.monotonic()
            order = _call(
                "POST",
                base + "/api/v1/orders",
                {"quantity": 1, "beneficiary": "bench", "purpose": "voluntary"},
                key,
            )["order"]
            t1 = time.monotonic()
            intent = order["payment"]["payment_intent"]
            client.v1.payment_intents.update(intent, params={"payment_method": "pm_card_visa"})
            client.v1.payment_intents.confirm(intent)
            t2 = time.monotonic()
            while (
                _call("GET", f"{base}/api/v1/orders/{order['id']}", key=key)["order"]["status"] != "fulfilled"
            ):
                time.sleep(0.05)
            t3 = time.monotonic()
            with lock:
                timings.append((t1 - t0, t2 - t1, t3 - t2, t3 - t0))

    started = time.monotonic()
    deadline = started + seconds
    threads = [threading.Thread(target=buyer, args=(i, deadline)) for i in range(buyers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    return health, len(timings) / elapsed, timings


_orgs = None


def baseline_write(index, n):
    from sqlalchemy import text

    from portal.extensions import db

    db.session.execute(text("UPDATE catalog_revisions SET n = n + 1 WHERE id = 1"))
    db.session.commit()


def hold_and_retire(index, n):
    from portal.extensions import db
    from portal.offsets import services as orders

    orders.payment_succeeded(_place(index))
    db.session.commit()


def _place(index):
    """An order placed for the organisation ``index`` picks, committed: (its PaymentIntent's
    event object)."""
    global _orgs
    from sqlalchemy import select

    from portal.buyers.models import Organisation
    from portal.extensions import db
    from portal.offsets import services as orders

    if _orgs is None:
        _orgs = [o.id for o in db.session.scalars(select(Organisation).order_by(Organisation.id))]
    org = db.session.get(Organisation, _orgs[index % len(_orgs)])
    order, _ = orders.create_order(org, 1, beneficiary="bench", purpose="voluntary", actor="bench")
    order.payment_intent_id = f"pi_bench_{order.public_id}"
    intent = {"id": order.payment_intent_id, "amount": int(order.amount * 100), "currency": "cny"}
    db.session.commit()
    return intent


def _fulfil_placed(args):
    """Place ``count`` orders, wait for every process at ``barrier``, then fulfil them for
    ``seconds``: (fulfilled, seconds taken, whether the process ran out of orders)."""
    import common

    from portal.extensions import db
    from portal.offsets import services as orders

    index, count, seconds, barrier = args
    with common._worker_app.app_context():
        intents = [_place(index) for _ in range(count)]
        db.session.remove()
        barrier.wait()
        started = time.perf_counter()
        deadline = started + seconds
        done = 0
        for intent in intents:
            if time.perf_counter() >= deadline:
                break
            orders.payment_succeeded(intent)
            db.session.commit()
            done += 1
        taken = time.perf_counter() - started
        db.session.remove()
        return done, taken, done == len(intents)


def fulfil_only(url, seconds, workers=8, count=150):
    """Fulfilments per second of ``workers`` processes fulfilling orders placed beforehand."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    import common

    with (
        multiprocessing.Manager() as manager,
        ProcessPoolExecutor(workers, initializer=common._init_worker, initargs=(url,)) as pool,
    ):
        barrier = manager.Barrier(workers)
        results = list(pool.map(_fulfil_placed, [(i, count, seconds, barrier) for i in range(workers)]))
    done = sum(r[0] for r in results)
    ran_out = sum(r[2] for r in results)
    return done / max(r[1] for r in results), ran_out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument(
        "--fulfilment-only", action="store_true", help="only the hold → retire path (no localstripe, no HTTP)"
    )
    args = parser.parse_args()
    url = fresh_database("postgresql")
    keys = setup(url)
    if not args.fulfilment_only:
        health, per_second, timings = end_to_end(url, keys, args.seconds)
        order_s, pay_s, wait_s, total_s = (
            statistics.median(col) * 1000 for col in zip(*timings, strict=True)
        )
        print(
            f"end to end, 8 buyers: {per_second:.2f} orders/s ({len(timings)} orders), ratio "
            f"{per_second / health:.4f} of /healthz at 8 clients ({health:.1f}/s); median ms: order "
            f"{order_s:.0f}, pay {pay_s:.0f}, webhook wait {wait_s:.0f}, total {total_s:.0f}"
        )
    base = rate(url, baseline_write, 8, args.seconds)
    moves = rate(url, hold_and_retire, 8, args.seconds)
    print(
        f"hold + retire on PostgreSQL, 8 processes: {moves:.1f} orders/s, baseline {base:.1f} write tx/s, "
        f"ratio {moves / base:.3f}"
    )
    base = rate(url, baseline_write, 8, args.seconds)
    fulfilled, ran_out = fulfil_only(url, args.seconds)
    print(
        f"fulfilment alone (orders placed beforehand), 8 processes: {fulfilled:.1f} orders/s, baseline "
        f"{base:.1f} write tx/s, ratio {fulfilled / base:.3f}"
        + (f" ({ran_out} process(es) ran out of orders before the end)" if ran_out else "")
    )
    from portal.ledger.verify import verify_ledger

    app = make_app(url)
    with app.app_context():
        print("ledger verify after the run:", "OK" if verify_ledger().ok else "FAILED")


if __name__ == "__main__":
    if "PORTAL_BENCH_POSTGRES_URL" not in os.environ:
        os.environ["PORTAL_BENCH_POSTGRES_URL"] = PG_DEFAULT
    main()
