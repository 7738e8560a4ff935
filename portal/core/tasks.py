"""Asking for background work without knowing who does it: ``soon("webhooks.deliver")`` runs the
named job shortly after the current transaction commits (and not at all if it rolls back).

The job engine (``portal.jobs``) plugs itself in when the app starts; with no engine (a CLI
command, a test) nothing is queued and the periodic run picks the work up instead, so asking is
always safe. Features call this; they never import the engine."""

from sqlalchemy import event
from sqlalchemy.orm import Session

from portal.extensions import db

#: Set by the job engine: queues a job by name (never raises).
_enqueue = None
_PENDING = "portal_tasks_soon"


def plug(enqueue) -> None:
    """Queue jobs with ``enqueue`` from now on; every session's commit hands over what it asked
    for (listened for once, on all sessions: a request's session is new each time, and listening
    on it costs more than the check an unconcerned commit makes)."""
    global _enqueue
    _enqueue = enqueue
    for name, listener in (("after_commit", _after_commit), ("after_rollback", _after_rollback)):
        if not event.contains(Session, name, listener):
            event.listen(Session, name, listener)


def soon(name: str) -> None:
    """Queue the job ``name`` once the current transaction commits."""
    if _enqueue is None:
        return
    db.session().info.setdefault(_PENDING, set()).add(name)


def _after_commit(session) -> None:
    for name in sorted(session.info.pop(_PENDING, ())):
        if _enqueue is not None:
            _enqueue(name)


def _after_rollback(session) -> None:
    session.info.pop(_PENDING, None)
