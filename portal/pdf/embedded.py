"""Signed data inside a PDF: attaching it when drawing (a certificate's ``certificate.json``, a
contract's ``contract.json``) and reading it back out of a PDF someone was sent, which is what
/verify checks. The embedded data is never altered.

An upload is read in a sandbox (``portal.pdf.upload``, which uses ``attachment_of`` and
``parse_embedded``): a general PDF parser on hostile input can be made to work far beyond the
file's size.
"""

import io
import json
import logging
import zlib
from dataclasses import dataclass

from reportlab.pdfbase import pdfdoc
from reportlab.pdfgen.canvas import Canvas

from portal.core import jsontext
from portal.pdf.errors import PdfError

log = logging.getLogger(__name__)

#: The certificate's attachment, which /verify looks for unless told another name.
ATTACHMENT_NAME = "certificate.json"
ATTACHMENT_DESCRIPTION = "Signed certificate data (payload, Ed25519 signature, key id)"
ALG = "Ed25519"
#: The embedded JSON is a few kB (about 250 bytes per block); anything far larger is not ours.
ATTACHMENT_MAX = 2 * 1024 * 1024


@dataclass(frozen=True)
class Embedded:
    """The signed data found in a portal PDF (a certificate's, or a contract's)."""

    payload: str  # canonical JSON text, exactly as signed
    signature: str  # standard base64 of the Ed25519 signature over payload.encode("utf-8")
    key_id: str
    alg: str  # "Ed25519"


def signed_json(payload: str, signature: str, key_id: str) -> bytes:
    """The attachment's content: the payload as signed, its signature, key id and algorithm."""
    return json.dumps(
        {"payload": payload, "signature": signature, "key_id": key_id, "alg": ALG},
        ensure_ascii=True,  # byte-exact through any tool that re-encodes text
        sort_keys=True,
    ).encode("ascii")


def attach(canvas: Canvas, name: str, data: bytes, description: str = ATTACHMENT_DESCRIPTION) -> None:
    """Attach ``data`` to the document as the file ``name`` (the document's EmbeddedFiles)."""
    doc = canvas._doc
    stream = pdfdoc.PDFStream(
        pdfdoc.PDFDictionary(
            {
                "Type": pdfdoc.PDFName("EmbeddedFile"),
                "Subtype": "/application#2Fjson",  # a raw name: PDFName() would escape the '#'
                "Params": pdfdoc.PDFDictionary({"Size": len(data)}),
            }
        ),
        content=data,
        filters=[pdfdoc.PDFZCompress],
    )
    filespec = pdfdoc.PDFDictionary(
        {
            "Type": pdfdoc.PDFName("Filespec"),
            "F": pdfdoc.PDFString(name),
            "UF": pdfdoc.PDFString(name),
            "Desc": pdfdoc.PDFString(description),
            "AFRelationship": pdfdoc.PDFName("Data"),
            "EF": pdfdoc.PDFDictionary({"F": doc.Reference(stream)}),
        }
    )
    names = pdfdoc.PDFArray([pdfdoc.PDFString(name), doc.Reference(filespec)])
    doc.Catalog.Names = pdfdoc.PDFDictionary({"EmbeddedFiles": pdfdoc.PDFDictionary({"Names": names})})


# --- reading -------------------------------------------------------------------------------------


