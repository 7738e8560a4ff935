"""The Chifeng carbon-sink marketplace portal. ``create_app`` builds it; nothing happens at import."""

import os
from pathlib import Path

#: The repository root: static/, migrations/ and instance/ live beside the package.
_ROOT = Path(__file__).resolve().parent.parent


def create_app(config=None):
    """Build the application. ``config`` (a mapping) overrides defaults and the environment."""
    instance = (
        (config or {}).get("INSTANCE_PATH") or os.environ.get("PORTAL_INSTANCE_PATH") or _ROOT / "instance"
    )
    from portal.core.templating import Portal

    app = Portal(__name__, static_folder=str(_ROOT / "static"), instance_path=str(instance))
    from portal import config as config_module

    config_module.load(app, config)

    from portal import log

    log.configure(app)

    if app.config.get("PROXY_FIX_X_FOR"):
        # Behind a reverse proxy: take the client address from X-Forwarded-For, trusting only
        # as many hops as configured (throttling by address depends on it).
        from werkzeug.middleware.proxy_fix import ProxyFix

        hops = int(app.config["PROXY_FIX_X_FOR"])
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)

    from portal.extensions import babel, csrf, db, login_manager, migrate

    db.init_app(app)
    migrate.init_app(app, db, directory=str(_migrations_dir()))
    csrf.init_app(app)
    login_manager.init_app(app)

    from portal import models  # noqa: F401  (every model registered before the first query)
    from portal.core import i18n

    babel.init_app(app, locale_selector=i18n.select_locale, timezone_selector=None)

    from portal.core import database

    database.configure(app)

    from portal.alliance.views import bp as alliance_bp
    from portal.api import issuances as _issuances_api  # noqa: F401  (routes on api_bp)
    from portal.api import openapi as _openapi  # noqa: F401  (routes on api_bp)
    from portal.api.reference import bp as api_reference_bp
    from portal.api.views import bp as api_bp
    from portal.buyers.views import bp as buyers_bp
    from portal.catalog.views import bp as catalog_bp
    from portal.certificates import api as _certificates_api  # noqa: F401  (routes on api_bp)
    from portal.certificates.views import bp as certificates_bp
    from portal.contracts import api as _contracts_api  # noqa: F401  (routes on api_bp)
    from portal.contracts.views import bp as contracts_bp
    from portal.core.views import bp as core_bp
    from portal.fapiao.views import bp as fapiao_bp
    from portal.offsets import api as _offsets_api  # noqa: F401  (routes on api_bp)
    from portal.offsets import orders_api as _orders_api  # noqa: F401  (routes on api_bp)
    from portal.offsets.calculator_views import bp as estimate_bp
    from portal.offsets.views import bp as offsets_bp
    from portal.ops.views import bp as ops_bp
    from portal.payments.views import bp as payments_bp
    from portal.pipeline import api as _pipeline_api  # noqa: F401  (routes on api_bp)
    from portal.pipeline import public as pipeline_public
    from portal.pipeline.views import bp as pipeline_bp

    pipeline_public.register()  # project pages show their development history
    from portal.registry import api as _registry_api  # noqa: F401  (routes on api_bp)
    from portal.registry import views_statements as _registry_statements  # noqa: F401  (routes on registry_bp)
    from portal.registry.views import bp as registry_bp
    from portal.revenue import api as _revenue_api  # noqa: F401  (routes on api_bp)
    from portal.revenue.views import bp as revenue_bp
    from portal.rfq import views_staff as _rfq_staff  # noqa: F401  (routes on rfq_bp)
    from portal.rfq.views import bp as rfq_bp
    from portal.staff.views import bp as staff_bp
    from portal.transparency import api as _transparency_api  # noqa: F401  (routes on api_bp)
    from portal.transparency import appending

    appending.register()  # certificate events are appended to the log as their transaction commits
    from portal.webhooks import api as _webhooks_api  # noqa: F401  (routes on api_bp)
    from portal.webhooks.views import bp as webhooks_bp

    app.register_blueprint(core_bp)
    app.register_blueprint(catalog_bp)
    app.register_blueprint(api_bp)
    app.register_blueprint(api_reference_bp)
    app.register_blueprint(buyers_bp)
    app.register_blueprint(staff_bp)
    app.register_blueprint(certificates_bp)
    app.register_blueprint(estimate_bp)
    app.register_blueprint(offsets_bp)
    app.register_blueprint(payments_bp)
    app.register_blueprint(revenue_bp)
    app.register_blueprint(contracts_bp)
    app.register_blueprint(rfq_bp)
    app.register_blueprint(webhooks_bp)
    app.register_blueprint(registry_bp)
    app.register_blueprint(pipeline_bp)
    app.register_blueprint(ops_bp)
    app.register_blueprint(fapiao_bp)
    app.register_blueprint(alliance_bp)
    csrf.exempt(payments_bp)  # Stripe signs its webhooks; there is no session
    csrf.exempt(api_bp)  # bearer-key authenticated, no cookies

    from portal.core import errors, limits, security, throttle
    from portal.ops import metrics

    limits.register(app)
    throttle.register(app)
    metrics.register(app)
    errors.register(app)
    security.register(app)
    i18n.register(app)

    from portal import template_globals
    from portal.catalog import cache

    template_globals.register(app)
    cache.register(app)

    from portal import cli
    from portal.jobs import engine as jobs

    cli.register(app)
    jobs.plug()
    return app


def _migrations_dir():
    return _ROOT / "migrations"
