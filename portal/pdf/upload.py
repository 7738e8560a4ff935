"""Reading a PDF someone uploaded to have it checked: its whole-file signature, the signed data
attached to it and the text its pages show, read in a sandbox.

A general PDF parser on hostile input can be made to work far beyond the file's size (compressed
object streams, name trees, thousands of objects): the reading is done in a child process limited
in CPU time, memory and wall time, after its first tenth of a second at lower priority than the
web workers, and at most
``slots`` such children run on the machine at once (a lock file per slot, ``take_slot``); the
caller takes its slot before it even reads the upload, and refuses one that finds every slot
taken at once rather than queueing it, so that uploads never hold every web worker. Children are
forked from a server process that has the PDF libraries loaded and warmed already (one helper per
web worker: it checks a PDF it signed itself once, ``_warm_up``), which keeps a check of a
certificate's PDF to some 25 ms of CPU.
The child answers in JSON, never in pickle: it has read hostile input.

This module decides nothing: ``certificates.verification`` turns an :class:`Inspection` into an
answer.
"""

import binascii
import contextlib
import fcntl
import functools
import io
import json
import logging
import os
import re
import select
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path

from portal.pdf.embedded import ATTACHMENT_NAME, Embedded, attachment_of, parse_embedded
from portal.pdf.errors import PdfError
from portal.pdf.sealing import SealStatus, inspect_seal

log = logging.getLogger(__name__)

#: Limits of the child process that reads an upload (a certificate takes well under 0.5 s).
CPU_SECONDS = 3
MEMORY_BYTES = 1024 * 1024 * 1024
WALL_SECONDS = 8
#: Pages whose text is read, and the text kept (a certificate has one to a few pages).
PAGES_READ = 30
TEXT_MAX = 100_000
#: The answer from the child is small; a larger one is not trusted.
ANSWER_MAX = 4 * 1024 * 1024
#: A child reads at the web workers' priority for this long (a certificate's check takes about
#: 25 ms of CPU), then at a lower one (nice 10), so that a costly upload yields to them. Lowered
#: from the start, a genuine certificate's check waited behind any busy process on the machine.
FULL_PRIORITY_SECONDS = 0.1
LOWER_PRIORITY = 10


@dataclass(frozen=True)
class Inspection:
    """What a PDF holds, as read in the sandbox.

    ``seal``: its last signature's status; ``embedded``: the signed data attached as the
    certificate's attachment, or None; ``embedded_damaged``: an attachment of that name is there
    but could not be read (oversized, damaged, not the portal's format); ``text``: the text its
    first pages show, white space collapsed (None when the portal's intact signature covers the
    whole file, which already says the pages are as drawn).
    """

    seal: SealStatus
    embedded: Embedded | None = None
    embedded_damaged: bool = False
    text: str | None = ""
    pages: int = 0
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "seal": self.seal.as_dict(),
            "embedded": None
            if self.embedded is None
            else {k: getattr(self.embedded, k) for k in ("payload", "signature", "key_id", "alg")},
            "embedded_damaged": self.embedded_damaged,
            "text": self.text,
            "pages": self.pages,
        }

    @classmethod
    def from_dict(cls, found: dict) -> "Inspection":
        seal = found["seal"]
        embedded = found.get("embedded")
        return cls(
            seal=SealStatus(
                signed=bool(seal["signed"]),
                intact=bool(seal["intact"]),
                whole_file=bool(seal["whole_file"]),
                trusted=bool(seal["trusted"]),
                ours=bool(seal.get("ours")),
                signer=str(seal.get("signer", ""))[:300],
            ),
            embedded=None
            if embedded is None
            else Embedded(**{k: str(embedded[k]) for k in Embedded.__annotations__}),
            embedded_damaged=bool(found.get("embedded_damaged")),
            text=None if found.get("text") is None else str(found["text"])[:TEXT_MAX],
            pages=int(found.get("pages", 0)),
        )


