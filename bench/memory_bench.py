"""Peak memory (VmHWM) of one gunicorn worker, against a bare Flask app serving /healthz.

Starts gunicorn with one sync worker for each case in turn, sends it the requests, and reads the
worker's peak resident set size from /proc:

1. the bare Flask app and the portal serving ``/healthz`` (a temporary SQLite database): what
   the portal costs at start-up (its imports);
2. with ``--url`` (a PostgreSQL database with the demo data set, e.g. loaded by
   ``certificate_bench.py --load-scale 10``): the portal serving the pages people read, in turn
   the catalog (its pages and filters), every project page, and certificate pages and their JSON
   (``--certificates`` different numbers, each asked for in Chinese and in English): what its
   caches add under that load. Target: under 150 MiB.

    python bench/memory_bench.py [--requests 3000] [--url postgresql+psycopg://…/bench] [--certificates 5000]
"""

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GUNICORN = Path(sys.executable).with_name("gunicorn")
#: The portal's worker runs with the deployed settings (docs/deployment.md).
DEPLOYED = ("--config", "python:portal.ops.gunicorn_conf")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def children(pid):
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(p) for p in f.read().split()]


def peak_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise RuntimeError("no VmHWM")


def measure(app_spec, requests, env, cwd, paths=("/healthz",), settings=()):
    port = free_port()
    proc = subprocess.Popen(
        [str(GUNICORN), "--workers", "1", "--bind", f"127.0.0.1:{port}", *settings, app_spec],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                urllib.request.urlopen(base + "/healthz", timeout=1).read()
                break
            except OSError:
                time.sleep(0.1)

        def hit(i):
            urllib.request.urlopen(base + paths[i % len(paths)], timeout=30).read()

        requests = max(requests, len(paths))
        started = time.perf_counter()
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(hit, range(requests)))
        elapsed = time.perf_counter() - started
        (worker,) = children(proc.pid)
        return peak_kib(worker), requests / elapsed
    finally:
        proc.terminate()
        proc.wait(10)


def page_paths(url, certificates):
    """The catalog's pages, every project page, and ``certificates`` certificate pages and JSON
    (in both languages), in a fixed shuffled order."""
    import random

    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.connect() as connection:
        projects = list(connection.scalars(text("SELECT code FROM projects ORDER BY code")))
        numbers = list(
            connection.scalars(
                text("SELECT number FROM certificates ORDER BY random() LIMIT :n"), {"n": certificates}
            )
        )
    engine.dispose()
    catalog = ["/", "/?lang=en", "/api/v1/batches"] + [f"/?page={n}" for n in range(2, 6)]
    paths = catalog * 20 + [f"/projects/{code}" for code in projects]
    for number in numbers:
        paths += [
            f"/certificates/{number}",
            f"/certificates/{number}?lang=en",
            f"/api/v1/certificates/{number}",
        ]
    random.Random(1).shuffle(paths)
    return paths


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--url", help="a PostgreSQL database with the demo data set: also measure its pages")
    parser.add_argument("--certificates", type=int, default=5000)
    args = parser.parse_args()
    env = dict(
        os.environ,
        PORTAL_DATABASE_URL=f"sqlite:///{tempfile.mkdtemp()}/m.db",
        PORTAL_SECRET_KEY="bench",
        PORTAL_LOG_LEVEL="WARNING",
    )
    bare_kib, bare_rate = measure("bare_app:app", args.requests, env, ROOT / "bench")
    portal_kib, portal_rate = measure("portal:create_app()", args.requests, env, ROOT, settings=DEPLOYED)
    print(f"bare Flask worker: peak {bare_kib / 1024:.1f} MiB ({bare_rate:.0f} req/s from Python clients)")
    print(f"portal worker:     peak {portal_kib / 1024:.1f} MiB ({portal_rate:.0f} req/s)")
    print(f"ratio portal / bare: memory {portal_kib / bare_kib:.2f}, rate {portal_rate / bare_rate:.2f}")
    if args.url:
        paths = page_paths(args.url, args.certificates)
        env = dict(env, PORTAL_DATABASE_URL=args.url, PORTAL_INSTANCE_PATH=tempfile.mkdtemp())
        pages_kib, pages_rate = measure("portal:create_app()", len(paths), env, ROOT, paths, DEPLOYED)
        print(
            f"portal worker serving {len(paths):,} pages (catalog, projects, certificates): "
            f"peak {pages_kib / 1024:.1f} MiB ({pages_rate:.0f} req/s); target < 150 MiB"
        )


if __name__ == "__main__":
    main()
