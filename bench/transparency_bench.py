"""The transparency log under load, each figure with its baseline from the same run (PostgreSQL).

1. Retirements per second with 8 concurrent clients (processes; 1 t each from 8 demo buyers'
   holdings, through the real service and commit), with the log and with it switched off in
   the same run, alternated three times: the ratio with / without (target ≥ 0.9).
2. Inclusion proofs (``?certificate=<n>&tree_size=<signed size>``, a different real number each
   request) and consistency proofs (``?first=<random>&second=<signed size>``) with gunicorn
   (2 sync workers) under ``wrk -t2 -c16``, as a ratio to ``/healthz`` (target ≥ 0.5).
3. Proof size and time at 10³, 10⁵ and 10⁶ leaves: a synthetic log (100-byte leaves) built
   into ``--synthetic-url`` (its schema is reset), median time of 200 random inclusion and
   consistency proofs read through the portal's own code, and the proof's length.

    python bench/transparency_bench.py --url postgresql+psycopg://…/bench [--load-scale 100]
        [--seconds 10] [--synthetic-url postgresql+psycopg://…/bench2] [--sizes 1000,100000,1000000]

``--load-scale N`` first resets ``--url`` and loads the demo data set at that scale (at 100:
about 100,000 certificates, so as many leaves).
"""

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from common import fresh_database, load_demo, make_app, rate, serve, wrk

RANDOM_PATHS = """
paths = {}
for line in io.lines("%s") do paths[#paths + 1] = line end
math.randomseed(os.time())
request = function()
  return wrk.format("GET", paths[math.random(#paths)])
end
"""

_orgs: list[int] = []
_log_off = False


def _retire(index, n, log: bool):
    """One retirement of 1 t from the holding of the worker's own demo buyer, committed."""
    global _log_off
    from portal.buyers import services as buyers
    from portal.buyers.models import Organisation
    from portal.certificates import issuing
    from portal.certificates import services as certificates
    from portal.certificates.models import Source
    from portal.extensions import db

    if not log and not _log_off:
        # The log switched off in this process: nothing recorded, so nothing appended at commit.
        issuing.transparency.record_issuance = lambda certificate: None
        _log_off = True
    org = db.session.get(Organisation, _orgs[index])
    certificates.retire_into_certificate(
        buyers.holding_account(org),
        org,
        1,
        beneficiary="bench",
        purpose="voluntary",
        source=Source.HOLDING,
        actor="bench",
    )
    db.session.commit()


def retire_with_log(index, n):
    _retire(index, n, True)


def retire_without_log(index, n):
    _retire(index, n, False)


def _init(orgs):
    _orgs[:] = orgs


def retirements(url, seconds):
    from sqlalchemy import select

    from portal.buyers.models import Organisation
    from portal.extensions import db

    app = make_app(url)
    with app.app_context():
        orgs = list(db.session.scalars(select(Organisation.id).order_by(Organisation.id).limit(8)))
        db.engine.dispose()
    _init(orgs)  # inherited by the worker processes (fork)
    with_log, without = [], []
    for _round in range(3):
        with_log.append(rate(url, retire_with_log, 8, seconds))
        without.append(rate(url, retire_without_log, 8, seconds))
    a, b = statistics.median(with_log), statistics.median(without)
    print(
        f"retirements, 8 clients: with the log {a:.1f}/s, without {b:.1f}/s (medians of 3), ratio {a / b:.3f} "
        f"(rounds with: {', '.join(f'{x:.1f}' for x in with_log)}; without: {', '.join(f'{x:.1f}' for x in without)})"
    )


