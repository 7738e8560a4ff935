"""Checking a certificate PDF someone brought back: one answer that says exactly what is true.

The upload is read in the sandbox (``portal.pdf.upload``): the file's whole-file signature, the
signed data attached to it and the text its pages show. The answer is one of

* ``valid``: signed by this portal's document-signing chain, nothing changed or appended since,
  and the attached data's Ed25519 signature verifies and is exactly the register's record;
* ``modified``: something changed after signing (bytes of the signed file, a revision appended
  after the signature, the attached data damaged or altered, or the page's text no longer says
  what the register holds);
* ``unknown_signer``: the file is intact but not signed by this portal (signed by someone else,
  or not signed at all, as a copy made before PDFs were signed or one whose signature was
  stripped);
* ``not_a_certificate``: a PDF that holds no certificate (another of the portal's documents, or
  anyone's PDF);
* ``unreadable``: not a PDF, damaged beyond reading, encrypted, or too costly to read.

Only ``valid`` is good news; the register's record is shown beside every answer that names a
certificate, so that a person compares it with what the PDF shows.
"""

import json
from dataclasses import dataclass
from pathlib import Path

from flask import current_app, g
from flask_babel import gettext as _

from portal.certificates.lookup import check_document
from portal.certificates.models import Certificate
from portal.certificates.payload import public_document
from portal.pdf import authority, upload
from portal.pdf.errors import PdfError
from portal.registry import instructions as registry

__all__ = [
    "MAX_UPLOAD",
    "RESULTS",
    "PdfError",
    "UploadCheck",
    "check_upload",
    "judge",
    "release_slot",
    "take_slot",
]

RESULTS = ("valid", "modified", "unknown_signer", "not_a_certificate", "unreadable")

#: The largest upload read (a certificate of thousands of blocks is well under 2 MB).
MAX_UPLOAD = 5 * 1024 * 1024


@dataclass(frozen=True)
class UploadCheck:
    """The answer about one uploaded PDF: ``result`` (one of RESULTS), ``reason`` (what exactly,
    for the message), the register's ``certificate`` when the PDF names one, and the signer's
    name when the file is signed by someone else."""

    result: str
    reason: str
    certificate: Certificate | None = None
    signer: str = ""

    @property
    def good(self) -> bool:
        """Green: a valid file of a certificate that is not revoked."""
        return self.result == "valid" and self.certificate is not None and self.certificate.is_valid

    @property
    def record(self) -> dict | None:
        """The register's record of the certificate, as pages show it."""
        if self.certificate is None:
            return None
        return public_document(json.loads(self.certificate.payload), self.certificate.source)

    @property
    def title(self) -> str:
        if self.result == "valid":
            return _("Genuine and valid") if self.good else _("Genuine, but revoked")
        return {
            "modified": _("Modified after signing"),
            "unknown_signer": _("Not signed by this portal"),
            "not_a_certificate": _("Not a certificate"),
            "unreadable": _("Unreadable"),
        }[self.result]

    @property
    def message(self) -> str:
        reason = self.reason
        if self.result == "valid":
            if self.good:
                return _(
                    "The whole file is exactly as the portal signed it, and its data is the "
                    "register's record of this certificate."
                )
            return _(
                "The file is exactly as the portal signed it, but the certificate was revoked: %(reason)s",
                reason=self.certificate.revoked_reason or "—",
            )
        messages = {
            "changed": _(
                "The file was changed after the portal signed it: its content no longer matches "
                "the signature. Do not rely on what it shows."
            ),
            "appended": _(
                "Something was added to the file after the portal signed it (an incremental "
                "update after the signature). Do not rely on what it shows."
            ),
            "data_damaged": _(
                "The signed data embedded in this PDF is damaged or has been altered. Do not rely "
                "on what it shows."
            ),
            "data_altered": _(
                "The data embedded in this PDF is not signed by the portal's key: it was altered. "
                "Do not rely on what it shows."
            ),
            "record_mismatch": _(
                "The data embedded in this PDF does not match the register's record of the "
                "certificate. Do not rely on what it shows."
            ),
            "text": _(
                "The text on the page does not match the register's record (the number or the "
                "quantity differs). Do not rely on what it shows."
            ),
            "other_signer": _(
                "The file is signed, but not by this portal: the signer is %(signer)s.",
                signer=self.signer or "—",
            ),
            "unsigned": _(
                "The file carries no signature of this portal: it may be a copy made before the "
                "portal signed its PDFs, or one whose signature was removed. Compare it with the "
                "register's record below, or download a signed copy from the certificate's page."
            ),
            "portal_document": _(
                "This is a genuine document of the portal, but not a retirement certificate "
                "(an invoice or a contract, for instance)."
            ),
            "no_data": _("This PDF does not contain a certificate issued by this portal."),
        }
        if reason in messages:
            return messages[reason]
        return PdfError(reason).message  # unreadable: the reader's own reason

    def as_json(self) -> dict:
        found = {"result": self.result, "message": self.message}
        if self.certificate is not None:
            found["certificate"] = {
                "number": self.certificate.number,
                "status": self.certificate.status,
                "registry": registry.certificate_registry(self.certificate.id, self.certificate.number),
            }
        return found


