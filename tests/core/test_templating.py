"""Templates compiled per language (``core.templating``): the same output as Jinja's gettext at
run time, with the labels translated once, when the template is compiled."""

from pathlib import Path

import pytest
from flask import render_template_string
from flask_babel import force_locale, get_translations, refresh
from jinja2.ext import _make_new_gettext

from portal.core import templating

ROOT = Path(__file__).resolve().parents[2] / "portal"

SOURCE = (
    '{{ _("Valid") }}|{{ gettext("Revoked") }}|{{ _("Logged at index %(index)s", index=x) }}'
    '|{{ _("100%% of <b>%(n)s</b>", n=x) }}|{{ _("on %(date)s", date=x) }}'
    "|{% trans %}Signature{% endtrans %}|{% trans n=x %}Tonnes: %(n)s{% endtrans %}"
    '|{{ current_language() }}|{% if current_language() == "en" %}EN{% else %}ZH{% endif %}'
    '|{{ _("A label nobody translated") }}|{{ (_("Valid") ~ x) }}'
)


def _runtime(environment, source, **variables):
    """What Jinja's own new-style gettext gives, at run time, with the request's translations."""
    from portal.core.i18n import current_language

    template = environment.from_string(source)
    return template.render(
        gettext=_make_new_gettext(get_translations().ugettext),
        current_language=current_language,
        **variables,
    )


@pytest.mark.parametrize("language", ["zh", "en"])
@pytest.mark.parametrize("autoescape", [True, False])
def test_folded_labels_read_exactly_as_runtime_gettext_gives_them(app, language, autoescape):
    with app.test_request_context(f"/?lang={language}"):
        refresh()
        overlay = app.jinja_env
        base = app._jinja_base
        assert overlay is not base and overlay.language == language
        saved = overlay.autoescape, base.autoescape
        overlay.autoescape = base.autoescape = autoescape
        try:
            folded = overlay.from_string(SOURCE).render(x="<i>7</i>")
            expected = _runtime(base, SOURCE, x="<i>7</i>")
        finally:
            overlay.autoescape, base.autoescape = saved
        assert folded == expected
        assert ("&lt;i&gt;7&lt;/i&gt;" in folded) == autoescape
        assert ("有效" in folded) == (language == "zh")
        assert folded.count("ZH" if language == "zh" else "EN") == 1


def test_the_labels_are_compiled_into_the_template(app):
    """The point of it all: no gettext call is left for a fixed label, the translation is in the
    compiled code (and a label with variables keeps only the % formatting)."""
    with app.test_request_context("/?lang=zh"):
        refresh()
        code = app.jinja_env.compile('{{ _("Valid") }}{{ _("on %(date)s", date=x) }}', raw=True)
        assert "有效" in code and "gettext" not in code and "'_'" not in code
        plain = app._jinja_base.compile('{{ _("Valid") }}', raw=True)
        assert "有效" not in plain and "'_'" in plain


@pytest.mark.parametrize(
    "source",
    [
        '{% set _ = upper %}{% include "x.html" %}',
        '{% for current_language in [upper] %}{% include "x.html" %}{% endfor %}',
        '{% macro m(_) %}{{ _("Valid") }}{% endmacro %}{{ m(upper) }}',
        '{% with gettext = upper %}{% include "x.html" %}{% endwith %}',
        '{% import "x.html" as _ %}',
        '{% from "x.html" import y as current_language %}',
    ],
)
def test_a_template_that_gives_a_folded_name_its_own_meaning_is_refused(app, source):
    """An included template shares its includer's names, but is compiled on its own: were the
    includer allowed to rebind ``_``, the included labels would be translated regardless. So a
    template doing it is refused, in every language (outside a request it still renders)."""
    from jinja2 import TemplateSyntaxError

    for language in ("zh", "en"):
        with app.test_request_context(f"/?lang={language}"):
            refresh()
            with pytest.raises(TemplateSyntaxError, match="may not be given a meaning of its own"):
                app.jinja_env.from_string(source)
    assert (
        app._jinja_base.from_string('{% set _ = upper %}{{ _("Valid") }}').render(upper=str.upper) == "VALID"
    )


def test_a_forced_language_draws_with_that_languages_templates(app):
    """An e-mail or PDF drawn in the recipient's language inside a request in another one."""
    with app.test_request_context("/?lang=en"):
        refresh()
        assert render_template_string('{{ _("Valid") }}') == "Valid"
        with force_locale("zh_Hans_CN"):
            assert render_template_string('{{ _("Valid") }}') == "有效"
        assert render_template_string('{{ _("Valid") }}') == "Valid"


def test_outside_a_request_templates_translate_at_run_time(app):
    """Background jobs and the CLI draw with the application's own environment."""
    assert app.jinja_env is app._jinja_base
    with force_locale("zh_Hans_CN"):
        assert app.jinja_env.from_string('{{ _("Valid") }}').render() == "有效"


@pytest.mark.parametrize("language", ["zh", "en"])
def test_every_template_of_the_portal_compiles_in_each_language(app, language):
    """Folding never breaks a template: each one compiles, in each language's environment, to a
    template whose code differs from the plain one only where it had labels."""
    names = sorted(
        "/".join(path.relative_to(folder).parts)
        for folder in ROOT.rglob("templates")
        if folder.is_dir()
        for path in folder.rglob("*")
        if path.is_file()
    )
    assert len(names) > 50
    with app.test_request_context(f"/?lang={language}"):
        refresh()
        environment = app.jinja_env
        assert isinstance(environment, templating.Environment) and environment.translate is not None
        for name in names:
            environment.get_template(name)


def test_templates_links_are_kept_per_script_root_and_equal_flasks(app):
    from flask import url_for

    source = (
        "{{ url_for('certificates.verify') }}|{{ url_for('catalog.project', code=c) }}"
        "|{{ url_for('certificates.verify', _external=True) }}|{{ url_for('static', filename='css/portal.css') }}"
    )
    for root in ("", "/portal"):
        for _ in range(2):  # built, then kept
            with app.test_request_context("/", base_url=f"http://example.test{root}/"):
                drawn = render_template_string(source, c="P-1")
                expected = "|".join(
                    (
                        url_for("certificates.verify"),
                        url_for("catalog.project", code="P-1"),
                        url_for("certificates.verify", _external=True),
                        url_for("static", filename="css/portal.css"),
                    )
                )
                assert drawn == expected
                assert drawn.startswith(f"{root}/verify|{root}/")


def test_links_built_in_python_are_kept_too_and_options_are_honoured(app):
    from flask import url_for

    with app.test_request_context("/"):
        app._kept_links.clear()
        assert url_for("catalog.project", code="P-1") == "/projects/P-1"
        assert url_for("catalog.project", code="P-1") == "/projects/P-1"
        assert len(app._kept_links) == 1
        assert url_for("catalog.project", code="P-1", _anchor="buy") == "/projects/P-1#buy"
        assert url_for("catalog.project", code="P-1", _external=True) == "http://localhost/projects/P-1"
        assert url_for("catalog.project", code=1.5) == "/projects/1.5"  # not a plain value: built
        assert len(app._kept_links) == 1
