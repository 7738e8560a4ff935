"""Certificates under load, each figure with its baseline from the same run.

1. ``/certificates/<number>`` and ``GET /api/v1/certificates/<number>`` with gunicorn (2 sync
   workers) under ``wrk -t2 -c16``, every request a random one of 20,000 real numbers drawn
   from the database, whose answers were drawn ahead (``certificates.renditions``, as the
   jobs worker does after issue and ``flask certificates draw`` after a deployment): requests
   per second and p50 / p95, as a ratio to ``/healthz``. Also the page and JSON of another
   20,000 numbers whose kept answers were removed first (mostly first views: drawn and kept
   by the request), the same page over 200 numbers only (an event's guests scanning their QR
   codes), and those 200 pages revalidated by clients that have them (``If-None-Match`` with
   the page's ETag: 304 without a body).
2. Retirements per second with 8 concurrent API clients (``POST /api/v1/retirements``, 1 t each,
   up to 8 organisations: ``--organisations``), as a ratio to ``/healthz`` at the same
   concurrency, measured just before them, after 2 s of each to warm up: ``--rounds`` rounds
   (3), each ratio printed, and their median.
3. PDF generation time per certificate (in process), against rendering the certificate's HTML
   page in the same process.

    python bench/certificate_bench.py --url postgresql+psycopg://…/bench [--load-scale 100] [--seconds 10] [--reads-only | --retirements-only] [--rounds 3] [--organisations 8]

``--reads-only`` measures the reads (1.) alone. ``--organisations N``: the retirements use the
keys of the first N organisations only (1: every client retires from one holding, as an event's
guests from their organiser's).

``--load-scale N`` first resets the database and loads the demo data set at that scale (at 100:
10,000 batches and 100,000 certificates).
"""

import argparse
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

from common import load_demo, make_app, median, serve, wrk

RANDOM_PATHS = """
paths = {}
for line in io.lines("%s") do paths[#paths + 1] = line end
math.randomseed(os.time())
request = function()
  return wrk.format("GET", paths[math.random(#paths)])
end
"""
REVALIDATE = """
pages = {}
for line in io.lines("%s") do
  local path, etag = line:match("(%%S+) (.+)")
  pages[#pages + 1] = {path, etag}
end
math.randomseed(os.time())
request = function()
  local page = pages[math.random(#pages)]
  return wrk.format("GET", page[1], {["If-None-Match"] = page[2]})
end
"""
RETIRE = """
keys = {}
for line in io.lines("%s") do keys[#keys + 1] = line end
counter = 0
request = function()
  counter = counter + 1
  local headers = {}
  headers["Content-Type"] = "application/json"
  headers["Authorization"] = "Bearer " .. keys[(counter %% #keys) + 1]
  return wrk.format("POST", "/api/v1/retirements", headers,
    '{"quantity": 1, "beneficiary": "bench", "purpose": "voluntary"}')
end
"""


