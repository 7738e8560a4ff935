"""Templates compiled once per language, their fixed labels translated as they are compiled.

A page's labels (``{{ _("Beneficiary") }}``, ``{% trans %}`` blocks) are the same for every
visitor in a language, yet Jinja's gettext looks each one up again whenever a page is drawn; on
a certificate page that was a third of its cost. Here every request renders with its language's
own template environment (an overlay of the application's: the same loader, globals, filters
and extensions, its own compiled templates), which replaces, while compiling:

- ``_("text")`` and ``gettext("text")`` (with or without ``%(name)s`` variables) by the
  translation itself, marked safe where the template autoescapes and %-formatted with the
  variables at run time: exactly what Jinja's new-style gettext returns
  (``jinja2.ext._make_new_gettext``), computed once;
- ``current_language()`` by the language's code.

And ``url_for`` keeps the links it built (``Portal.url_for``).

Nothing else changes. A template may not give one of these names a meaning of its own
(``{% set _ = … %}``, a loop variable, a macro argument, an import): it is refused as it is
compiled, since a template it includes, compiled on its own, could not know. Outside a request (e-mails from background
jobs, the CLI) templates are drawn by the application's own environment, with gettext at run
time. Translations are read when a template is first compiled in a language: a changed catalogue
is shown after a restart, as Flask-Babel's own cache of catalogues already requires.
"""

from functools import cached_property

from flask import Flask, has_request_context, request
from flask.templating import Environment as FlaskEnvironment
from jinja2 import TemplateSyntaxError, nodes
from jinja2.visitor import NodeTransformer

#: The names folded at compile time.
_GETTEXT = frozenset({"_", "gettext"})
_FOLDED = _GETTEXT | {"current_language"}


class Environment(FlaskEnvironment):
    #: On a language's overlay: its code (``zh`` or ``en``) and its translations' gettext.
    language: str | None = None
    translate = None

    def _parse(self, source, name, filename):
        tree = super()._parse(source, name, filename)
        if self.translate is not None:
            bound = _binds_folded_names(tree)
            if bound is not None:
                raise TemplateSyntaxError(
                    f"{bound.name if isinstance(bound, nodes.Name) else 'an import'} may not be given "
                    f"a meaning of its own: {', '.join(sorted(_FOLDED))} are translated as templates are "
                    "compiled (portal/core/templating.py)",
                    bound.lineno,
                    name,
                    filename,
                )
            tree = _Fold(self).visit(tree)
        return tree


#: Values a kept link may be built from: their text is the same whatever the request.
_PLAIN = (str, int)


class Portal(Flask):
    """The application: Flask, with templates compiled per language (see the module)."""

    jinja_environment = Environment

    @cached_property
    def _jinja_base(self) -> Environment:
        return self.create_jinja_environment()

    @cached_property
    def _kept_links(self) -> dict:
        return {}

    def url_for(self, /, endpoint: str, **values) -> str:
        """Flask's, keeping each link built from an absolute endpoint and plain values (text,
        whole numbers) during a request, per script root: the only part of the request a
        relative link depends on (the portal has no URL defaults, subdomains or host matching).
        A page's navigation is the same dozen links on every page. Links with options
        (``_external``, ``_anchor`` …), relative endpoints (``.index``) and links built outside
        a request are built every time."""
        if endpoint[:1] == "." or not has_request_context():
            return super().url_for(endpoint, **values)
        for name, value in values.items():
            # ``flask.url_for`` passes each option, None when not asked for.
            if (value is not None) if name[:1] == "_" else (type(value) not in _PLAIN):
                return super().url_for(endpoint, **values)
        key = (request.script_root, endpoint, *values.items())
        kept = self._kept_links
        found = kept.get(key)
        if found is None:
            found = super().url_for(endpoint, **values)
            if len(kept) >= 4096:  # a page's own links (a certificate's, a project's) come and go
                kept.clear()
            kept[key] = found
        return found

    @property
    def jinja_env(self) -> Environment:  # type: ignore[override]
        base = self._jinja_base
        if not has_request_context():
            return base
        return _for_language(base)


def _for_language(base: Environment) -> Environment:
    """``base``'s overlay for the request's language (made once per translations object)."""
    from flask_babel import get_translations

    from portal.core.i18n import current_language

    translations = get_translations()
    overlays = base.__dict__.setdefault("_language_overlays", {})
    found = overlays.get(id(translations))
    if found is None or found[0] is not translations:
        if len(overlays) > 16:  # a few languages: more means catalogues reloaded (tests)
            overlays.clear()
        overlay = base.overlay(cache_size=base.cache.capacity if base.cache is not None else 400)
        overlay.language = current_language()
        overlay.translate = translations.ugettext
        found = overlays[id(translations)] = (translations, overlay)
    return found[1]


def _binds_folded_names(tree: nodes.Template) -> nodes.Node | None:
    """Where the template gives one of the folded names a meaning of its own, if it does."""
    for node in tree.find_all((nodes.Name, nodes.Import, nodes.FromImport)):
        if isinstance(node, nodes.Name) and node.ctx in ("store", "param") and node.name in _FOLDED:
            return node
        if isinstance(node, nodes.Import) and node.target in _FOLDED:
            return node
        if isinstance(node, nodes.FromImport) and any(
            (alias if isinstance(alias, str) else alias[-1]) in _FOLDED for alias in node.names
        ):
            return node
    return None


class _Fold(NodeTransformer):
    def __init__(self, environment: Environment):
        self.environment = environment

    def visit_Call(self, node: nodes.Call):
        node = self.generic_visit(node)
        callee = node.node
        if not isinstance(callee, nodes.Name) or callee.name not in _FOLDED:
            return node
        if node.dyn_args is not None or node.dyn_kwargs is not None:
            return node
        if callee.name == "current_language":
            if node.args or node.kwargs:
                return node
            return self._made(nodes.Const(self.environment.language), node)
        if len(node.args) != 1 or not isinstance(node.args[0], nodes.Const):
            return node
        msgid = node.args[0].value
        if not isinstance(msgid, str):
            return node
        text = self.environment.translate(msgid)
        if node.kwargs:
            # As new-style gettext: the translation (safe where autoescaping) % the variables.
            return self._made(
                nodes.Mod(
                    nodes.MarkSafeIfAutoescape(nodes.Const(text)),
                    nodes.Dict([nodes.Pair(nodes.Const(k.key), k.value) for k in node.kwargs]),
                ),
                node,
            )
        try:
            text = text % {}  # new-style gettext formats always: "%%" is "%"
        except (KeyError, TypeError, ValueError):
            return node  # a placeholder without a value: left to fail at run time as before
        return self._made(nodes.MarkSafeIfAutoescape(nodes.Const(text)), node)

    def _made(self, new: nodes.Node, old: nodes.Node) -> nodes.Node:
        new.set_lineno(old.lineno)
        new.set_environment(self.environment)
        return new