def proofs(url, seconds):
    from sqlalchemy import func, select

    from portal.certificates.models import Certificate
    from portal.extensions import db
    from portal.transparency import services as transparency

    app = make_app(url)
    workdir = Path(tempfile.mkdtemp(prefix="logbench-"))
    with app.app_context():
        transparency.backfill()
        head = transparency.sign_new_head() or transparency.latest_head()
        db.session.commit()
        size = head.tree_size
        numbers = list(db.session.scalars(select(Certificate.number).order_by(func.random()).limit(20_000)))
        db.engine.dispose()
    print(f"leaves in the log: {size:,}; signed tree head of size {size:,}")
    rng = random.Random(7)
    (workdir / "inclusion.txt").write_text(
        "".join(f"/api/v1/log/proof/inclusion?certificate={n}&tree_size={size}\n" for n in numbers)
    )
    (workdir / "consistency.txt").write_text(
        "".join(
            f"/api/v1/log/proof/consistency?first={rng.randrange(1, size)}&second={size}\n"
            for _ in range(20_000)
        )
    )
    with serve(url, workdir) as base:
        inclusion = RANDOM_PATHS % (workdir / "inclusion.txt")
        consistency = RANDOM_PATHS % (workdir / "consistency.txt")
        for script in (inclusion, consistency):
            wrk(base + "/", 1, script)
        results = {
            "/healthz": wrk(base + "/healthz", seconds),
            "inclusion proof": wrk(base + "/", seconds, inclusion),
            "consistency proof": wrk(base + "/", seconds, consistency),
            "/healthz again": wrk(base + "/healthz", seconds),
        }
    health = (results["/healthz"][0] + results["/healthz again"][0]) / 2
    print(f"{'request':20} {'req/s':>8} {'ratio':>6} {'p50 ms':>7} {'p95 ms':>7} {'non-2xx':>7}")
    for label, (rps, p50, p95, errors) in results.items():
        print(f"{label:20} {rps:8.1f} {rps / health:6.3f} {p50:7.1f} {p95:7.1f} {errors:7d}")


def synthetic(url, sizes):
    """Proof size and time as the log grows (leaves written directly, as appends write them)."""
    from sqlalchemy import insert

    from portal.extensions import db
    from portal.timeutil import utcnow
    from portal.transparency import merkle, proofs
    from portal.transparency.models import LogEntry, LogNode, LogState

    fresh_database("postgresql", url)
    app = make_app(url)
    print(
        f"{'leaves':>10} {'incl. hashes':>12} {'incl. bytes':>11} {'incl. ms':>9} {'cons. hashes':>12} {'cons. ms':>9}"
    )
    with app.app_context():
        frontier, size, now, rng = [], 0, utcnow(), random.Random(3)
        for target in sizes:
            while size < target:
                entries, nodes = [], []
                for _ in range(min(20_000, target - size)):
                    data = os.urandom(100)
                    frontier, completed = merkle.append(frontier, size, merkle.leaf_hash(data))
                    entries.append(
                        {
                            "leaf_index": size,
                            "kind": "issuance",
                            "certificate_number": "CFC-BENCH",
                            "leaf_input": data,
                            "logged_at": now,
                        }
                    )
                    nodes.append({"leaf_index": size, "hashes": b"".join(completed)})
                    size += 1
                db.session.execute(insert(LogEntry.__table__), entries)
                db.session.execute(insert(LogNode.__table__), nodes)
                db.session.commit()
            db.session.merge(LogState(id=1, tree_size=size, frontier=b"".join(frontier), updated_at=now))
            db.session.commit()
            with db.engine.connect() as connection:
                connection.exec_driver_sql("ANALYZE log_nodes")
            inc_ms, inc_len, con_ms, con_len = [], [], [], []
            for _ in range(200):
                index = rng.randrange(size)
                started = time.perf_counter()
                path = proofs.inclusion(index, size)
                inc_ms.append((time.perf_counter() - started) * 1000)
                inc_len.append(len(path))
                first = rng.randrange(1, size)
                started = time.perf_counter()
                proof = proofs.consistency(first, size)
                con_ms.append((time.perf_counter() - started) * 1000)
                con_len.append(len(proof))
            print(
                f"{size:>10,} {statistics.mean(inc_len):>12.1f} {statistics.mean(inc_len) * 32:>11.0f} "
                f"{statistics.median(inc_ms):>9.2f} {statistics.mean(con_len):>12.1f} {statistics.median(con_ms):>9.2f}"
            )
        db.engine.dispose()


