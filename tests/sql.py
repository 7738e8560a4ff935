"""Counting the SQL a piece of code sends (N+1 checks, cache hits)."""

from portal.extensions import db


def statements_of(func) -> list[str]:
    """The statements ``func()`` sends to the database, transaction control left out."""
    from sqlalchemy import event

    seen = []

    def record(conn, cursor, statement, parameters, context, executemany):
        if not statement.startswith("BEGIN"):
            seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        func()
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    return seen
