"""Error pages (HTML) and error bodies (JSON for /api/)."""

import logging

from flask import abort, jsonify, render_template, request
from flask_babel import gettext as _
from werkzeug.exceptions import HTTPException, InternalServerError

log = logging.getLogger(__name__)


class ServiceError(Exception):
    """A request a service refused: nothing was changed. ``code`` is stable (for the API),
    ``message`` translated, ``status`` the HTTP status to answer with, ``field`` the input at fault."""

    def __init__(self, code: str, message: str, status: int = 400, field: str | None = None):
        super().__init__(code)
        self.code = code
        self.message = message
        self.status = status
        self.field = field


def _wants_json() -> bool:
    return request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json"


def _messages():
    return {
        400: _("The request could not be understood."),
        403: _("You do not have permission to see this page."),
        404: _("The page you asked for does not exist."),
        405: _("This method is not allowed here."),
        409: _("The request conflicts with the current state."),
        413: _("The request is too large."),
        429: _("Too many requests. Please wait a moment and try again."),
        500: _("Something went wrong on our side. The error has been logged."),
    }


def error_response(status: int, code: str, message: str, headers=None):
    if _wants_json():
        return jsonify(error={"code": code, "message": message}), status, headers or {}
    return render_template("errors/error.html", status=status, message=message), status, headers or {}


def error_response_with_headers(status: int, code: str, message: str, headers=None):
    """An error built after the normal response hooks may have run (a failed commit): it gets
    the security headers itself."""
    from flask import make_response

    from portal.core import security

    response, status, headers = error_response(status, code, message, headers)
    return security.apply(make_response(response, status, headers))


def internal_error_response():
    return error_response_with_headers(500, "internal_error", _messages()[500])


def unexpected_error_response(exc: Exception):
    log.error("unhandled error on %s %s", request.method, request.path, exc_info=exc)
    status = InternalServerError.code
    return error_response(status, "internal_error", _messages()[status])


def _has_nul(fields) -> bool:
    """Whether a NUL is in any name or any value (every one of a repeated name) of ``fields``."""
    return any("\x00" in name or any("\x00" in v for v in values) for name, values in fields.lists())


def register(app):
    @app.before_request
    def refuse_nul_bytes():
        # No database stores a NUL in text (PostgreSQL refuses it): such input is never valid.
        # Every value of a repeated field counts (a basket posts ``batch`` once per line), and
        # the names too, and an uploaded file's name.
        if "\x00" in request.path or _has_nul(request.args):
            abort(400)
        is_form = request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data")
        if (
            request.method == "POST"
            and is_form
            and (
                _has_nul(request.form)
                or any("\x00" in (f.filename or "") for _n, files in request.files.lists() for f in files)
            )
        ):
            abort(400)

    @app.errorhandler(HTTPException)
    def handle_http(exc: HTTPException):
        status = exc.code or 500
        message = _messages().get(status) or exc.description
        code = (exc.name or "error").lower().replace(" ", "_")
        if status == 413:  # one code for a body too large, whichever check refused it
            code = "request_too_large"
        # Keep what the exception says about the response (Allow on a 405, Retry-After …).
        headers = {k: v for k, v in exc.get_headers() if k.lower() != "content-type"}
        return error_response(status, code, message, headers)

    @app.errorhandler(ServiceError)
    def handle_refusal(exc: ServiceError):
        """The one way a refusal becomes a response when its view does not show it on the page
        it came from: nothing it began is kept, and the reader gets the translated message with
        the refusal's status, as a page or (for the API) as ``{"error": {"code", "message"}}``."""
        from portal.extensions import db

        db.session.rollback()
        return error_response(exc.status, exc.code, exc.message)

    @app.errorhandler(Exception)
    def handle_unexpected(exc: Exception):
        return unexpected_error_response(exc)