def take_slot() -> bool:
    """Take one of the machine's ``VERIFY_CONCURRENCY`` sandbox slots for this request (views
    call it before the upload is read); False when every one is taken. Kept until
    ``release_slot`` (at the end of the request)."""
    if g.get("verify_slot") is not None:
        return True
    slots_dir = current_app.config.get("VERIFY_SLOTS_DIR") or Path(current_app.instance_path) / "verify-slots"
    handle = upload.take_slot(Path(slots_dir), int(current_app.config.get("VERIFY_CONCURRENCY", 1)))
    g.verify_slot = handle
    return handle is not None


def release_slot() -> None:
    handle = g.pop("verify_slot", None)
    if handle is not None:
        upload.release_slot(handle)


def check_upload(data) -> UploadCheck:
    """The answer about an uploaded PDF, read in a sandbox slot (this request's, else one taken
    for the call). Raises PdfError only when the request cannot be answered (``too_large``,
    ``busy``); every other failure to read is ``unreadable``."""
    held = g.get("verify_slot") is not None
    if not held and not take_slot():
        raise PdfError("busy")
    try:
        found = upload.inspect_isolated(data, authority.known_certificates(), max_bytes=MAX_UPLOAD)
    except PdfError as exc:
        if exc.code == "too_large":
            raise
        return UploadCheck("unreadable", exc.code)
    finally:
        if not held:
            release_slot()
    return judge(found)


def judge(found: upload.Inspection) -> UploadCheck:
    """The answer for what the sandbox read (the rules, in the module's docstring's order)."""
    seal = found.seal
    certificate, data_ok, matches = None, False, False
    if found.embedded is not None:
        brought = check_document(found.embedded.payload, found.embedded.signature, found.embedded.key_id)
        data_ok, certificate, matches = brought.signature_ok, brought.certificate, brought.matches_record
    has_data = found.embedded is not None or found.embedded_damaged

    # The portal's own signature: its certificate is the portal's, and when the signature is
    # intact its chain also validates (within its dates, for document signing).
    mine = seal.ours and (seal.trusted or not seal.intact)
    if seal.signed and mine and seal.intact:
        if not seal.whole_file:
            return UploadCheck("modified", "appended", certificate)
        if not has_data:
            return UploadCheck("not_a_certificate", "portal_document")
        if not (data_ok and matches):
            return UploadCheck("modified", "record_mismatch", certificate)
        if not _text_matches(found.text, certificate):
            return UploadCheck("modified", "text", certificate)
        return UploadCheck("valid", "intact", certificate)
    if seal.signed and (mine or not seal.intact):
        # Signed by the portal and no longer intact, or a signature too broken to say by whom.
        if mine or has_data:
            return UploadCheck("modified", "changed", certificate)
        return UploadCheck("not_a_certificate", "no_data")
    # Signed intact by someone else, or not signed at all.
    if not has_data:
        if seal.signed:
            return UploadCheck("unknown_signer", "other_signer", signer=seal.signer)
        return UploadCheck("not_a_certificate", "no_data")
    if found.embedded_damaged:
        return UploadCheck("modified", "data_damaged")
    if not data_ok:
        return UploadCheck("modified", "data_altered")
    if not matches:
        return UploadCheck("modified", "record_mismatch", certificate)
    if not _text_matches(found.text, certificate):
        return UploadCheck("modified", "text", certificate)
    if seal.signed:
        return UploadCheck("unknown_signer", "other_signer", certificate, signer=seal.signer)
    return UploadCheck("unknown_signer", "unsigned", certificate)


def _text_matches(text: str | None, certificate: Certificate) -> bool:
    """Whether the page's text shows the certificate's number and its quantity as printed (not
    read, None, when the portal's signature covers the whole file: the pages are as drawn)."""
    if text is None:
        return True
    return certificate.number in text and f"{certificate.quantity:,} tCO2e" in text
