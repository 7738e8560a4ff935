"""Verification at a demo scale: ``ledger verify``, and checking certificate PDFs.

1. ``ledger verify``, as a ratio to reading the same rows. The baseline reads every batch, block
   and journal row into Python tuples and does nothing else: the least any full check must do.
   The ratio is the price of replaying and checking.
2. Certificate PDFs: the cost of the whole-file signature per PDF (drawing a demo certificate
   with and without it, in this process), and one verification of a real certificate PDF through
   ``POST /api/v1/verify`` on gunicorn (2 sync workers, as ``scripts/serve`` runs it): the first
   (starting the sandbox's helper) and the median of the next ones; target at most 0.3 s.
3. ``/healthz`` p50 / p95 while 8 client processes keep uploading hostile 2 MB PDFs (thousands
   of objects, a decompression bomb, deep nesting, garbage after a PDF header) to
   ``POST /api/v1/verify``, against ``/healthz`` with nothing else running; target p95 < 50 ms.
   The uploads' answers are counted by status and result (503: every sandbox slot was taken).

    python bench/verify_bench.py [--scale 100] [--url postgresql+psycopg://…] [--reuse]
        [--seconds 20] [--clients 8] [--threads 1]

``--reuse`` skips the (slow) load when the database already holds the demo data set.
"""

import argparse
import http.client
import json
import logging
import multiprocessing
import statistics
import tempfile
import time
import urllib.parse
import zlib
from collections import Counter
from pathlib import Path

from common import PG_DEFAULT, fresh_database, make_app, serve
from sqlalchemy import select

VERIFY_TARGET_S = 0.3
HEALTHZ_TARGET_MS = 50
HOSTILE_SIZE = 2 * 1024 * 1024


def read_rows():
    from portal.extensions import db
    from portal.ledger.models import Batch, Block, LedgerEntry

    rows = 0
    for query in (
        select(Batch.id, Batch.code, Batch.quantity),
        select(Block.batch_id, Block.serial_start, Block.serial_end, Block.account_id).order_by(
            Block.batch_id, Block.serial_start
        ),
        select(
            LedgerEntry.id,
            LedgerEntry.batch_id,
            LedgerEntry.kind,
            LedgerEntry.serial_start,
            LedgerEntry.serial_end,
            LedgerEntry.quantity,
            LedgerEntry.from_account_id,
            LedgerEntry.to_account_id,
        ).order_by(LedgerEntry.batch_id, LedgerEntry.id),
    ):
        rows += len(db.session.execute(query).all())
    return rows


def timed(func, repeat=3):
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        result = func()
        times.append(time.perf_counter() - started)
    return sorted(times)[len(times) // 2], result


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=int, default=100)
    parser.add_argument("--url", default=None, help="default: reset and use the PostgreSQL test database")
    parser.add_argument("--reuse", action="store_true")
    parser.add_argument("--seconds", type=float, default=20, help="the hostile upload flood")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument(
        "--threads", type=int, default=1, help="gunicorn threads per worker (1: sync, as scripts/serve)"
    )
    args = parser.parse_args()
    logging.disable(logging.INFO)

    url = args.url or PG_DEFAULT
    if not args.reuse:
        url = fresh_database("postgresql") if args.url is None else url
        from portal.demo import services as demo
        from portal.extensions import db

        with make_app(url).app_context():
            started = time.perf_counter()
            demo.load(args.scale)
            db.session.commit()
            print(f"demo load --scale {args.scale}: {time.perf_counter() - started:.1f} s")

    from portal.extensions import db
    from portal.ledger.verify import verify_ledger

    with make_app(url).app_context():
        base, rows = timed(read_rows)
        db.session.rollback()
        check, report = timed(verify_ledger)
        assert report.ok, report.problems[:5]
        print(f"ledger verify: {report.batches} batches, {report.blocks} blocks, {report.entries} entries")
        print(
            f"  verify {check:.3f} s; baseline (read the {rows} rows) {base:.3f} s; ratio {check / base:.2f}"
        )
        number, unsigned_s, signed_s, seal_s = signing_cost()
    pdf_checks(url, number, unsigned_s, signed_s, seal_s, args.seconds, args.clients, args.threads)


# --- certificate PDFs ------------------------------------------------------------------------------