def extract(data: bytes, max_bytes: int = 5 * 1024 * 1024, name: str = ATTACHMENT_NAME) -> Embedded:
    """The signed data embedded in a certificate PDF (or in another of the portal's signed PDFs,
    attached as ``name``). Raises PdfError, and nothing else."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise PdfError("not_a_pdf")
    if len(data) > max_bytes:
        raise PdfError("too_large", limit=_size(max_bytes))
    data = bytes(data)
    if b"%PDF-" not in data[:1024]:
        raise PdfError("not_a_pdf")
    try:
        raw = _read_attachment(data, name)
    except PdfError:
        raise
    except RecursionError as exc:
        raise PdfError("not_a_pdf") from exc
    except Exception as exc:  # pypdf raises many kinds on damaged input; none of them is ours
        log.info("unreadable PDF: %s: %s", type(exc).__name__, exc)
        raise PdfError("not_a_pdf") from exc
    if raw is None:
        raise PdfError("no_certificate")
    return _parse_embedded(raw)


def _size(size: int) -> str:
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.3g} MB"
    return f"{max(size // 1024, 1)} KB"


def _read_attachment(data: bytes, name: str) -> bytes | None:
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(data), strict=False)
    if reader.is_encrypted:
        raise PdfError("no_certificate")
    return attachment_of(reader, name)


def attachment_of(reader, name: str) -> bytes | None:
    """The content of the attachment ``name`` of a PDF open in ``reader`` (pypdf); None when it
    has none; PdfError("no_certificate") when it is there but damaged or oversized."""
    from pypdf.generic import ArrayObject, DictionaryObject

    root = reader.trailer.get("/Root")
    root = root.get_object() if root is not None else None
    if not isinstance(root, DictionaryObject):
        raise PdfError("not_a_pdf")
    names = root.get("/Names")
    names = names.get_object() if names is not None else None
    tree = names.get("/EmbeddedFiles") if isinstance(names, DictionaryObject) else None
    # Walk the name tree, within bounds: a hostile file may make it deep, wide or cyclic.
    pending = [(tree, 0)]
    visited = 0
    while pending and visited < 256:
        node, depth = pending.pop()
        node = node.get_object() if node is not None else None
        visited += 1
        if not isinstance(node, DictionaryObject) or depth > 8:
            continue
        entries = node.get("/Names")
        entries = entries.get_object() if entries is not None else None
        if isinstance(entries, ArrayObject):
            for i in range(0, min(len(entries), 512) - 1, 2):
                if str(entries[i].get_object()) == name:
                    found = _file_content(entries[i + 1])
                    if found is not None:
                        return found
        kids = node.get("/Kids")
        kids = kids.get_object() if kids is not None else None
        if isinstance(kids, ArrayObject):
            pending.extend((kid, depth + 1) for kid in list(kids)[:64])
    return None


def _file_content(filespec) -> bytes | None:
    """The bytes of an embedded file, decompressed with a size limit (a bomb is refused)."""
    from pypdf.generic import ArrayObject, DictionaryObject, StreamObject

    filespec = filespec.get_object()
    if not isinstance(filespec, DictionaryObject):
        return None
    ef = filespec.get("/EF")
    ef = ef.get_object() if ef is not None else None
    if not isinstance(ef, DictionaryObject):
        return None
    stream = ef.get("/F") or ef.get("/UF")
    stream = stream.get_object() if stream is not None else None
    if not isinstance(stream, StreamObject):
        return None
    filters = stream.get("/Filter")
    filters = filters.get_object() if filters is not None else None
    if isinstance(filters, ArrayObject):
        if len(filters) > 1:
            raise PdfError("no_certificate")  # we write one filter at most
        filters = filters[0].get_object() if filters else None
    # The stream's raw bytes: pypdf would decode them without our (much smaller) limit.
    raw = stream._data
    if not isinstance(raw, bytes) or len(raw) > ATTACHMENT_MAX:
        raise PdfError("no_certificate")
    if filters is None:
        return raw
    if filters != "/FlateDecode" or stream.get("/DecodeParms"):
        raise PdfError("no_certificate")
    inflater = zlib.decompressobj()
    try:
        content = inflater.decompress(raw, ATTACHMENT_MAX)
    except zlib.error as exc:
        raise PdfError("no_certificate") from exc
    if inflater.unconsumed_tail:  # more than ATTACHMENT_MAX: a decompression bomb
        raise PdfError("no_certificate")
    return content


#: The attachment is a few kilobytes, about 300 bytes more per block retired: a certificate of
#: thousands of blocks (a fragmented holding) must still verify from its own PDF. The same bound
#: as the attachment, which is checked before anything is inflated.
EMBEDDED_JSON_MAX = ATTACHMENT_MAX


def parse_embedded(raw: bytes) -> Embedded:
    """The signed data of an attachment's content; PdfError("no_certificate") when it is not."""
    return _parse_embedded(raw)


def _parse_embedded(raw: bytes) -> Embedded:
    if len(raw) > EMBEDDED_JSON_MAX:
        raise PdfError("no_certificate")
    try:
        obj = jsontext.loads(raw.decode("utf-8"), max_bytes=EMBEDDED_JSON_MAX)
    except (UnicodeDecodeError, jsontext.JsonRefused) as exc:
        raise PdfError("no_certificate") from exc
    if not isinstance(obj, dict):
        raise PdfError("no_certificate")
    fields = {key: obj.get(key) for key in ("payload", "signature", "key_id", "alg")}
    if not all(isinstance(value, str) and value for value in fields.values()):
        raise PdfError("no_certificate")
    return Embedded(**fields)
