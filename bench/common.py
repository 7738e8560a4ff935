"""Shared helpers for the benchmarks: fresh databases and time-boxed worker pools."""

import contextlib
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, make_url, text  # noqa: E402

#: The benchmarks' own database (created when missing): never the one the tests use, whose
#: schema a benchmark would drop under a running suite.
PG_DEFAULT = os.environ.get(
    "PORTAL_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/portal_bench"
)


def make_app(url):
    from portal import create_app

    return create_app(
        {
            "DATABASE_URL": url,
            "SECRET_KEY": "bench",
            "LOG_LEVEL": "WARNING",
            "SQLALCHEMY_ENGINE_OPTIONS": {"pool_size": 2},
        }
        if url.startswith("postgresql")
        else {"DATABASE_URL": url, "SECRET_KEY": "bench", "LOG_LEVEL": "WARNING"}
    )


def fresh_database(kind: str, url: str | None = None) -> str:
    """A migrated, empty database: a temporary SQLite file or the PostgreSQL schema reset (at
    ``url``, else ``PORTAL_BENCH_POSTGRES_URL``)."""
    from flask_migrate import upgrade

    from portal.extensions import db

    if kind == "sqlite":
        url = f"sqlite:///{tempfile.mkdtemp(prefix='bench-')}/bench.db"
    else:
        url = url or PG_DEFAULT
        create_missing(url)
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        engine.dispose()
    app = make_app(url)
    with app.app_context():
        upgrade()
        db.engine.dispose()
    return url


def create_missing(url: str) -> None:
    """Create ``url``'s PostgreSQL database unless it exists (from the server's ``postgres`` one)."""
    name = make_url(url).database
    engine = create_engine(make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            if not conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}):
                conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE template0'))
    finally:
        engine.dispose()


_worker_app = None


def _init_worker(url):
    global _worker_app
    import logging

    logging.disable(logging.INFO)
    _worker_app = make_app(url)


def _run_worker(args):
    func, index, seconds = args
    with _worker_app.app_context():
        done = 0
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            func(index, done)
            done += 1
        from portal.extensions import db

        db.session.remove()
        return done


def rate(url, func, workers: int, seconds: float) -> float:
    """Operations per second of ``func(worker_index, n)`` run by ``workers`` processes at once."""
    with ProcessPoolExecutor(workers, initializer=_init_worker, initargs=(url,)) as pool:
        started = time.perf_counter()
        counts = list(pool.map(_run_worker, [(func, i, seconds) for i in range(workers)]))
        elapsed = time.perf_counter() - started
    return sum(counts) / max(elapsed, seconds)


def median(values):
    return statistics.median(values)


# --- serving the portal and loading it ---------------------------------------------------------

BIN = Path(sys.executable).parent

#: wrk's report: requests per second, p50 and p95 in ms, non-2xx responses.
WRK_REPORT = """
done = function(summary, latency, requests)
  io.write(string.format("RESULT %f %f %f %d\\n", summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, summary.errors.status))
end
"""


def wrk(url, seconds, script="", connections=16):
    """(requests/s, p50 ms, p95 ms, non-2xx) of ``wrk -t2`` against ``url``, with an optional Lua
    ``script`` (e.g. a ``request`` function)."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script + WRK_REPORT)
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "-s", f.name, url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps, p50, p95, errors = re.search(r"RESULT (\S+) (\S+) (\S+) (\d+)", out).groups()
    return float(rps), float(p50), float(p95), int(errors)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(url: str, attempts: int = 200) -> None:
    for _ in range(attempts):
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


@contextlib.contextmanager
def serve(url: str, workdir: Path, threads: int = 1, workers: int = 2, **env):
    """The portal on ``url``'s database under gunicorn (2 workers unless told, the deployed
    settings ``portal.ops.gunicorn_conf``) on a free port; yields its base URL. Its log goes to
    ``workdir/server.log``."""
    port = free_port()
    environment = dict(
        os.environ,
        PORTAL_DATABASE_URL=url,
        PORTAL_SECRET_KEY="bench",
        PORTAL_LOG_LEVEL="WARNING",
        PORTAL_INSTANCE_PATH=str(workdir),
        # The benchmarks measure the paths, not the API's rate limit (its counting still runs).
        PORTAL_API_RATE_LIMIT=str(10**9),
        **env,
    )
    command = [str(BIN / "gunicorn"), "--workers", str(workers), "--bind", f"127.0.0.1:{port}"]
    command += ["--config", "python:portal.ops.gunicorn_conf"]  # as deployed (docs/deployment.md)
    if threads > 1:
        command += ["--threads", str(threads)]
    with open(workdir / "server.log", "w") as log:
        server = subprocess.Popen(
            [*command, "portal:create_app()"], cwd=ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT
        )
        base = f"http://127.0.0.1:{port}"
        try:
            wait_until_up(base + "/healthz")
            yield base
        finally:
            server.terminate()
            server.wait(10)


def load_demo(url: str, scale: int) -> float:
    """Reset the PostgreSQL database at ``url`` and load the demo data set; the seconds it took.
    The database is then settled (``settle``), so that what is measured next does not share the
    machine with the load's aftermath."""
    fresh_database("postgresql", url)
    started = time.perf_counter()
    subprocess.run(
        [str(BIN / "flask"), "demo", "load", "--scale", str(scale)],
        check=True,
        cwd=ROOT,
        env=dict(os.environ, FLASK_APP="portal", PORTAL_DATABASE_URL=url),
    )
    took = time.perf_counter() - started
    settle(url)
    return took


def settle(url: str) -> None:
    """``VACUUM ANALYZE`` and ``CHECKPOINT`` on the PostgreSQL database at ``url``: the tables a
    load has just written get their statistics and visibility maps now, not from autovacuum in
    the middle of a measurement, and the load's dirty pages are written before it, not by a
    checkpoint during it."""
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("VACUUM (ANALYZE)"))
        conn.execute(text("CHECKPOINT"))
    engine.dispose()