def signing_cost():
    """(number, drawing without the signature, drawing with it, sealing alone) for a demo
    certificate, medians of 5 in this process."""
    from portal.certificates import pdf
    from portal.certificates import services as certificates
    from portal.certificates.models import Certificate
    from portal.extensions import db
    from portal.pdf import drawing, sealing

    certificate = db.session.scalars(
        select(Certificate).filter_by(status="valid").order_by(Certificate.id).limit(1)
    ).one()

    def draw():
        return pdf.render(
            payload=certificate.payload,
            signature=certificate.signature,
            key_id=certificate.key_id,
            verify_url=certificates.certificate_url(certificate),
            source=certificate.source,
        )

    draw()  # fonts loaded, the authority generated
    signed_s, signed = timed(draw, 5)
    original = drawing.sealing.seal_document
    drawing.sealing.seal_document = lambda data, pdf_date: data
    try:
        unsigned_s, unsigned = timed(draw, 5)
    finally:
        drawing.sealing.seal_document = original
    authority = sealing.current_authority()
    at = sealing.signing_time(None, authority)
    seal_s, _ = timed(lambda: sealing.seal(unsigned, authority, at), 5)
    print(
        f"certificate PDF ({len(signed):,} bytes signed, {len(unsigned):,} unsigned): drawn in "
        f"{unsigned_s * 1000:.0f} ms unsigned, {signed_s * 1000:.0f} ms signed; the signature alone "
        f"{seal_s * 1000:.0f} ms per PDF"
    )
    return certificate.number, unsigned_s, signed_s, seal_s


def _post(host, port, path, body, filename="c.pdf"):
    boundary = "benchboundary7d1f"
    data = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
            f"Content-Type: application/pdf\r\n\r\n"
        ).encode()
        + body
        + f"\r\n--{boundary}--\r\n".encode()
    )
    connection = http.client.HTTPConnection(host, port, timeout=120)
    try:
        connection.request(
            "POST", path, body=data, headers={"Content-Type": f"multipart/form-data; boundary={boundary}"}
        )
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def _get(host, port, path):
    connection = http.client.HTTPConnection(host, port, timeout=120)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def hostile_pdfs() -> list[bytes]:
    """Four kinds of hostile upload, each about 2 MB."""
    head = b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n"
    # Thousands of objects: a page tree of tiny pages.
    count = HOSTILE_SIZE // 70
    kids = " ".join(f"{n} 0 R" for n in range(3, 3 + count))
    objects = [head, f"2 0 obj\n<< /Type /Pages /Kids [{kids}] /Count {count} >>\nendobj\n".encode()]
    for n in range(3, 3 + count):
        objects.append(f"{n} 0 obj\n<< /Type /Page /Parent 2 0 R /MediaBox [0 0 1 1] >>\nendobj\n".encode())
    many = b"".join(objects)[:HOSTILE_SIZE] + b"trailer\n<< /Root 1 0 R >>\n%%EOF\n"
    # A decompression bomb as the page content (256 MB of zeros), padded to the size.
    squeeze = zlib.compressobj(9)
    zeros = b"\x00" * (1024 * 1024)
    bomb = b"".join(squeeze.compress(zeros) for _ in range(256)) + squeeze.flush()
    bombed = (
        head
        + b"2 0 obj\n<< /Type /Pages /Kids [3 0 R] /Count 1 >>\nendobj\n"
        + b"3 0 obj\n<< /Type /Page /Parent 2 0 R /MediaBox [0 0 9 9] /Contents 4 0 R >>\nendobj\n"
        + f"4 0 obj\n<< /Length {len(bomb)} /Filter /FlateDecode >>\nstream\n".encode()
        + bomb
        + b"\nendstream\nendobj\n"
    )
    bombed += b"%" + b"x" * (HOSTILE_SIZE - len(bombed) - 40) + b"\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"
    nested = b"%PDF-1.4\n1 0 obj\n" + b"[" * (HOSTILE_SIZE - 40) + b"\nendobj\n%%EOF\n"
    garbage = b"%PDF-1.7\n" + bytes((n * 7919) % 251 for n in range(HOSTILE_SIZE))
    return [many, bombed, nested, garbage]


