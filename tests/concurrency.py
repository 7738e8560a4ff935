"""Running the same work from many threads at once, each like a request of its own."""

import contextvars
import threading
from concurrent.futures import ThreadPoolExecutor

from portal.extensions import db


def race(app, workers: int, work, refused=(), timeout: float = 60):
    """``work(i)`` in ``workers`` threads, each in its own app context and session, released
    together by a barrier. ``work`` commits what it did and returns an outcome; an exception of
    a ``refused`` type is rolled back and its ``code`` is the outcome. Outcomes in thread order."""
    barrier = threading.Barrier(workers)

    def run(i):
        with app.app_context():
            try:
                barrier.wait(timeout=timeout)
                try:
                    return work(i)
                except refused as exc:
                    db.session.rollback()
                    return exc.code
            finally:
                db.session.remove()

    # Each thread runs in a copy of the test's context, so it keeps the test's clock (tests.clock).
    contexts = [contextvars.copy_context() for _ in range(workers)]
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(lambda i: contexts[i].run(run, i), range(workers)))
