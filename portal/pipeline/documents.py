"""Uploaded PDFs (agreements, design documents, reports): size-bounded, checked to be PDFs,
stored with their SHA-256."""

import hashlib

from flask_babel import gettext as _

from portal.core.text import clean_text
from portal.extensions import db
from portal.pipeline.errors import PipelineError
from portal.pipeline.models import Document

#: A design document or a monitoring report with its maps fits; a request carries up to three.
MAX_DOCUMENT_BYTES = 10 * 1024 * 1024


def store_pdf(data: bytes, filename, *, actor: str) -> Document:
    """``data`` kept as a document, if it is a PDF of at most MAX_DOCUMENT_BYTES.

    A PDF starts with ``%PDF-`` (within its first kilobyte) and ends with ``%%EOF`` (within its
    last): the file is checked by its structure, never opened or rendered here."""
    if not data:
        raise PipelineError("empty_document", _("The file is empty."), field="document")
    if len(data) > MAX_DOCUMENT_BYTES:
        raise PipelineError(
            "document_too_large",
            _("The file is larger than %(mb)s MB.", mb=MAX_DOCUMENT_BYTES // (1024 * 1024)),
            413,
            "document",
        )
    if b"%PDF-" not in data[:1024] or b"%%EOF" not in data[-1024:]:
        raise PipelineError("not_a_pdf", _("The file is not a PDF."), field="document")
    name = (
        clean_text(
            (filename or "document.pdf")[-200:],
            field="document",
            label=_("File name"),
            max_length=200,
            required=False,
            error=PipelineError,
        )
        or "document.pdf"
    )
    document = Document(
        filename=name,
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        content=data,
        uploaded_by=actor,
    )
    db.session.add(document)
    db.session.flush()
    return document
