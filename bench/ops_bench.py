"""Running in production: what webhooks and the job engine cost.

1. Webhook fan-out on a retirement: ``POST /api/v1/retirements`` (the whole request: key, ledger
   movement, certificate, transparency log, events, the commit, queuing the delivery job on the
   PostgreSQL queue) for an organisation with 0 webhook endpoints and for one with 5 endpoints
   wanting ``certificate.issued``. Rounds alternate; medians. Target: fan-out adds ≤ 10 %.
2. The job engine's overhead per job: the same worker (dequeue + execute from the PostgreSQL
   queue) running a bare Huey task that calls a no-op function, and the portal's queued job
   calling the same function (its claim in ``job_runs``, the run, its record). A plain call of
   the function is printed for scale.

    .venv/bin/python bench/ops_bench.py --url postgresql+psycopg://…/bench [--retirements 60] [--jobs 300]

The database's schema is reset.
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import PG_DEFAULT, fresh_database  # noqa: E402


def _app(url):
    from portal import create_app

    return create_app(
        {
            "DATABASE_URL": url,
            "SECRET_KEY": "bench",
            "LOG_LEVEL": "WARNING",
            "TESTING": True,
            "JOBS_URL": "",  # the production queue: PostgreSQL, the portal's own database
            "WEBHOOKS_ALLOW_PRIVATE": True,
            "API_RATE_LIMIT": 10**9,
        }
    )


def fan_out(app, retirements: int) -> tuple[float, float]:
    from portal.buyers import services as buyers
    from portal.extensions import db
    from portal.webhooks import services as webhooks
    from tests import factories

    with app.app_context():
        quiet, loud = factories.steel_and_cement()
        factories.batch(quantity=10 * retirements + 100, code="B-BENCH", vintage=2023)
        buyers.deliver_from_inventory(quiet, 2 * retirements + 10)
        buyers.deliver_from_inventory(loud, 2 * retirements + 10)
        for i in range(5):
            webhooks.create_endpoint(
                loud, f"http://127.0.0.1:9/hook{i}", ["certificate.issued"], actor="bench"
            )
        db.session.commit()
        keys = {
            "none": factories.api_key(app, "--org", factories.STEEL_USCC),
            "five": factories.api_key(app, "--org", factories.CEMENT_USCC),
        }
        db.session.remove()
    client = app.test_client()
    times = {"none": [], "five": []}
    body = {"quantity": 1, "purpose": "voluntary"}
    for i in range(retirements):
        for name in ("none", "five") if i % 2 == 0 else ("five", "none"):
            started = time.perf_counter()
            response = client.post(
                "/api/v1/retirements", json=body, headers={"Authorization": f"Bearer {keys[name]}"}
            )
            times[name].append(time.perf_counter() - started)
            assert response.status_code == 201, response.get_json()
    warm = retirements // 10  # the first calls warm caches
    return statistics.median(times["none"][warm:]), statistics.median(times["five"][warm:])


def engine_overhead(app, jobs: int) -> tuple[float, float, float]:
    from portal.jobs import engine
    from portal.jobs.work import JOBS, Job

    calls = []

    def noop():
        calls.append(1)
        return "nothing"

    JOBS["bench.noop"] = Job(noop, None, "a job that does nothing")
    huey = engine.make_huey(app)
    bare = huey.task(name="bench:bare")(lambda _arg: noop())
    huey.flush()

    def drain(n):
        started = time.perf_counter()
        for _ in range(n):
            huey.execute(huey.dequeue())
        return (time.perf_counter() - started) / n

    results = {"bare": [], "engine": []}
    for round_ in range(3):
        for kind in ("bare", "engine") if round_ % 2 == 0 else ("engine", "bare"):
            for i in range(jobs):
                if kind == "bare":
                    bare(i)
                else:
                    huey.portal_queued["bench.noop"](f"bench {round_} {i}")
            results[kind].append(drain(jobs))
    started = time.perf_counter()
    for _ in range(jobs):
        noop()
    plain = (time.perf_counter() - started) / jobs
    assert len(calls) == 6 * jobs + jobs
    return statistics.median(results["bare"]), statistics.median(results["engine"]), plain


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default=PG_DEFAULT)
    parser.add_argument("--retirements", type=int, default=60)
    parser.add_argument("--jobs", type=int, default=300)
    args = parser.parse_args()
    url = fresh_database("postgresql", args.url)
    app = _app(url)
    none, five = fan_out(app, args.retirements)
    print(f"retirement, 0 endpoints: {none * 1000:.1f} ms (median of {args.retirements})")
    print(f"retirement, 5 endpoints: {five * 1000:.1f} ms")
    print(f"webhook fan-out adds {100 * (five / none - 1):+.1f} % (target ≤ 10 %)")
    bare, engine_, plain = engine_overhead(app, args.jobs)
    print(f"bare Huey task through the worker: {bare * 1000:.2f} ms per job")
    print(f"portal job through the worker:     {engine_ * 1000:.2f} ms per job")
    print(f"engine overhead per job: {(engine_ - bare) * 1000:.2f} ms ({engine_ / bare:.2f}× the bare task)")
    print(f"the function called directly: {plain * 1e6:.2f} µs")


if __name__ == "__main__":
    main()
