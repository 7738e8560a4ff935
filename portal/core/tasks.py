"""Asking for background work without knowing who does it: ``soon("webhooks.deliver")`` runs the
named job shortly after the current transaction commits (and not at all if it rolls back).

The job engine (``portal.jobs``) plugs itself in when the app starts; with no engine (a CLI
command, a test) nothing is queued and the periodic run picks the work up instead, so asking is
always safe. Features call this; they never import the engine."""

from sqlalchemy import event

from portal.extensions import db

#: Set by the job engine: queues a job by name (never raises).
_enqueue = None
_PENDING = "portal_tasks_soon"
_LISTENING = "portal_tasks_listening"


def plug(enqueue) -> None:
    global _enqueue
    _enqueue = enqueue


def soon(name: str) -> None:
    """Queue the job ``name`` once the current transaction commits."""
    if _enqueue is None:
        return
    session = db.session()
    if not session.info.get(_LISTENING):
        event.listen(session, "after_commit", _after_commit)
        event.listen(session, "after_rollback", _after_rollback)
        session.info[_LISTENING] = True
    session.info.setdefault(_PENDING, set()).add(name)


def _after_commit(session) -> None:
    for name in sorted(session.info.pop(_PENDING, ())):
        _enqueue(name)


def _after_rollback(session) -> None:
    session.info.pop(_PENDING, None)