def prepare(url, workdir: Path, keys_only: bool = False, organisations: int = 8):
    """Numbers to look up (PostgreSQL: the same in every run), their answers drawn ahead, and
    API keys of up to ``organisations`` demo organisations (``api_keys``). ``keys_only``: the
    keys alone (the retirements need nothing else, and drawing answers ahead grows with every
    run's certificates)."""
    from sqlalchemy import delete, func, select

    from portal.buyers import services as buyers
    from portal.buyers.models import Organisation
    from portal.certificates import renditions
    from portal.certificates.models import Certificate, Rendition
    from portal.core import validators
    from portal.extensions import db

    app = make_app(url)
    with app.app_context():
        total = db.session.scalar(select(func.count()).select_from(Certificate))
        if keys_only:
            keys = api_keys(db, buyers, Organisation, organisations)
            (workdir / "keys.txt").write_text("\n".join(keys) + "\n")
            db.session.commit()
            db.engine.dispose()
            return total, []
        # Random, but the same numbers in every run: a rerun draws ahead only what it lacks.
        shuffled = func.md5(Certificate.number + "bench")
        chosen = list(db.session.scalars(select(Certificate.number).order_by(shuffled).limit(40_000)))
        numbers, cold = chosen[:20_000], chosen[20_000:]
        current = (
            select(Certificate.number)
            .join(Rendition, Rendition.certificate_id == Certificate.id)
            .where(Rendition.release == validators.release(), Certificate.number.in_(numbers))
            .group_by(Certificate.number)
            .having(func.count() == len(renditions.kinds()))
        )
        drawn = set(db.session.scalars(current))
        keys = api_keys(db, buyers, Organisation, organisations)
        db.session.commit()
        started = time.perf_counter()
        renditions.draw_numbers(n for n in numbers if n not in drawn)
        print(
            f"drew {len(numbers) - len(drawn):,} certificates ahead ({len(drawn):,} were) "
            f"in {time.perf_counter() - started:.0f} s"
        )
        ids = select(Certificate.id).where(Certificate.number.in_(cold)).scalar_subquery()
        db.session.execute(delete(Rendition).where(Rendition.certificate_id.in_(ids)))
        db.session.commit()
        db.engine.dispose()
    (workdir / "cold-pages.txt").write_text("".join(f"/certificates/{n}\n" for n in cold))
    (workdir / "cold-api.txt").write_text("".join(f"/api/v1/certificates/{n}\n" for n in cold))
    (workdir / "pages.txt").write_text("".join(f"/certificates/{n}\n" for n in numbers))
    # An event's guests scanning the QR codes of its few certificates: a small, repeated set.
    (workdir / "event.txt").write_text("".join(f"/certificates/{n}\n" for n in numbers[:200]))
    (workdir / "api.txt").write_text("".join(f"/api/v1/certificates/{n}\n" for n in numbers))
    (workdir / "keys.txt").write_text("\n".join(keys) + "\n")
    return total, numbers


def api_keys(db, buyers, Organisation, organisations: int = 8) -> list[str]:
    """A new API key of each of the first ``organisations`` (8) demo organisations, or of all
    where there are fewer (not committed). A scale-1 data set has 6: the retirements' 8
    connections share their keys, and all 6 retire first from the one oldest batch they hold, so
    every retirement locks it. With one, every connection retires from the same holding, as an
    event's guests offsetting at once from its organiser's (they then often find the range they
    expected taken by another: ``certificates.issuing``)."""
    from sqlalchemy import select

    keys = []
    for org in db.session.scalars(select(Organisation).order_by(Organisation.id).limit(organisations)):
        _key, plaintext = buyers.create_api_key(organisation=org, label="bench", actor="bench")
        keys.append(plaintext)
    return keys


def etags(base, numbers, path: Path) -> Path:
    """``path`` listing each number's page and the ETag it is served with (none before ETags:
    then the revalidation is a plain request)."""
    import urllib.request

    lines = []
    for number in numbers:
        with urllib.request.urlopen(f"{base}/certificates/{number}") as response:
            lines.append(f"/certificates/{number} {response.headers.get('ETag') or '-'}\n")
    path.write_text("".join(lines))
    return path


