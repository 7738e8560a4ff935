"""The whole-file PDF signature (PAdES baseline B-B) every portal PDF carries, and checking one.

``seal`` appends the signature to a drawn PDF as one incremental update whose signed byte range
is the whole file but the signature itself; anything changed afterwards, a byte flipped or a
revision appended, no longer matches it. The signing certificate is the portal's document-signing
certificate (``authority``). The same document gives the same bytes: the signature is RSA
(PKCS #1 v1.5, deterministic), its claimed time is the document's own date (never earlier than
the certificate's start) and the file's new identifier is derived from its content.

``inspect_seal`` reads the signatures of a PDF someone brought, against the roots the portal
trusts. It runs on untrusted input and is called only in the upload sandbox
(``portal.pdf.upload``).
"""

import asyncio
import concurrent.futures
import datetime as dt
import hashlib
import io
import logging
from dataclasses import dataclass

from portal.pdf.authority import Authority, current_authority

log = logging.getLogger(__name__)

#: The signature form field's name (one per document).
FIELD_NAME = "PortalSignature"
#: Space kept for the CMS signature: two RSA 3072 certificates and the signed attributes need
#: about 3 kB; a chain from a commercial authority may be longer.
RESERVED_BYTES = 12 * 1024


def signing_time(pdf_date: str | None, authority: Authority) -> dt.datetime:
    """The time a document's signature claims: the document's own date (a PDF date string,
    ``D:YYYYMMDDHHmmSS+hh'mm'``), not earlier than the signing certificate's start; the clock
    for an undated document."""
    start = authority.cert.not_valid_before_utc
    moment = _parse_pdf_date(pdf_date) if pdf_date else None
    if moment is None:
        return dt.datetime.now(dt.UTC).replace(microsecond=0)
    return max(moment, start)


def _parse_pdf_date(value: str) -> dt.datetime | None:
    text = value.removeprefix("D:")
    try:
        moment = dt.datetime.strptime(text[:14], "%Y%m%d%H%M%S")
    except ValueError:
        return None
    offset = text[14:].replace("'", "")
    if offset in ("", "Z"):
        return moment.replace(tzinfo=dt.UTC)
    try:
        sign = -1 if offset[0] == "-" else 1
        hours, minutes = int(offset[1:3]), int(offset[3:5] or 0)
    except (ValueError, IndexError):
        return None
    return moment.replace(tzinfo=dt.timezone(sign * dt.timedelta(hours=hours, minutes=minutes)))


def seal_document(data: bytes, pdf_date: str | None) -> bytes:
    """``data`` signed with the portal's current document-signing certificate, claiming the
    document's date ``pdf_date`` (see ``signing_time``)."""
    found = current_authority()
    return seal(data, found, signing_time(pdf_date, found))


def seal(data: bytes, authority: Authority, at: dt.datetime, field_name: str = FIELD_NAME) -> bytes:
    """``data`` (a PDF) with ``authority``'s signature over the whole file appended, in the
    signature field ``field_name``."""
    from pyhanko.pdf_utils import generic
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import fields, signers
    from pyhanko.sign.signers.pdf_signer import PdfSigner

    class _Writer(IncrementalPdfFileWriter):
        @classmethod
        def _handle_id(cls, prev):
            # The file's second identifier names this revision: derived from the content, not
            # drawn at random, so that the same document gives the same bytes.
            ids = super()._handle_id(prev)
            digest = hashlib.sha256(data).digest()[:16]
            return generic.ArrayObject([ids[0], generic.ByteStringObject(digest)])

        def _update_meta(self):
            super()._update_meta()  # dates the revision "now" ...
            if self._info is not None:  # ... which is the signature's claimed time instead
                self._info.get_object()[generic.NameObject("/ModDate")] = generic.pdf_date(at)

    class _Signer(PdfSigner):
        def init_signing_session(self, pdf_out, existing_fields_only=False):
            session = super().init_signing_session(pdf_out, existing_fields_only=existing_fields_only)
            session.system_time = at
            return session

    signer = _signer(authority)
    meta = signers.PdfSignatureMetadata(
        field_name=field_name,
        md_algorithm="sha256",
        subfilter=fields.SigSeedSubFilter.PADES,
        reason="Issued by the Chifeng Carbon Sink Marketplace",
    )
    writer = _Writer(io.BytesIO(data))
    out = _outside_event_loop(
        lambda: _Signer(meta, signer=signer).sign_pdf(writer, bytes_reserved=RESERVED_BYTES)
    )
    return out.getvalue()


