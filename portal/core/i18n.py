"""Language choice (Chinese by default, English on request) and locale-aware formatting.

Time is shown one way, defined here and nowhere else: in Beijing time (the market's, China keeps no
daylight saving time), one format per language, for pages (the ``date`` and ``datetime`` filters),
PDFs, e-mails and downloads alike::

    Chinese   2026年12月3日        2026年12月3日 00:37（北京时间）
    English   3 Dec 2026           3 Dec 2026, 00:37 (Beijing time)

A moment is turned into Beijing time *before* its date is taken: 16:37 UTC on 2 December is
already 3 December in Beijing. Files for machines (CSV) carry ISO 8601 with the ``+08:00`` offset
(``iso_beijing``), spreadsheets real date cells (``SPREADSHEET_DATE_FORMATS``); the JSON API keeps
its ISO 8601 values as they are.
"""

from datetime import date, datetime
from decimal import Decimal
from urllib.parse import quote, urlencode

from flask import current_app, has_request_context, request, session, url_for
from flask_babel import format_currency, get_locale

from portal.timeutil import BEIJING


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


def locale_name() -> str:
    """The request's locale as ``str(get_locale())`` names it (``zh_Hans_CN``), without making
    Babel's ``Locale`` object: for answers that only name their language (a kept page). The
    ``LANGUAGES`` locales are written as Babel writes them (a test holds it)."""
    return select_locale()


def current_language() -> str:
    """The short code (``zh`` or ``en``) of the language in use."""
    return "en" if str(get_locale()).startswith("en") else "zh"


def colon() -> str:
    """What follows a label before its value: a full-width colon in Chinese (``受益方：``), a
    colon and a space in English."""
    return ": " if current_language() == "en" else "："


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


# --- time -----------------------------------------------------------------------------------------

#: English month names as dates are written here ("3 Dec 2026"): fixed, not a locale's data.
_MONTHS_EN = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_ZONE = {"zh": "北京时间", "en": "Beijing time"}
#: Number formats of date cells in spreadsheets (real dates, Beijing days), shown as pages show them.
SPREADSHEET_DATE_FORMATS = {"zh": 'yyyy"年"m"月"d"日"', "en": "d mmm yyyy"}


def in_beijing(value: date | datetime | str) -> date | datetime:
    """A moment (aware ``datetime`` or ISO 8601 text with its offset, as signed documents keep it)
    in Beijing time; a ``date`` (or ``YYYY-MM-DD``) is a Beijing business day already and stays
    as it is. A moment without a zone is refused: nothing here guesses what zone it meant."""
    if isinstance(value, str):
        value = date.fromisoformat(value) if len(value) == 10 else datetime.fromisoformat(value)
    if not isinstance(value, datetime):
        return value
    if value.tzinfo is None:
        raise ValueError(f"a moment without a time zone: {value!r}")
    return value.astimezone(BEIJING)


def _language(language: str | None) -> str:
    return language or current_language()


def date_text(value, language: str | None = None) -> str:
    """``2026年12月3日`` or ``3 Dec 2026``: the day (in Beijing) of a date or a moment."""
    if value is None or value == "":
        return "—"
    moment = in_beijing(value)
    day = moment.date() if isinstance(moment, datetime) else moment
    if _language(language) == "en":
        return f"{day.day} {_MONTHS_EN[day.month - 1]} {day.year}"
    return f"{day.year}年{day.month}月{day.day}日"


def datetime_text(value, language: str | None = None, *, zone: bool = True) -> str:
    """``2026年12月3日 00:37（北京时间）`` or ``3 Dec 2026, 00:37 (Beijing time)``; without the zone
    (``zone=False``) where it is stated once for many, as in a table's heading (``with_zone``)."""
    if value is None or value == "":
        return "—"
    language = _language(language)
    moment = in_beijing(value)
    if not isinstance(moment, datetime):
        raise ValueError(f"a date has no time of day: {value!r}")
    text = f"{date_text(moment, language)}{',' if language == 'en' else ''} {moment:%H:%M}"
    return with_zone(text, language) if zone else text


def month_text(year: int, month: int, language: str | None = None) -> str:
    """A calendar month: ``2026年1月`` or ``Jan 2026``."""
    if _language(language) == "en":
        return f"{_MONTHS_EN[month - 1]} {year}"
    return f"{year}年{month}月"


def period_text(start, end, language: str | None = None) -> str:
    """A span of days, such as a vintage: ``2021`` for a whole calendar year, else
    ``2021年1月1日 – 2021年6月30日`` or ``1 Jan 2021 – 30 Jun 2021``."""
    first, last = in_beijing(start), in_beijing(end)
    if (first.year, first.month, first.day, last.month, last.day) == (last.year, 1, 1, 12, 31):
        return str(first.year)
    return f"{date_text(first, language)} – {date_text(last, language)}"


def with_zone(text: str, language: str | None = None) -> str:
    """``text`` with the zone its times are in: ``注销时间（北京时间）``, ``Retired at (Beijing time)``."""
    if _language(language) == "en":
        return f"{text} ({_ZONE['en']})"
    return f"{text}（{_ZONE['zh']}）"