def precheck(data, max_bytes: int) -> bytes:
    """The upload's bytes if they may be a PDF at all (checked before any child is started)."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise PdfError("not_a_pdf")
    if len(data) > max_bytes:
        raise PdfError("too_large", limit=_size(max_bytes))
    data = bytes(data)
    if b"%PDF-" not in data[:1024]:
        raise PdfError("not_a_pdf")
    return data


def _size(size: int) -> str:
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.3g} MB"
    return f"{max(size // 1024, 1)} KB"


def _read_hex_string(stream, _original=None):
    """pyHanko's ``read_hex_string_from_stream``, reading the string in slices rather than one
    byte at a time through its tokenizer: a signature's /Contents is some 24,000 hex digits (the
    space kept for the signature), whose reading was about 40 % of checking a certificate PDF.
    Same result and same errors: a string that holds a ``%`` (which pyHanko reads as a comment),
    that is not all hex digits and white space, or that does not end, is read by the original."""
    from pyhanko.pdf_utils.generic import HEX_DIGITS, pdf_string
    from pyhanko.pdf_utils.misc import PDF_WHITESPACE

    start = stream.tell()
    stream.read(1)  # the "<"
    parts = []
    while True:
        chunk = stream.read(64 * 1024)
        if not chunk:
            break
        end = chunk.find(b">")
        if end >= 0:
            parts.append(chunk[:end])
            stream.seek(end + 1 - len(chunk), os.SEEK_CUR)  # just past the ">"
            digits = b"".join(parts).translate(None, PDF_WHITESPACE)
            if not digits.translate(None, HEX_DIGITS):
                if len(digits) % 2:
                    digits += b"0"
                return pdf_string(binascii.unhexlify(digits))
            break
        parts.append(chunk)
    stream.seek(start)
    return _original(stream)


def _install_speed_ups() -> None:
    """Once per process: pyHanko's object reader uses ``_read_hex_string``, and asn1crypto's
    preparation of a name's text for comparison (RFC 4518, a pure function of the text, run
    character by character for every name compared: a third of validating the signature) keeps
    its answers for the texts it has seen."""
    from asn1crypto import x509 as asn1_x509
    from pyhanko.pdf_utils import generic

    if getattr(generic.read_hex_string_from_stream, "portal_fast", False):
        return
    fast = functools.partial(_read_hex_string, _original=generic.read_hex_string_from_stream)
    fast.portal_fast = True
    generic.read_hex_string_from_stream = fast
    prepare = functools.lru_cache(maxsize=1024)(
        functools.partial(asn1_x509.NameTypeAndValue._ldap_string_prep, None)
    )
    asn1_x509.NameTypeAndValue._ldap_string_prep = lambda _self, string: prepare(string)


#: A one-page PDF, the smallest that readers accept, for the helper's warm-up.
_SAMPLE = (
    b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n"
    b"2 0 obj\n<< /Type /Pages /Kids [3 0 R] /Count 1 >>\nendobj\n"
    b"3 0 obj\n<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >>\nendobj\n"
)


def _sample_pdf() -> bytes:
    """``_SAMPLE`` with its cross-reference table and trailer."""
    offsets = [_SAMPLE.index(b"%d 0 obj" % n) for n in (1, 2, 3)]
    xref = b"xref\n0 4\n0000000000 65535 f \n" + b"".join(b"%010d 00000 n \n" % o for o in offsets)
    trailer = b"trailer\n<< /Size 4 /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % len(_SAMPLE)
    return _SAMPLE + xref + trailer


def _warm_up() -> "Inspection | None":
    """In the helper, once: sign a sample PDF with a throwaway key and check it, as a child checks
    an upload, so that what the libraries set up on first use (and the names they compare) is
    set up before any child is forked: each child then spends its time on its own file only.
    Best effort: a failure here only leaves the children cold."""
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    from portal.pdf.authority import Authority
    from portal.pdf.sealing import seal

    try:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "warm-up")])
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .sign(key, hashes.SHA256())
        )
        signed = seal(_sample_pdf(), Authority(key, cert, ()), now)
        return inspect(signed, [cert.public_bytes(serialization.Encoding.DER)])
    except Exception:  # noqa: BLE001 - warming is an optimisation only
        log.debug("warming the PDF helper failed", exc_info=True)
        return None


def _warm(known_der: list[bytes]) -> None:
    """In the helper: prepare the names of the portal's own certificates (trusted, sent by the
    web worker), so that each forked child finds them prepared."""
    from asn1crypto import x509 as asn1_x509

    for der in known_der:
        cert = asn1_x509.Certificate.load(der)
        _ = cert.subject.hashable, cert.issuer.hashable


def inspect(data: bytes, known_der: list[bytes], name: str = ATTACHMENT_NAME) -> Inspection:
    """Read ``data`` in this process (the sandbox's child calls it). Raises PdfError, and, on
    damaged input, whatever the parsers raise."""
    from pypdf import PdfReader

    _install_speed_ups()
    reader = PdfReader(io.BytesIO(data), strict=False)
    if reader.is_encrypted:
        raise PdfError("encrypted")
    pages = len(reader.pages)
    if pages == 0:
        raise PdfError("not_a_pdf")
    embedded, damaged = None, False
    try:
        raw = attachment_of(reader, name)
        if raw is not None:
            embedded = parse_embedded(raw)
    except PdfError:
        damaged = True
    except Exception as exc:  # a damaged name tree or stream: the attachment is not readable
        log.info("unreadable attachment: %s: %s", type(exc).__name__, exc)
        damaged = True
    try:
        seal = inspect_seal(data, known_der)
    except Exception as exc:  # a signature dictionary pyHanko cannot make sense of
        log.info("unreadable signature: %s: %s", type(exc).__name__, exc)
        seal = SealStatus(signed=b"/ByteRange" in data)
    if seal.ours and seal.trusted and seal.intact and seal.whole_file:
        # The portal's signature covers every byte: the pages show what the portal drew, and
        # reading their text (half the time of a check) would tell nothing more.
        return Inspection(seal=seal, embedded=embedded, embedded_damaged=damaged, text=None, pages=pages)
    texts, kept = [], 0
    for page in list(reader.pages)[:PAGES_READ]:
        try:
            text = page.extract_text() or ""
        except Exception:  # a page whose content cannot be read shows nothing we can compare
            text = ""
        texts.append(text)
        kept += len(text)
        if kept > TEXT_MAX:
            break
    text = re.sub(r"\s+", " ", " ".join(texts))[:TEXT_MAX]
    return Inspection(seal=seal, embedded=embedded, embedded_damaged=damaged, text=text, pages=pages)


# --- the sandbox ---------------------------------------------------------------------------------
#
# Each web worker keeps one helper process (``python -m portal.pdf.upload``) that has the PDF
# libraries loaded; for each upload the helper forks a child that limits itself, reads the PDF and
# writes its answer to the helper, which passes it on (or says the child died). The worker waits
# at most WALL_SECONDS, and replaces a helper that does not answer in time.


def _write_frame(stream, payload: bytes) -> None:
    stream.write(len(payload).to_bytes(8, "big"))
    stream.write(payload)
    stream.flush()


def _read_exactly(stream, size: int) -> bytes:
    parts, left = [], size
    while left:
        chunk = stream.read(left)
        if not chunk:
            raise EOFError
        parts.append(chunk)
        left -= len(chunk)
    return b"".join(parts)


def _read_frame(stream, limit: int) -> bytes:
    size = int.from_bytes(_read_exactly(stream, 8), "big")
    if size > limit:
        raise EOFError
    return _read_exactly(stream, size)


def _child(data: bytes, known_der: list[bytes], name: str) -> bytes:
    """In the forked child: limit this process, read the PDF, return the answer (JSON)."""
    import resource

    resource.setrlimit(resource.RLIMIT_CPU, (CPU_SECONDS, CPU_SECONDS))
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BYTES, MEMORY_BYTES))
    try:
        out = inspect(data, known_der, name).as_dict()
    except PdfError as exc:
        out = {"error": exc.code}
    except MemoryError:
        out = {"error": "too_complex"}
    except Exception:  # RecursionError and the parsers' own on damaged input
        out = {"error": "not_a_pdf"}
    return json.dumps(out).encode("utf-8")


def _preload() -> None:
    """Load what reading a PDF needs once, in the helper, so that each forked child starts warm."""
    import pyhanko.pdf_utils.reader  # noqa: F401
    import pyhanko.sign.validation  # noqa: F401
    import pyhanko.sign.validation.status  # noqa: F401
    import pyhanko_certvalidator  # noqa: F401
    import pypdf  # noqa: F401

    _install_speed_ups()


def _serve() -> None:
    """The helper: one job after another from stdin, each read by a forked child."""
    import base64
    import sys

    logging.disable(logging.CRITICAL)
    _preload()
    _warm_up()
    source, sink = sys.stdin.buffer, sys.stdout.buffer
    warmed: list[bytes] = []
    while True:
        try:
            header = json.loads(_read_frame(source, 1024 * 1024))
            data = _read_frame(source, 64 * 1024 * 1024)
        except EOFError:
            return
        roots = [base64.b64decode(r) for r in header["roots"]]
        if roots != warmed:
            _warm(roots)
            warmed = roots
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child
            os.close(read_end)
            code = 1
            try:
                with os.fdopen(write_end, "wb") as out:
                    out.write(_child(data, roots, header["name"]))
                code = 0
            finally:
                os._exit(code)
        os.close(write_end)
        ready, _, _ = select.select([read_end], [], [], FULL_PRIORITY_SECONDS)
        if not ready:  # not a quick read: the web workers come first from now on
            with contextlib.suppress(OSError):
                os.setpriority(os.PRIO_PROCESS, pid, LOWER_PRIORITY)
        with os.fdopen(read_end, "rb") as answer_pipe:
            answer = answer_pipe.read(ANSWER_MAX + 1)
        _, status = os.waitpid(pid, 0)
        if status != 0 or not answer or len(answer) > ANSWER_MAX:
            answer = json.dumps({"error": "too_complex"}).encode()  # killed: over its CPU or memory
        _write_frame(sink, answer)


class _Helper:
    """This process's helper (started on first use, replaced when it fails)."""

    lock = threading.Lock()
    process: subprocess.Popen | None = None

    @classmethod
    def ask(cls, data: bytes, known_der: list[bytes], name: str) -> bytes | None:
        import base64
        import sys

        with cls.lock:
            if cls.process is None or cls.process.poll() is not None:
                # The helper imports this package from where this process did.
                package_root = str(Path(__file__).resolve().parents[2])
                path = os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH")) if p)
                cls.process = subprocess.Popen(
                    [sys.executable, "-m", "portal.pdf.upload"],
                    env={**os.environ, "PYTHONPATH": path},
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,
                )
            process = cls.process
            header = json.dumps({"roots": [base64.b64encode(r).decode() for r in known_der], "name": name})
            try:
                _write_frame(process.stdin, header.encode())
                _write_frame(process.stdin, data)
                ready, _, _ = select.select([process.stdout], [], [], WALL_SECONDS + STARTUP_SECONDS)
                if ready:
                    return _read_frame(process.stdout, ANSWER_MAX)
            except (OSError, EOFError, ValueError):
                pass
            cls.stop()  # no answer in time: the helper (and its child) are replaced
            return None

    @classmethod
    def stop(cls) -> None:
        process, cls.process = cls.process, None
        if process is not None and process.poll() is None:
            process.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(2)


#: Time a new helper may take to load the PDF libraries (on a loaded machine).
STARTUP_SECONDS = 10


def take_slot(slots_dir: Path, slots: int):
    """One of ``slots`` lock files, taken without waiting (an open file holding its lock); None
    when every one is taken. Give it back with ``release_slot``."""
    slots_dir.mkdir(parents=True, exist_ok=True)
    for index in range(max(slots, 1)):
        handle = open(slots_dir / f"slot-{index}.lock", "a")  # noqa: SIM115 - held until released
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        return handle
    return None


def release_slot(handle) -> None:
    try:
        fcntl.flock(handle, fcntl.LOCK_UN)
    finally:
        handle.close()


KNOWN = {"not_a_pdf", "encrypted", "too_complex", "no_certificate"}


def inspect_isolated(
    data,
    known_der: list[bytes],
    *,
    max_bytes: int = 5 * 1024 * 1024,
    name: str = ATTACHMENT_NAME,
) -> Inspection:
    """``inspect`` for an uploaded file, in a limited child process; the caller holds a slot
    (``take_slot``). Raises PdfError, and nothing else: ``too_large``, ``not_a_pdf``,
    ``encrypted`` or ``too_complex``."""
    data = precheck(data, max_bytes)
    answer = _Helper.ask(data, known_der, name)
    if answer is None:
        log.warning("reading an uploaded PDF took too long; its reader was stopped")
        raise PdfError("too_complex")
    try:
        found = json.loads(answer)
        if "error" in found:
            raise PdfError(str(found["error"]) if found["error"] in KNOWN else "not_a_pdf")
        return Inspection.from_dict(found)
    except (ValueError, KeyError, TypeError) as exc:
        raise PdfError("not_a_pdf") from exc


if __name__ == "__main__":
    _serve()
