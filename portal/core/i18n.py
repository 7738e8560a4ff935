"""Language choice (Chinese by default, English on request) and locale-aware formatting."""

from decimal import Decimal
from urllib.parse import quote, urlencode

from flask import current_app, has_request_context, request, session, url_for
from flask_babel import format_currency, get_locale


def select_locale():
    languages = current_app.config["LANGUAGES"]
    if not has_request_context():  # CLI commands and background work
        return current_app.config["BABEL_DEFAULT_LOCALE"]
    asked = request.args.get("lang")
    if asked in languages:
        session["lang"] = asked
        return languages[asked]
    remembered = session.get("lang")
    if remembered in languages:
        return languages[remembered]
    if request.path.startswith("/api/"):  # API clients say what they read in the usual header
        best = request.accept_languages.best_match(["zh", "zh-CN", "en"])
        if best:
            return languages["en" if best == "en" else "zh"]
    return current_app.config["BABEL_DEFAULT_LOCALE"]


def current_language() -> str:
    """The short code (``zh`` or ``en``) of the language in use."""
    return "en" if str(get_locale()).startswith("en") else "zh"


def localized(obj, field: str) -> str:
    """``obj.<field>_zh`` or ``obj.<field>_en`` by the current language, falling back to Chinese."""
    value = getattr(obj, f"{field}_{current_language()}", None)
    return value or getattr(obj, f"{field}_zh")


def localized_en(obj, field: str) -> str:
    """The English text of a bilingual field, falling back to Chinese where none was given."""
    return getattr(obj, f"{field}_en", None) or getattr(obj, f"{field}_zh")


def url_with_language(code: str) -> str:
    """The current page's URL with ``lang`` set, every other query argument kept."""
    args = request.args.to_dict(flat=False)
    args["lang"] = [code]
    # Always a path on this site: one leading slash (never "//host" or "/\\host"), percent-encoded.
    path = "/" + quote(request.path.lstrip("/\\"), safe="/")
    return path + "?" + urlencode(args, doseq=True)


def yuan(amount) -> str:
    """Money in yuan for the current locale: ¥68.00 in Chinese, CN¥68.00 in English."""
    return format_currency(Decimal(amount), "CNY")


def register(app):
    app.jinja_env.filters["yuan"] = yuan
    app.jinja_env.globals["yuan"] = yuan
    app.jinja_env.globals["localized"] = localized
    app.jinja_env.globals["current_language"] = current_language
    app.jinja_env.globals["url_with_language"] = url_with_language


def absolute_url(endpoint: str, **values) -> str:
    """An absolute link for e-mails and certificates, always on PORTAL_BASE_URL: never built from
    the request's Host header, which a client controls (a reset link must not point elsewhere)."""
    base = current_app.config["BASE_URL"].rstrip("/")
    if has_request_context():
        return base + url_for(endpoint, **values)
    with current_app.test_request_context("/"):
        return base + url_for(endpoint, **values)