def iso_beijing(value) -> str:
    """ISO 8601 for files read by machines: ``2026-12-03T00:37:39+08:00``, or ``2026-12-03``."""
    if value is None:
        return ""
    moment = in_beijing(value)
    if isinstance(moment, datetime):
        return moment.replace(microsecond=0).isoformat()
    return moment.isoformat()


#: Joins a date's parts (and its time) on a page, so that a narrow column never splits them.
_NBSP = "\u00a0"


def _date_filter(value) -> str:
    """``{{ value | date }}``: ``date_text``, kept on one line."""
    return date_text(value).replace(" ", _NBSP)


def _datetime_filter(value, zone: bool = True) -> str:
    """``{{ value | datetime }}``: ``datetime_text``, its date and time kept on one line."""
    shown = datetime_text(value, zone=False).replace(" ", _NBSP)
    return with_zone(shown) if zone and value is not None and value != "" else shown


def _period(start, end) -> str:
    """``{{ period(start, end) }}``: ``period_text``, each date kept on one line."""
    return period_text(start, end).replace(" – ", "\u2002–\u2002").replace(" ", _NBSP)


#: Per translations object (one per language, kept by Flask-Babel): the template's gettext
#: functions bound to it.
_BOUND: dict[int, tuple] = {}


def _bound_gettext() -> dict:
    """Templates' ``_()``, ``gettext`` and ``ngettext`` bound to this request's translations,
    as template variables (they take precedence over the environment's). Flask-Babel's own
    look the translations up again at every call, which was half of drawing a page with many
    labels; these give exactly the same text (the same translations object, Jinja's own
    new-style wrappers: escaped, always %-formatted)."""
    from flask_babel import get_translations
    from jinja2.ext import _make_new_ngettext, _make_new_npgettext, _make_new_pgettext

    translations = get_translations()
    found = _BOUND.get(id(translations))
    if found is None or found[0] is not translations:
        if len(_BOUND) > 16:  # a few languages: more means translations objects made per call
            _BOUND.clear()
        found = _BOUND[id(translations)] = (
            translations,
            {
                "gettext": _kept_gettext(translations.ugettext),
                "ngettext": _make_new_ngettext(translations.ungettext),
                "pgettext": _make_new_pgettext(translations.upgettext),
                "npgettext": _make_new_npgettext(translations.unpgettext),
            },
        )
    return found[1]


def _kept_gettext(translate):
    """Jinja's new-style ``gettext`` for one language (``jinja2.ext._make_new_gettext``: the
    translation, escaped where the template autoescapes, always %-formatted), keeping what it
    made: each label's translation, and its text when it has no variables, which is most of a
    page's labels."""
    from jinja2 import pass_context
    from markupsafe import Markup

    kept: dict[tuple[str, bool], str] = {}
    finished: dict[tuple[str, bool], str] = {}

    @pass_context
    def gettext(__context, __string: str, **variables) -> str:
        key = (__string, __context.eval_ctx.autoescape)
        if not variables:
            done = finished.get(key)
            if done is not None:
                return done
        template = kept.get(key)
        if template is None:
            if len(kept) > 10_000:  # labels are literals: this many means something else
                kept.clear()
                finished.clear()
            template = kept[key] = Markup(translate(__string)) if key[1] else translate(__string)
        if variables:
            return template % variables
        done = finished[key] = template % {}
        return done

    return gettext


def register(app):
    app.context_processor(_bound_gettext)
    app.jinja_env.globals["period"] = _period
    app.jinja_env.filters["date"] = _date_filter
    app.jinja_env.filters["datetime"] = _datetime_filter
    app.jinja_env.globals["with_zone"] = with_zone
    # Time is shown one way only: Flask-Babel's own filters (each locale's own patterns, short
    # forms such as 2026/12/3 and 12/3/26) are taken away, so a template using one fails loudly.
    for name in ("dateformat", "datetimeformat", "timeformat"):
        app.jinja_env.filters.pop(name, None)
    app.jinja_env.filters["yuan"] = yuan
    app.jinja_env.globals["yuan"] = yuan
    app.jinja_env.globals["localized"] = localized
    app.jinja_env.globals["current_language"] = current_language
    app.jinja_env.globals["colon"] = colon
    app.jinja_env.globals["url_with_language"] = url_with_language


#: Where an application keeps its routes bound for links built outside a request.
_ROUTES = "portal.routes_bound"


def absolute_url(endpoint: str, **values) -> str:
    """An absolute link for e-mails and certificates, always on PORTAL_BASE_URL: never built from
    the request's Host header, which a client controls (a reset link must not point elsewhere)."""
    base = current_app.config["BASE_URL"].rstrip("/")
    if has_request_context():
        return base + url_for(endpoint, **values)
    # Outside a request (a job, a command, a webhook handled in process): the routes bound once
    # per app, as ``url_for`` builds a path in a request (a request made for each link cost a
    # hundred microseconds, and a fulfilment's receipt has two).
    app = current_app._get_current_object()
    adapter = app.extensions.get(_ROUTES)
    if adapter is None:
        adapter = app.extensions[_ROUTES] = app.url_map.bind("localhost")
    app.inject_url_defaults(endpoint, values)
    return base + adapter.build(endpoint, values)
