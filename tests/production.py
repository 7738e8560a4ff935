"""A test client whose requests run as they do under gunicorn.

Tests keep an application context pushed (for their own database work), and Flask's test client
reuses it: a request then shares the test's database session, which outlives the request, so a
response body that reads from the database after the request has ended still works in a test
and fails in production. ``ProductionClient`` sends each request from a thread of its own, where
no context of the test's exists, and reads the whole body there, after the request's teardown
(its commit, its session closed), as a WSGI server does.
"""

from concurrent.futures import ThreadPoolExecutor

from flask.testing import FlaskClient


class ProductionClient(FlaskClient):
    def open(self, *args, **kwargs):
        kwargs["buffered"] = True  # the whole body is read in the request's thread
        with ThreadPoolExecutor(max_workers=1) as pool:
            return pool.submit(super().open, *args, **kwargs).result()


def production_client(app) -> ProductionClient:
    app.test_client_class = ProductionClient
    return app.test_client()