def _outside_event_loop(work):
    """``work()`` where no asyncio event loop is running: pyHanko signs through ``asyncio.run``,
    which refuses to start inside a running loop (a thread that also drives an async library, as
    a test browser does). Such a caller's signing runs in a thread of its own."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return work()
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(work).result()


#: The pyHanko signer of the last authority used (building it parses the certificates).
_signers: dict[int, tuple[Authority, object]] = {}


def _signer(authority: Authority):
    found = _signers.get(id(authority))
    if found is not None and found[0] is authority:
        return found[1]
    from asn1crypto import x509 as asn1_x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, padding
    from pyhanko.sign import signers
    from pyhanko_certvalidator.registry import SimpleCertificateStore

    class _KeySigner(signers.SimpleSigner):
        """Signs with the key already loaded (pyHanko's own signer loads, and so checks, the
        private key again for every signature, which costs more than the rest of sealing)."""

        def sign_raw(self, data: bytes, digest_algorithm: str) -> bytes:
            digest = {"sha256": hashes.SHA256(), "sha384": hashes.SHA384(), "sha512": hashes.SHA512()}[
                digest_algorithm
            ]
            key = authority.private_key
            if isinstance(key, ec.EllipticCurvePrivateKey):
                return key.sign(data, ec.ECDSA(digest))
            return key.sign(data, padding.PKCS1v15(), digest)

    der = serialization.Encoding.DER
    cert = asn1_x509.Certificate.load(authority.cert.public_bytes(der))
    chain = [asn1_x509.Certificate.load(c.public_bytes(der)) for c in authority.chain]
    signer = _KeySigner(
        signing_cert=cert,
        signing_key=None,
        cert_registry=SimpleCertificateStore.from_certs([cert, *chain]),
    )
    _signers.clear()
    _signers[id(authority)] = (authority, signer)
    return signer


# --- checking ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SealStatus:
    """What the signatures of a PDF say.

    It is about the portal's signature when the file has one, else about its last signature.
    ``signed``: it has at least one signature; ``intact``: that signature's digest matches the
    bytes it covers, its cryptography checks and (the portal's) its container is as made;
    ``whole_file``: it covers the whole file (nothing appended after it, no other signature);
    ``trusted``: its certificate chains to a certificate the portal trusts, at its claimed time;
    ``ours``: the signing certificate is one the portal knows or one issued by one of them
    (said even when the signature is broken: whose it claims to be); ``signer``: the signing
    certificate's subject, as text.
    """

    signed: bool
    intact: bool = False
    whole_file: bool = False
    trusted: bool = False
    ours: bool = False
    signer: str = ""

    def as_dict(self) -> dict:
        return {
            "signed": self.signed,
            "intact": self.intact,
            "whole_file": self.whole_file,
            "trusted": self.trusted,
            "ours": self.ours,
            "signer": self.signer,
        }


def inspect_seal(data: bytes, known_der: list[bytes]) -> SealStatus:
    """The status of the last signature of ``data`` against the portal's certificates
    ``known_der`` (DER: its roots, and the certificates of its chain, all trusted). May raise
    anything on a damaged file: the caller (the upload sandbox) answers for that."""
    from asn1crypto import x509 as asn1_x509
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko.sign.validation.status import SignatureCoverageLevel
    from pyhanko_certvalidator import ValidationContext

    reader = PdfFileReader(io.BytesIO(data), strict=False)
    signatures = reader.embedded_signatures
    if not signatures:
        return SealStatus(signed=False)
    # The portal's own signature if there is one (another signed after it, a change); else the
    # last one.
    last, ours = signatures[-1], False
    for signature in signatures:
        if signature.signer_cert is not None and _issued_by_known(signature.signer_cert.dump(), known_der):
            last, ours = signature, True
            break
    signer_cert = last.signer_cert
    subject = signer_cert.subject.human_friendly if signer_cert is not None else ""
    claimed = last.self_reported_timestamp
    context = ValidationContext(
        trust_roots=[asn1_x509.Certificate.load(der) for der in known_der],
        allow_fetching=False,
        revocation_mode="soft-fail",
        moment=claimed,  # the portal's certificates are judged when they signed
    )
    status = _outside_event_loop(lambda: validate_pdf_signature(last, signer_validation_context=context))
    # The signature's own container is outside the bytes it signs: for the portal's signature,
    # also refuse one whose certificates were altered (a copy of the portal's chain inside it,
    # which validation would not look at since the roots are given), whose padding is not zero,
    # or whose hexadecimal text is not as written (white space or a letter's case changed:
    # the same container, read from other bytes).
    untouched = not ours or (
        _padding_is_zero(last.sig_object.get("/Contents"))
        and _contents_as_written(data, last.sig_object.get("/ByteRange"))
        and all(
            _issued_by_known(choice.chosen.dump(), known_der)
            for choice in last.signed_data["certificates"] or ()
        )
    )
    return SealStatus(
        signed=True,
        intact=bool(status.intact and status.valid and untouched),
        whole_file=status.coverage == SignatureCoverageLevel.ENTIRE_FILE and len(signatures) == 1,
        trusted=bool(status.trusted),
        ours=ours,
        signer=subject[:300],
    )


def _padding_is_zero(contents) -> bool:
    """Whether the signature's /Contents is one DER value followed by zeros only."""
    raw = bytes(contents) if contents is not None else b""
    if len(raw) < 2 or raw[0] != 0x30:
        return False
    first = raw[1]
    if first < 0x80:
        size, header = first, 2
    else:
        count = first & 0x7F
        if count == 0 or count > 4 or len(raw) < 2 + count:
            return False
        size, header = int.from_bytes(raw[2 : 2 + count], "big"), 2 + count
    end = header + size
    return end <= len(raw) and not any(raw[end:])


_UPPER, _LOWER = frozenset(b"0123456789ABCDEF"), frozenset(b"0123456789abcdef")


def _contents_as_written(data: bytes, byte_range) -> bool:
    """Whether the bytes the signature leaves out (between the two parts of its ``/ByteRange``:
    its ``/Contents``) are one hexadecimal string as a signer writes it: ``<``, an even number
    of hexadecimal digits in one case, ``>``. A PDF reader skips white space in a hexadecimal
    string and reads either case, so without this a byte changed there would leave the file
    reading, and verifying, as signed."""
    try:
        first_start, first_length, second_start, _second_length = (int(n) for n in byte_range)
    except (TypeError, ValueError):
        return False
    gap = data[first_start + first_length : second_start]
    if len(gap) < 4 or gap[:1] != b"<" or gap[-1:] != b">" or len(gap) % 2:
        return False
    digits = frozenset(gap[1:-1])
    return digits <= _UPPER or digits <= _LOWER


def _issued_by_known(cert_der: bytes, known_der: list[bytes]) -> bool:
    """Whether the certificate is one of ``known_der`` or directly issued by one of them."""
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature

    if cert_der in known_der:
        return True
    try:
        cert = x509.load_der_x509_certificate(cert_der)
    except ValueError:
        return False
    for der in known_der:
        issuer = x509.load_der_x509_certificate(der)
        if issuer.subject != cert.issuer:
            continue
        try:
            cert.verify_directly_issued_by(issuer)
        except (InvalidSignature, ValueError, TypeError):
            continue
        return True
    return False
