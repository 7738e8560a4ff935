"""Shared helpers for the benchmarks: fresh databases and time-boxed worker pools."""

import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, text  # noqa: E402

PG_DEFAULT = os.environ.get("PORTAL_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


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


def fresh_database(kind: str) -> str:
    """A migrated, empty database: a temporary SQLite file or the PostgreSQL schema reset."""
    from flask_migrate import upgrade

    from portal.extensions import db

    if kind == "sqlite":
        url = f"sqlite:///{tempfile.mkdtemp(prefix='bench-')}/bench.db"
    else:
        url = PG_DEFAULT
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
