"""JSON from outside (an API body, a boundary typed into a form): one reader for all of it.

``json.loads`` recurses once per level of nesting, so a few thousand ``[`` in a row exhaust the
stack (a RecursionError: a 500 where a 400 belongs), and a large text costs memory and time
before anything checks it. :func:`loads` refuses a text that is too large or nested too deeply
before parsing it: the nesting is counted without recursion, on the text itself.
"""

import json
import re
from itertools import accumulate

from flask_babel import gettext as _

#: Levels of arrays and objects a JSON text may nest: far more than any document the portal
#: reads (a contract draft nests 3, a MultiPolygon 5), far less than Python's stack allows.
MAX_DEPTH = 32
#: The largest API body read: a contract of 120 tranches is about 8 KB.
MAX_BYTES = 64 * 1024

#: A JSON string (its escapes included): brackets inside one do not nest anything.
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


class JsonRefused(ValueError):
    """A JSON text refused before or while parsing; ``code`` is ``too_large`` (``status`` 413),
    ``too_deep`` or ``invalid`` (400), ``message`` says why, translated."""

    def __init__(self, code: str, message: str, status: int = 400):
        super().__init__(code)
        self.code = code
        self.message = message
        self.status = status


def depth(text: str) -> int:
    """How deeply ``text`` nests arrays and objects, counted without recursion (brackets inside
    strings do not count)."""
    if text.count("[") + text.count("{") == 0:
        return 0
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    return max(accumulate(1 if c in "[{" else -1 for c in brackets), default=0)


def _size(n: int) -> str:
    return f"{n // 1024} KB" if n >= 1024 else f"{n} B"


def too_large(max_bytes: int) -> JsonRefused:
    return JsonRefused(
        "too_large", _("The JSON is too large: at most %(size)s.", size=_size(max_bytes)), status=413
    )


def loads(data: str | bytes, *, max_bytes: int = MAX_BYTES, max_depth: int = MAX_DEPTH, **options):
    """``data`` parsed (text, or bytes in UTF-8, -16 or -32 as ``json.loads`` reads them), with
    ``options`` passed to ``json.loads``; :class:`JsonRefused` if it is larger than ``max_bytes``
    (UTF-8), nests deeper than ``max_depth`` or is not JSON."""
    if isinstance(data, bytes | bytearray):
        if len(data) > max_bytes:
            raise too_large(max_bytes)
        try:
            # As json.loads decodes bytes (a lone surrogate escape stays for the caller to judge).
            text = bytes(data).decode(json.detect_encoding(data), "surrogatepass")
        except UnicodeDecodeError:
            raise JsonRefused("invalid", _("The text is not valid JSON.")) from None
    else:
        text = data
        if len(text) > max_bytes or len(text.encode("utf-8", "surrogatepass")) > max_bytes:
            raise too_large(max_bytes)
    if depth(text) > max_depth:
        raise JsonRefused("too_deep", _("The JSON is nested too deeply: at most %(n)s levels.", n=max_depth))
    try:
        return json.loads(text, **options)
    except RecursionError:  # not reached within MAX_DEPTH; kept so that no caller ever sees one
        raise JsonRefused(
            "too_deep", _("The JSON is nested too deeply: at most %(n)s levels.", n=max_depth)
        ) from None
    except ValueError:
        raise JsonRefused("invalid", _("The text is not valid JSON.")) from None


def request_json(*, max_bytes: int = MAX_BYTES, max_depth: int = MAX_DEPTH, **options):
    """The current request's body parsed by :func:`loads`; a body larger than ``max_bytes`` is
    refused by its Content-Length before it is read."""
    from flask import request

    if (request.content_length or 0) > max_bytes:
        raise too_large(max_bytes)
    # Bounded in any case: Werkzeug stops reading at MAX_CONTENT_LENGTH (413).
    return loads(request.get_data(cache=True), max_bytes=max_bytes, max_depth=max_depth, **options)
