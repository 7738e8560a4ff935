"""Database behaviour shared by every feature: SQLite settings and one commit per request.

Services only ``flush()``. A request that ends without an error commits once; an error rolls
back. CLI commands commit themselves, once, at the end.
"""

import logging

from flask import Flask, request
from sqlalchemy import event

from portal.config import url_is_sqlite
from portal.extensions import db

log = logging.getLogger(__name__)


def configure(app: Flask) -> None:
    if url_is_sqlite(app.config["SQLALCHEMY_DATABASE_URI"]):
        with app.app_context():
            _configure_sqlite(db.engine)

    @app.after_request
    def commit_request(response):
        if response.status_code >= 400:
            db.session.rollback()
            return response
        try:
            db.session.commit()
        except Exception:
            # The database refused what the request did: nothing of it stays, and the client
            # gets a proper error page (with the security headers), not a success.
            db.session.rollback()
            log.exception("commit failed at the end of %s %s", request.method, request.path)
            from portal.core.errors import internal_error_response

            return internal_error_response()
        return response


def _configure_sqlite(engine) -> None:
    """SQLite: foreign keys on, WAL, and every transaction takes the write lock at BEGIN.

    ``BEGIN IMMEDIATE`` is what makes the ledger's read-then-write movements safe here: two
    writers can never both read the same blocks and then both write. pysqlite's own
    transaction handling is switched off so that SQLAlchemy's ``begin`` event decides.
    """

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection):
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def is_postgresql() -> bool:
    return db.engine.dialect.name == "postgresql"
