"""How much a request may send, checked before any of it is read or parsed.

Every body is limited to ``MAX_CONTENT_LENGTH`` (forms and API calls need kilobytes) unless its
view declares more with ``@body_limit``; a form has at most ``MAX_FORM_PARTS`` fields. The limit
is the request's own (``request.max_content_length``), so it holds whoever reads the body first
— the CSRF check and the NUL guard read forms before any view runs:

- a declared ``Content-Length`` above the limit is refused (413) before a byte is read;
- a body without a length (chunked) is refused (413) as soon as it passes the limit, however it
  is read (Werkzeug's own guard stops quietly at the limit when the body is read whole — a
  url-encoded form, ``get_data``, JSON — which would cut such a body short instead of refusing
  it);
- a url-encoded form with more fields than allowed is refused (413) before it is split
  (Werkzeug counts the parts of multipart forms only; splitting 600,000 url-encoded fields
  costs a worker seconds of CPU).

The 413 is the portal's own error page or JSON error (``core.errors``).
"""

import io
from typing import IO

from flask import Request as FlaskRequest
from flask import current_app, request
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.formparser import FormDataParser
from werkzeug.utils import cached_property
from werkzeug.wsgi import LimitedStream, get_input_stream


def body_limit(max_bytes: int):
    """The decorated view accepts bodies up to ``max_bytes`` instead of the default (an upload, a
    long text). Works above or below the route decorator."""

    def decorate(view):
        view.body_limit = max_bytes
        return view

    return decorate


def before_body(gate):
    """The decorated view's ``gate()`` runs before anything reads the request's body (the CSRF
    check and the NUL guard parse forms before any view runs): a response it returns is the
    answer, sent without reading a large body (a small one is drained, ``drain``, so that the
    client reads the answer; behind a buffering proxy the client always does). For uploads that
    are refused when the machine is busy: a refusal must cost a worker next to nothing. Works
    above or below the route decorator."""

    def decorate(view):
        view.before_body = gate
        return view

    return decorate


def drain() -> None:
    """Read the rest of the request's body without parsing it (up to the request's limit), so
    that a refusal sent before it reaches the client instead of a reset connection."""
    try:
        while request.stream.read(64 * 1024):
            pass
    except (RequestEntityTooLarge, OSError):
        pass


def _gate():
    view = current_app.view_functions.get(request.endpoint) if request.endpoint else None
    gate = getattr(view, "before_body", None)
    if gate is None:
        return None
    refusal = gate()
    if refusal is not None and (request.content_length or 0) <= DRAINED:
        drain()
    return refusal


#: The largest body drained before a gate's refusal; a larger one is left unread (the
#: connection is closed after the answer).
DRAINED = 256 * 1024


class FormParser(FormDataParser):
    """Werkzeug's parser, with the form field limit applied to url-encoded bodies too."""

    def _parse_urlencoded(self, stream, mimetype, content_length, options):
        data = stream.read()  # at most the request's body limit
        if self.max_form_parts is not None and data.count(b"&") >= self.max_form_parts:
            raise RequestEntityTooLarge()
        return super()._parse_urlencoded(io.BytesIO(data), mimetype, content_length, options)


class CappedStream(LimitedStream):
    """A body of unknown length, refused as soon as it is longer than ``limit`` bytes."""

    def __init__(self, stream: IO[bytes], limit: int):
        super().__init__(stream, limit + 1, is_max=True)  # one byte more shows it is too long

    def readinto(self, buffer) -> int | None:
        size = super().readinto(buffer)
        if self.is_exhausted:
            raise RequestEntityTooLarge()
        return size


class Request(FlaskRequest):
    form_data_parser_class = FormParser

    @cached_property
    def stream(self) -> IO[bytes]:
        """Werkzeug's guarded input stream; a body without a length is capped however it is read."""
        if self.shallow:
            raise RuntimeError("This request was created with 'shallow=True'.")
        limit = self.max_content_length
        if limit is not None and self.content_length is None and "wsgi.input_terminated" in self.environ:
            return CappedStream(self.environ["wsgi.input"], limit)
        return get_input_stream(self.environ, max_content_length=limit)

    @property
    def max_content_length(self) -> int | None:
        if self._max_content_length is None and self.endpoint is not None:
            declared = getattr(current_app.view_functions.get(self.endpoint), "body_limit", None)
            if declared is not None:
                return declared
        return FlaskRequest.max_content_length.fget(self)

    @max_content_length.setter
    def max_content_length(self, value: int | None) -> None:
        self._max_content_length = value


def register(app):
    app.request_class = Request
    # First of all: before the CSRF check and the NUL guard read a form.
    app.before_request_funcs.setdefault(None, []).insert(0, _gate)
