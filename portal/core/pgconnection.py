"""PostgreSQL: the driver's connection as the application's engine uses it.

psycopg forgets every prepared statement of a connection at every rollback, and deallocates
them on the server (a second round trip), in case the transaction created or dropped what they
name. The application's transactions never change the schema (migrations run in processes of
their own), and many end in a rollback: a request that read and did not write, a refusal (a
retirement from a holding that has run dry). Each rollback so cost the next requests of that
worker their prepared statements: psycopg prepares a statement at its fifth execution, and
until then the server parses and plans it every time (a retirement's forecast: 0.27 ms of
planning). Under a mix where a sixth of the API's retirements were refused, the server's CPU
per call doubled and the retirements fell from 383 to 268 a second.

``KeepingPrepared`` rolls back as psycopg does, minus the forgetting."""

import psycopg
from psycopg import pq


class KeepingPrepared(psycopg.Connection):
    def rollback(self) -> None:
        """Roll back the pending transaction, keeping the prepared statements (psycopg's own
        ``rollback`` where it does more than send ``ROLLBACK``: inside its transaction blocks,
        two-phase transactions and pipelines, or with no transaction to end)."""
        if (
            self._num_transactions
            or self._tpc
            or self._pipeline
            or self.pgconn.transaction_status == pq.TransactionStatus.IDLE
        ):
            return super().rollback()
        with self.lock:
            self.wait(self._exec_command(b"ROLLBACK"))


def connect(dialect, _record, cargs, cparams):
    """The engine's ``do_connect``: its connections are ``KeepingPrepared``."""
    return KeepingPrepared.connect(*cargs, **cparams)