def _upload_flood(host, port, bodies, deadline, outcomes):
    seen = Counter()
    n = 0
    while time.monotonic() < deadline:
        try:
            status, body = _post(host, port, "/api/v1/verify", bodies[n % len(bodies)])
            label = str(status)
            if status == 200:
                label += " " + json.loads(body)["result"]
            seen[label] += 1
        except OSError:
            seen["reset"] += 1
        n += 1
    outcomes.put(dict(seen))


def probe(host, port, seconds):
    """Latencies (ms) of sequential ``GET /healthz`` for ``seconds``, a new connection each."""
    times = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        started = time.perf_counter()
        status, _ = _get(host, port, "/healthz")
        assert status == 200, status
        times.append((time.perf_counter() - started) * 1000)
    return times


def summary(times):
    times = sorted(times)
    return statistics.median(times), times[int(len(times) * 0.95)], len(times)


def pdf_checks(url, number, unsigned_s, signed_s, seal_s, seconds, clients, threads=1):
    workdir = Path(tempfile.mkdtemp(prefix="verifybench-"))
    print(f"server log: {workdir / 'server.log'}")
    # The per-address limit (20 uploads in 10 minutes) would answer the flood with 429s from the
    # first seconds: lifted, so that every upload reaches the sandbox's slots.
    print(f"gunicorn: 2 workers, {threads} thread(s) each")
    with serve(url, workdir, threads=threads, PORTAL_VERIFY_UPLOAD_LIMIT="1000000") as base:
        parts = urllib.parse.urlsplit(base)
        host, port = parts.hostname, parts.port
        status, document = _get(host, port, f"/certificates/{number}.pdf")
        assert status == 200, status
        firsts, times = [], []
        for _ in range(2):  # each of the two workers starts its helper once
            started = time.perf_counter()
            status, body = _post(host, port, "/api/v1/verify", document)
            firsts.append(time.perf_counter() - started)
        for _ in range(10):
            started = time.perf_counter()
            status, body = _post(host, port, "/api/v1/verify", document)
            times.append(time.perf_counter() - started)
            assert status == 200 and json.loads(body)["result"] == "valid", (status, body[:200])
        one = statistics.median(times)
        probe(host, port, 1)  # warm-up
        baseline = summary(probe(host, port, 5))
        outcomes = multiprocessing.Queue()
        bodies = hostile_pdfs()
        print(f"hostile bodies: {', '.join(f'{len(b):,}' for b in bodies)} bytes")
        deadline = time.monotonic() + seconds + 1
        flood = [
            multiprocessing.Process(target=_upload_flood, args=(host, port, bodies, deadline, outcomes))
            for _ in range(clients)
        ]
        for process in flood:
            process.start()
        time.sleep(1)
        loaded = summary(probe(host, port, deadline - time.monotonic()))
        answers = Counter()
        for _ in flood:
            answers.update(outcomes.get())
        for process in flood:
            process.join()
    verdict = "met" if one <= VERIFY_TARGET_S else "MISSED"
    print(
        f"one PDF verification (POST /api/v1/verify, {len(document):,} bytes, 'valid'): median "
        f"{one * 1000:.0f} ms of 10 (min {min(times) * 1000:.0f}, max {max(times) * 1000:.0f}); first per "
        f"worker {', '.join(f'{f * 1000:.0f}' for f in firsts)} ms; target <= {VERIFY_TARGET_S} s: {verdict}"
    )
    print(
        f"signing per PDF: {seal_s * 1000:.0f} ms (drawing: {unsigned_s * 1000:.0f} ms unsigned, "
        f"{signed_s * 1000:.0f} ms signed)"
    )
    print(
        f"hostile uploads: {clients} clients x {seconds:.0f} s of 2 MB PDFs; answers {dict(sorted(answers.items()))}"
    )
    for label, (p50, p95, n) in (("baseline (no load):", baseline), ("under the hostile uploads:", loaded)):
        print(f"/healthz {label:<27} p50 {p50:7.1f} ms, p95 {p95:7.1f} ms ({n} requests)")
    verdict = "met" if loaded[1] < HEALTHZ_TARGET_MS else "MISSED"
    print(
        f"ratio p95 under load / baseline: {loaded[1] / baseline[1]:.1f}; target p95 < {HEALTHZ_TARGET_MS} ms: {verdict}"
    )


if __name__ == "__main__":
    main()