def pdf_times(url, numbers, count=30):
    from portal.certificates import pdf, services

    app = make_app(url)
    pdf_ms, html_ms = [], []
    with app.app_context(), app.test_request_context():
        client = app.test_client()
        sample = random.Random(1).sample(numbers, count)
        client.get(f"/certificates/{sample[0]}")  # warm caches (templates, font)
        found = services.find(sample[0])
        pdf.render(payload=found.payload, signature=found.signature, key_id=found.key_id, verify_url="x")
        for number in sample:
            cert = services.find(number)
            started = time.perf_counter()
            pdf.render(
                payload=cert.payload,
                signature=cert.signature,
                key_id=cert.key_id,
                verify_url=services.certificate_url(cert),
            )
            pdf_ms.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            assert client.get(f"/certificates/{number}").status_code == 200
            html_ms.append((time.perf_counter() - started) * 1000)
    return median(pdf_ms), median(html_ms)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--load-scale", type=int, default=0)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--reads-only", action="store_true")
    parser.add_argument("--retirements-only", action="store_true", help="only the API retirements")
    parser.add_argument(
        "--organisations",
        type=int,
        default=8,
        choices=range(1, 9),
        metavar="1-8",
        help="retire with the keys of this many organisations (8)",
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="rounds of the retirements and their baseline (3: the median)"
    )
    parser.add_argument(
        "--workers", type=int, default=2, help="gunicorn workers (2; docs/deployment.md runs 4)"
    )
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is needed: apt-get install wrk")
    if args.load_scale:
        print(f"demo load --scale {args.load_scale}: {load_demo(args.url, args.load_scale):.1f} s")

    workdir = Path(tempfile.mkdtemp(prefix="certbench-"))
    total, numbers = prepare(
        args.url, workdir, keys_only=args.retirements_only, organisations=args.organisations
    )
    print(f"certificates in the database: {total:,}")
    if not (args.reads_only or args.retirements_only):
        pdf_ms, html_ms = pdf_times(args.url, numbers)
        print(
            f"PDF per certificate: {pdf_ms:.1f} ms (median of 30); the HTML page in process: {html_ms:.1f} ms "
            f"(ratio {pdf_ms / html_ms:.1f}x)"
        )

    with serve(args.url, workdir, workers=args.workers) as base:
        pages = RANDOM_PATHS % (workdir / "pages.txt")
        event = RANDOM_PATHS % (workdir / "event.txt")
        api = RANDOM_PATHS % (workdir / "api.txt")
        cold_pages = RANDOM_PATHS % (workdir / "cold-pages.txt")
        cold_api = RANDOM_PATHS % (workdir / "cold-api.txt")
        if args.retirements_only:
            return retirements(args, base, workdir)
        for script in (pages, api, event):
            wrk(base + "/", 1, script)
        revalidate = REVALIDATE % etags(base, numbers[:200], workdir / "etags.txt")
        results = {
            "/healthz": wrk(base + "/healthz", args.seconds),
            "/certificates/<n>": wrk(base + "/", args.seconds, pages),
            "same, 200 numbers": wrk(base + "/", args.seconds, event),
            "same, revalidated": wrk(base + "/", args.seconds, revalidate),
            "api certificate": wrk(base + "/", args.seconds, api),
            "page, not drawn": wrk(base + "/", args.seconds, cold_pages),
            "api, not drawn": wrk(base + "/", args.seconds, cold_api),
        }
        health = results["/healthz"][0]
        print(f"{'page':20} {'req/s':>8} {'ratio':>6} {'p50 ms':>7} {'p95 ms':>7} {'non-2xx':>7}")
        for label, (rps, p50, p95, errors) in results.items():
            print(f"{label:20} {rps:8.1f} {rps / health:6.3f} {p50:7.1f} {p95:7.1f} {errors:7d}")
        if args.reads_only:
            return
        retirements(args, base, workdir)


def retirements(args, base, workdir):
    """``--rounds`` rounds, each ``/healthz`` then the retirements at 8 connections; each
    round's ratio, and their median. Both are warmed first (2 s each, not counted): a worker's
    first retirements open its connections and prepare their statements (without the warm-up,
    the first round's ratio was the lowest of three in 10 runs of 15)."""
    wrk(base + "/healthz", 2, connections=8)
    wrk(base + "/", 2, RETIRE % (workdir / "keys.txt"), connections=8)
    ratios = []
    for round_ in range(1, args.rounds + 1):
        health8 = wrk(base + "/healthz", args.seconds, connections=8)
        retire = wrk(base + "/", args.seconds, RETIRE % (workdir / "keys.txt"), connections=8)
        ratios.append(retire[0] / health8[0])
        print(
            f"retirements, 8 API clients, round {round_}: {retire[0]:.1f}/s (ratio {ratios[-1]:.3f} of"
            f" /healthz at 8 connections, {health8[0]:.1f}/s), p50 {retire[1]:.1f} ms, p95"
            f" {retire[2]:.1f} ms, non-2xx {retire[3]}"
        )
    print(f"retirements, 8 API clients: median ratio {median(ratios):.3f} of /healthz ({len(ratios)} rounds)")
    from portal.ledger.verify import verify_ledger

    app = make_app(args.url)
    with app.app_context():
        print("ledger verify after the run:", "OK" if verify_ledger().ok else "FAILED")


if __name__ == "__main__":
    main()
