"""The one error of the portal's PDFs: a PDF that could not be drawn (no font) or read (not a PDF,
not ours, too large). ``code`` is stable; ``message`` is translated for the page that shows it."""

from flask_babel import gettext as _

from portal.core.errors import ServiceError


class PdfError(ServiceError):
    """A PDF could not be drawn or read. ``code`` is stable; ``message`` is translated; a PDF
    that cannot be drawn is the server's fault (503), one that cannot be read the sender's (400)."""

    field = None

    def __init__(self, code: str, **params):
        Exception.__init__(self, code)
        self.code = code
        self.params = params
        self.status = 503 if code in ("no_font", "busy") else 400

    @property
    def message(self) -> str:
        if self.code == "not_a_pdf":
            return _("The file is not a PDF document, or it is damaged.")
        if self.code == "no_certificate":
            return _("This PDF does not contain a certificate issued by this portal.")
        if self.code == "too_large":
            return _("The file is too large (at most %(limit)s).", limit=self.params.get("limit", "?"))
        if self.code == "encrypted":
            return _("The PDF is encrypted, so it cannot be checked. The portal's PDFs are never encrypted.")
        if self.code == "too_complex":
            return _(
                "The PDF is too complex to check: reading it took too long or too much memory. "
                "The portal's PDFs are small and simple."
            )
        if self.code == "busy":
            return _("Too many PDFs are being checked right now. Please try again in a moment.")
        if self.code == "no_font":
            return _(
                "No Chinese font is available for certificate PDFs. Install the Debian package "
                "fonts-wqy-microhei, or set PORTAL_PDF_FONT to a TrueType font file (.ttf or .ttc)."
            )
        return _("The PDF could not be processed.")
