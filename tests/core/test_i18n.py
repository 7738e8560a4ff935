"""Both catalogs complete, every message in the code translated, money formatted per locale."""

import sys
from decimal import Decimal
from pathlib import Path

from babel.messages.pofile import read_po
from flask_babel import refresh

from portal.core.i18n import yuan

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
import i18n  # noqa: E402


def test_no_untranslated_or_fuzzy_entries():
    assert [p for locale in i18n.LOCALES for p in i18n.problems(locale)] == []


def test_every_message_in_the_code_is_in_both_catalogs(tmp_path):
    pot = tmp_path / "messages.pot"
    i18n.extract(pot)
    with pot.open("rb") as f:
        wanted = {m.id if isinstance(m.id, str) else m.id[0] for m in read_po(f) if m.id}
    for locale in i18n.LOCALES:
        with i18n.catalog_path(locale).open("rb") as f:
            have = {m.id if isinstance(m.id, str) else m.id[0] for m in read_po(f) if m.id}
        assert wanted - have == set(), f"{locale}: run `python scripts/i18n.py update` and translate"


def test_yuan_per_locale(app):
    with app.test_request_context("/?lang=zh"):
        assert yuan(Decimal("68")) == "¥68.00"
    with app.test_request_context("/?lang=en"):
        refresh()
        assert yuan(Decimal("68.5")) == "CN¥68.50"


def test_the_chinese_follows_the_glossary():
    """docs/glossary.md: one word for each thing (注销, 抵销, 撤销, 交付批次 …), in the catalog and in
    Chinese written in the code (PDF texts, demo data)."""
    assert i18n.glossary_problems() == []


def test_the_glossary_check_catches_a_wrong_word(tmp_path, monkeypatch):
    from babel.messages.catalog import Catalog
    from babel.messages.pofile import write_po

    catalog = Catalog(locale="zh_Hans_CN")
    catalog.add("Revoke this certificate", "吊销该证书")
    catalog.add("Deliver a tranche", "交付一个批次")
    catalog.add("Tonnes: %(quantity)s", "吨数：%(quantity)s")  # a placeholder is not a word
    path = tmp_path / "zh_Hans_CN" / "LC_MESSAGES" / "messages.po"
    path.parent.mkdir(parents=True)
    with path.open("wb") as f:
        write_po(f, catalog)
    monkeypatch.setattr(i18n, "catalog_path", lambda locale: path)
    monkeypatch.setattr(i18n, "SOURCES", ())
    found = "\n".join(i18n.glossary_problems())
    assert "'revoke' is '撤销'" in found and "never '吊销'" in found and "never '证书'" in found
    assert "'tranche' is '交付批次'" in found
    assert "quantity" not in found


def test_templates_gettext_gives_what_jinjas_own_gives_and_keeps_it(app):
    """The kept gettext (``core.i18n._kept_gettext``) against Jinja's own new-style wrapper over
    the same translations, twice (the second time from what it kept): escaping of variables,
    ``%%``, autoescape on and off, in both languages."""
    from flask_babel import force_locale, get_translations
    from jinja2 import Environment
    from jinja2.ext import _make_new_gettext

    from portal.core.i18n import _bound_gettext

    source = (
        '{{ _("Valid") }}|{{ _("Logged at index %(index)s", index=x) }}|{{ _("100%% of <b>%(n)s</b>", n=x) }}'
        '|{{ _("on %(date)s", date=x) }}'
    )
    with app.test_request_context("/"):
        for language in ("zh_Hans_CN", "en"):
            with force_locale(language):
                refresh()
                ours = _bound_gettext()["gettext"]
                theirs = _make_new_gettext(get_translations().ugettext)
                for autoescape in (True, False):
                    environment = Environment(extensions=["jinja2.ext.i18n"], autoescape=autoescape)
                    template = environment.from_string(source)
                    expected = template.render(gettext=theirs, x="<i>7</i>")
                    for _ in range(2):
                        assert template.render(gettext=ours, x="<i>7</i>") == expected
                    assert ("&lt;i&gt;" in expected) == autoescape
        with force_locale("zh_Hans_CN"):
            refresh()
            assert "有效" in environment.from_string('{{ _("Valid") }}').render(
                gettext=_bound_gettext()["gettext"]
            )


def test_locale_name_is_what_babel_names_the_locale_for_every_language_and_request(app):
    """Kept certificate pages are found by ``locale_name()``; pages are drawn in
    ``get_locale()``'s language: the two must agree, asked by ``?lang=``, by the session, by the
    API's Accept-Language or by default."""
    from flask_babel import get_locale

    from portal.core.i18n import locale_name

    asks = [("/", {}), ("/api/v1/batches", {"Accept-Language": "en-GB,en;q=0.9"})]
    asks += [(f"/verify?lang={code}", {}) for code in app.config["LANGUAGES"]]
    for path, headers in asks:
        with app.test_request_context(path, headers=headers):
            refresh()  # Babel keeps its answer in the application context, which the test keeps
            assert locale_name() == str(get_locale())
    for code in app.config["LANGUAGES"]:
        with app.test_request_context("/verify"):
            from flask import session

            session["lang"] = code
            refresh()
            assert locale_name() == str(get_locale()) == app.config["LANGUAGES"][code]


def test_absolute_url_outside_a_request_is_the_link_a_request_builds(app):
    """Jobs and commands build links on the routes bound once; a request builds them with
    ``url_for``: the same address either way, on PORTAL_BASE_URL, whatever the request's host."""
    import pytest
    from werkzeug.routing import BuildError

    from portal.core.i18n import absolute_url

    asks = [
        ("certificates.show", {"number": "CF-2026-000123"}),
        ("certificates.certificate_pdf", {"number": "CF-2026-000123"}),
        ("offsets.order", {"public_id": "ord_ABC"}),
        ("certificates.show", {"number": "赤峰 1/2", "lang": "en", "x": None}),
    ]
    outside = [absolute_url(endpoint, **dict(values)) for endpoint, values in asks]
    with app.test_request_context("/", base_url="http://attacker.example"):
        inside = [absolute_url(endpoint, **dict(values)) for endpoint, values in asks]
    assert outside == inside
    assert all(link.startswith(app.config["BASE_URL"].rstrip("/") + "/") for link in outside)
    assert outside[0].endswith("/certificates/CF-2026-000123")
    assert "lang=en" in outside[3] and "x=" not in outside[3]
    with pytest.raises(BuildError):
        absolute_url("certificates.no_such_page")