def prepare(url, certificates: int) -> float:
    """A fresh database with 8 buyers holding stock and ``certificates`` certificates retired
    through the real service (100 to a movement, as an event retiring for each guest), so as
    many leaves; the seconds it took. (For when the demo data set cannot be loaded.)"""
    from datetime import date

    from portal.buyers import services as buyers
    from portal.catalog.models import Listing, Project, Region
    from portal.certificates import services as certificates_
    from portal.certificates.models import Source
    from portal.demo.data import uscc_for
    from portal.extensions import db
    from portal.ledger import services as ledger
    from portal.ledger.models import Batch

    fresh_database("postgresql", url)
    app = make_app(url)
    started = time.perf_counter()
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
        batch = Batch(
            code="BENCH-2021",
            project_id=project.id,
            vintage_start=date(2021, 1, 1),
            vintage_end=date(2021, 12, 31),
            quantity=10_000_000,
            issued_on=date(2022, 6, 1),
        )
        db.session.add(batch)
        db.session.flush()
        db.session.add(Listing(batch_id=batch.id, price_per_t=68))
        ledger.issue_batch(batch)
        orgs = [
            buyers.create_organisation(
                name_zh=f"基准买方{i}", uscc=uscc_for(i + 1), sector="steel", approve=True
            )
            for i in range(8)
        ]
        for org in orgs:
            buyers.deliver_from_inventory(org, 1_000_000, actor="bench")
        db.session.commit()
        done = 0
        while done < certificates:
            org = orgs[(done // 100) % len(orgs)]
            size = min(100, certificates - done)
            certificates_.retire_into_certificates(
                buyers.holding_account(org),
                org,
                [certificates_.Part(1, f"guest {done + i}", "event") for i in range(size)],
                source=Source.HOLDING,
                actor="bench",
            )
            db.session.commit()  # one movement per transaction; its 100 leaves appended at commit
            done += size
        with db.engine.connect() as connection:
            connection.exec_driver_sql("ANALYZE")
        db.engine.dispose()
    return time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--load-scale", type=int, default=0)
    parser.add_argument(
        "--certificates", type=int, default=0, help="instead of the demo data: retire this many"
    )
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--synthetic-url")
    parser.add_argument("--sizes", default="1000,100000,1000000")
    parser.add_argument("--skip", default="", help="comma-separated: retirements, proofs, synthetic")
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    if not shutil.which("wrk") and "proofs" not in skip:
        sys.exit("wrk is needed: apt-get install wrk")
    if args.load_scale:
        print(
            f"demo load --scale {args.load_scale}: {load_demo(args.url, args.load_scale):.1f} s", flush=True
        )
    if args.certificates:
        print(
            f"{args.certificates:,} certificates retired in {prepare(args.url, args.certificates):.1f} s",
            flush=True,
        )
    if "proofs" not in skip:
        proofs(args.url, args.seconds)
    if "retirements" not in skip:
        retirements(args.url, args.seconds)
    if args.synthetic_url and "synthetic" not in skip:
        synthetic(args.synthetic_url, [int(s) for s in args.sizes.split(",")])
    if {"proofs", "retirements"} <= skip:
        return
    from portal.extensions import db
    from portal.transparency import services as transparency

    app = make_app(args.url)
    with app.app_context():
        # The certificates retired with the log switched off are appended now, as after an upgrade.
        transparency.backfill()
        db.session.commit()
        report = transparency.verify_log()
        print(f"flask log verify after the run: {'OK' if report.ok else 'FAILED'} ({report.leaves:,} leaves)")
        db.session.rollback()


if __name__ == "__main__":
    main()
