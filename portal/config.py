"""Configuration defaults. ``PORTAL_*`` environment variables override them (see README.md and docs/deployment.md)."""

import os
import secrets
from pathlib import Path

DEFAULTS = {
    "BASE_URL": "http://127.0.0.1:8000",
    "LOG_FORMAT": "json",  # or "text"
    "LOG_LEVEL": "INFO",
    "BABEL_DEFAULT_LOCALE": "zh_Hans_CN",  # zh_CN, as Babel names it
    "BABEL_DEFAULT_TIMEZONE": "Asia/Shanghai",
    "LANGUAGES": {"zh": "zh_Hans_CN", "en": "en"},
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "REMEMBER_COOKIE_HTTPONLY": True,
    "REMEMBER_COOKIE_SAMESITE": "Lax",
    "REMEMBER_COOKIE_DURATION": 14 * 24 * 3600,
    "SQLALCHEMY_TRACK_MODIFICATIONS": False,
    # Connections older than this are replaced (a proxy's idle cut-off). A connection the
    # database dropped (restarted, or terminated by an administrator) is found when it is taken
    # from the pool and replaced (``core.database._check_on_checkout``): not a failed request.
    "SQLALCHEMY_ENGINE_OPTIONS": {"pool_recycle": 300},
    "CATALOG_PER_PAGE": 20,
    # Demo only (``make run`` turns it on): sent mail is shown to operators at /staff/outbox and
    # written whole to the log, so that sign-ups can be confirmed without a mail server. Never
    # where mail really goes out (with PORTAL_SMTP_HOST set it stays off).
    "MAIL_OUTBOX_PAGE": False,
    # Request bodies: forms and API calls need kilobytes (the largest, a contract with 120
    # tranches, about 10 kB). Views that take more say so with ``core.limits.body_limit`` (the
    # certificate PDF upload, a project's boundary); a bigger body is refused before it is read.
    "MAX_CONTENT_LENGTH": 64 * 1024,
    # Fields per form, url-encoded or multipart (the contract form, the largest, has under 300).
    "MAX_FORM_PARTS": 1000,
    # The portal's document-signing certificate (PDF signatures): PEM files of the certificate,
    # its private key and the authority's chain (intermediates and root). Unset: a portal CA and
    # a signing certificate are generated into instance/document-signing/ on first use. Roots of
    # earlier chains whose PDFs must still verify: PDF_SIGNING_TRUSTED_ROOTS_FILE.
    "PDF_SIGNING_CERT_FILE": None,
    "PDF_SIGNING_KEY_FILE": None,
    "PDF_SIGNING_CHAIN_FILE": None,
    "PDF_SIGNING_TRUSTED_ROOTS_FILE": None,
    # Uploaded PDFs checked at once on this machine (each in a limited child process; one more
    # is refused at once with 503 rather than queued behind the others), and per client address
    # in ten minutes.
    "VERIFY_CONCURRENCY": 1,
    "VERIFY_UPLOAD_LIMIT": 20,
    # Background jobs' queue (portal/jobs/engine.py): unset → SQLite beside a SQLite database, or
    # the portal's PostgreSQL database; "redis://…" → Redis; "memory:" → in-process (tests).
    "JOBS_URL": "",
    # Webhook endpoints on local or private addresses: None → allowed only in the embedded
    # default (SQLite); set true or false to decide. Seconds for one delivery's whole exchange.
    "WEBHOOKS_ALLOW_PRIVATE": None,
    "WEBHOOKS_TIMEOUT": 5.0,
    # A registry instruction still pending after this many working days (Monday to Friday,
    # Beijing dates) is flagged on the dashboard and mailed to the operators, once.
    "REGISTRY_OVERDUE_WORKING_DAYS": 5,
    # The most tonnes one buyer (an organisation, or a guest by e-mail address) may order on one
    # Beijing day, whole tonnes (portal/buyers/policy.py).
    "ORDER_DAY_LIMIT_T": 10_000,
    # /metrics (portal/ops/metrics.py): who may read it. Addresses or networks, comma-separated
    # (default: this machine only), and/or a bearer token; anyone else gets 404.
    "METRICS_ALLOW": "127.0.0.1/32,::1/128",
    "METRICS_TOKEN": "",
    # API calls per key (or per client address for calls without one) in API_RATE_WINDOW seconds;
    # announced in RateLimit-* headers (docs/api.md).
    "API_RATE_LIMIT": 300,
    "API_RATE_WINDOW": 60,
    # The seller named on orders, receipts, invoices, contracts and fapiao requests (see
    # portal/core/seller.py): legal name, unified social credit code and the payee bank account.
    "SELLER_NAME_ZH": "赤峰市农投集团",
    "SELLER_NAME_EN": "Chifeng Agricultural Investment Group",
    "SELLER_USCC": "91150400MA0N00000F",
    "SELLER_BANK": "中国农业银行赤峰分行营业部",
    "SELLER_BANK_ACCOUNT": "15010101040012345",
    # Orders above this amount (yuan, read as a decimal) may be paid by bank transfer (对公转账);
    # such an order holds its credits this many days from when it was placed, not 30 minutes.
    "BANK_TRANSFER_THRESHOLD": "50000.00",
    "BANK_TRANSFER_HOLD_DAYS": 7,
}

#: Environment variables that keep their own names (Stripe's conventional ones).
PLAIN_ENV = ("STRIPE_SECRET_KEY", "STRIPE_PUBLISHABLE_KEY", "STRIPE_API_BASE", "STRIPE_WEBHOOK_SECRET")


def load(app, overrides=None):
    """Fill ``app.config``: defaults, then the environment, then ``overrides`` (tests)."""
    app.config.from_mapping(DEFAULTS)
    app.config.from_prefixed_env("PORTAL")
    for name in PLAIN_ENV:
        if name in os.environ:
            app.config[name] = os.environ[name]
    if overrides:
        app.config.update(overrides)

    instance = Path(app.instance_path)
    url = app.config.get("DATABASE_URL") or f"sqlite:///{instance / 'portal.db'}"
    app.config["SQLALCHEMY_DATABASE_URI"] = url
    if url_is_sqlite(app.config["SQLALCHEMY_DATABASE_URI"]):
        instance.mkdir(parents=True, exist_ok=True)
        # A writer waits for the lock instead of failing at once.
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {"connect_args": {"timeout": 30}}
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = _instance_secret(instance / "secret-key")
    if not app.config.get("DEBUG") and not app.config.get("TESTING"):
        # Served over HTTPS (PORTAL_BASE_URL says so): cookies only ever travel encrypted.
        secure = app.config["BASE_URL"].startswith("https://")
        for name in ("SESSION_COOKIE_SECURE", "REMEMBER_COOKIE_SECURE"):
            if name not in (overrides or {}) and f"PORTAL_{name}" not in os.environ:
                app.config[name] = secure


def url_is_sqlite(url: str) -> bool:
    return str(url).startswith("sqlite")


def _instance_secret(path: Path) -> str:
    """Read the session key from the instance folder, creating it (mode 600) on first run."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        key = secrets.token_hex(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(key)
        return key
