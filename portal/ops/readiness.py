"""Readiness (``/readyz``): whether this process can do its work now, for a load balancer or an
orchestrator to route to it. Liveness (``/healthz``) is the core's and touches nothing.

Each check answers "ok" or a short reason (never a path or a secret: the answer is public):

- ``database``: a round trip to the database;
- ``migrations``: the database's Alembic revision is the code's head (the head is read from the
  migration scripts once per process; a database found at head is not asked again for
  ``AT_HEAD_FOR`` seconds);
- ``signing_key``: the certificates' Ed25519 key loads (or, in the embedded default, will be
  generated on first use);
- ``pdf_signing``: the document-signing certificate and its key load and belong together;
- ``jobs_queue``: the background jobs' queue answers.
"""

import time
from pathlib import Path

from flask import current_app
from sqlalchemy import text

from portal.extensions import db

#: Seconds a database found at the code's head is taken to stay there.
AT_HEAD_FOR = 30.0


def _script_head(app) -> str:
    cache = app.extensions.setdefault("portal.readiness", {})
    if "head" not in cache:
        from alembic.config import Config
        from alembic.script import ScriptDirectory

        config = Config()
        config.set_main_option("script_location", str(app.extensions["migrate"].directory))
        cache["head"] = ScriptDirectory.from_config(config).get_current_head()
    return cache["head"]


def _database() -> str:
    db.session.execute(text("SELECT 1"))
    return "ok"


def _migrations() -> str:
    app = current_app._get_current_object()
    cache = app.extensions.setdefault("portal.readiness", {})
    if time.monotonic() < cache.get("at_head_until", 0.0):
        return "ok"
    head = _script_head(app)
    try:
        current = db.session.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    except Exception:
        db.session.rollback()
        return "the database has no migrations applied"
    if current != [head]:
        return f"the database is at {', '.join(current) or 'no revision'}, the code at {head}"
    cache["at_head_until"] = time.monotonic() + AT_HEAD_FOR
    return "ok"


def _signing_key() -> str:
    from portal.certificates import signing

    path = signing.key_file()
    if not path.exists():
        if current_app.config.get("SIGNING_KEY_FILE"):
            return "the configured signing key file is missing"
        return "ok"  # the embedded default generates it on first use
    try:
        signing._load(path)
    except Exception:
        return "the signing key cannot be read"
    return "ok"


def _pdf_signing() -> str:
    from portal.pdf import authority

    config = current_app.config
    if not (config.get("PDF_SIGNING_CERT_FILE") or config.get("PDF_SIGNING_KEY_FILE")):
        folder = Path(current_app.instance_path) / authority.FOLDER
        if not (folder / authority.SIGNER_KEY).exists():
            return "ok"  # the embedded default generates its certificate on first use
    try:
        authority.current_authority()  # cached until a file changes
    except Exception:
        return "the document-signing certificate or its key cannot be read"
    return "ok"


def _jobs_queue() -> str:
    from portal.jobs import engine

    try:
        engine.huey_of(current_app._get_current_object()).storage.queue_size()
    except Exception:
        return "the jobs queue cannot be reached"
    return "ok"


CHECKS = {
    "database": _database,
    "migrations": _migrations,
    "signing_key": _signing_key,
    "pdf_signing": _pdf_signing,
    "jobs_queue": _jobs_queue,
}


def check() -> dict[str, str]:
    """Every check's answer: "ok" or why not. A check that cannot even run says so; the checks
    after the database's are skipped when it is down (they would only repeat it)."""
    results = {}
    for name, probe in CHECKS.items():
        if name == "migrations" and results.get("database") != "ok":
            results[name] = "not checked: no database"
            continue
        try:
            results[name] = probe()
        except Exception:
            db.session.rollback()
            results[name] = "unreachable" if name == "database" else "the check failed"
    return results
