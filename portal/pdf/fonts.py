"""The CJK font that the portal's PDFs embed (certificates, invoices, contracts), and text made
safe to draw with it.

ReportLab's built-in CID fonts (``STSong-Light``) are not embedded: a viewer without Chinese
fonts shows empty boxes. We embed a subset of a real TrueType font instead. ReportLab embeds
TrueType outlines only; Noto Sans CJK (Debian ``fonts-noto-cjk``) is CFF-flavoured OpenType and
is therefore not a candidate.
"""

import logging
import threading
import unicodedata
from pathlib import Path
from xml.sax.saxutils import escape

from arabic_reshaper import reshape
from bidi import get_display
from flask import current_app, has_app_context
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFError, TTFont

from portal.core.text import BIDI_CONTROLS as STORED_BIDI_CONTROLS

log = logging.getLogger(__name__)

#: TrueType CJK fonts from Debian packages, best first (``fonts-wqy-microhei`` is the one we install).
CANDIDATES = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
    "/usr/share/fonts/truetype/arphic-gbsn00lp/gbsn00lp.ttf",
)

#: A second TrueType font for letters the CJK font lacks (Arabic, Hebrew, and more), drawn with
#: joining and right-to-left order applied; Debian ``fonts-dejavu-core``.
FALLBACK_CANDIDATES = ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",)

REPLACEMENT = "\ufffd"
#: Bidi embeddings, overrides and isolates, and the marks: they would reorder the drawn text.
BIDI_CONTROLS = STORED_BIDI_CONTROLS | frozenset("\u200e\u200f\u061c")

_lock = threading.Lock()
#: path -> (registered font name, its character map); loading a CJK font takes ~100 ms.
_loaded: dict[str, tuple[str, frozenset[int]]] = {}
_unusable: set[str] = set()


class FontUnavailable(Exception):
    """No usable CJK font: none found, or the configured one cannot be embedded."""


def font_path() -> Path | None:
    """The CJK font file to embed: ``PDF_FONT`` (env ``PORTAL_PDF_FONT``) if configured, else the
    first known system font that exists and can be embedded."""
    configured = current_app.config.get("PDF_FONT") if has_app_context() else None
    if configured:
        path = Path(configured)
        return path if path.is_file() else None
    for candidate in CANDIDATES:
        if candidate in _unusable:
            continue
        path = Path(candidate)
        if path.is_file():
            return path
    return None


def load() -> tuple[str, frozenset[int]]:
    """Register the CJK font with ReportLab once per process: (font name, code points it has)."""
    while True:
        path = font_path()
        if path is None:
            raise FontUnavailable("no CJK font found")
        key = str(path)
        with _lock:
            if key in _loaded:
                return _loaded[key]
            try:
                font = TTFont(f"PortalCJK{len(_loaded)}", key, subfontIndex=0)
            except (TTFError, OSError, ValueError, KeyError, IndexError) as exc:
                log.error("cannot embed the font %s: %s", key, exc)
                if current_app.config.get("PDF_FONT"):
                    raise FontUnavailable(key) from exc
                _unusable.add(key)  # try the next candidate
                continue
            pdfmetrics.registerFont(font)
            _loaded[key] = (font.fontName, frozenset(font.face.charToGlyph))
            log.info("certificate PDFs embed the font %s", key)
            return _loaded[key]


def load_fallback() -> tuple[str, frozenset[int]] | None:
    """Register the fallback font once per process: (font name, code points it has), or None
    when it is not installed (those letters are then drawn as U+FFFD)."""
    for candidate in FALLBACK_CANDIDATES:
        with _lock:
            if candidate in _loaded:
                return _loaded[candidate]
            if candidate in _unusable or not Path(candidate).is_file():
                continue
            try:
                font = TTFont("PortalFallback", candidate)
            except (TTFError, OSError, ValueError, KeyError, IndexError) as exc:
                log.error("cannot embed the fallback font %s: %s", candidate, exc)
                _unusable.add(candidate)
                continue
            pdfmetrics.registerFont(font)
            _loaded[candidate] = (font.fontName, frozenset(font.face.charToGlyph))
            return _loaded[candidate]
    return None


def visual(text: str, glyphs: frozenset[int]) -> str:
    """``text`` in the order it is drawn: right-to-left runs (Arabic, Hebrew) reversed by the
    Unicode bidi algorithm, Arabic letters joined (presentation forms) when the fonts have them.
    Text without right-to-left letters is returned as it is."""
    if not any(unicodedata.bidirectional(c) in ("R", "AL") for c in text):
        return text
    shaped = reshape(text)
    if any(ord(c) not in glyphs for c in shaped if c not in text):
        shaped = text  # no joined forms in the fonts: isolated letters are still readable
    return get_display(shaped)


def markup(value, cjk: tuple[str, frozenset[int]], fallback, max_length: int = 300) -> str:
    """Untrusted ``value`` as escaped Paragraph markup, in display order, with the letters the
    CJK font lacks set in the fallback font (``<font name=…>`` runs)."""
    glyphs = cjk[1] | fallback[1] if fallback else cjk[1]
    text = visual(drawable(value, glyphs, max_length), glyphs)
    if not fallback:
        return escape(text)
    out, run, in_fallback = [], [], False
    for char in text:
        wanted = ord(char) not in cjk[1] and ord(char) in fallback[1]
        if wanted != in_fallback and run:
            out.append(_run("".join(run), fallback[0] if in_fallback else None))
            run = []
        in_fallback = wanted
        run.append(char)
    if run:
        out.append(_run("".join(run), fallback[0] if in_fallback else None))
    return "".join(out)


def _run(text: str, font: str | None) -> str:
    return f'<font name="{font}">{escape(text)}</font>' if font else escape(text)


def drawable(value, glyphs: frozenset[int], max_length: int = 300) -> str:
    """``value`` as text that is safe to draw: one line of printable characters the font has.

    Bidi controls and invisible format characters are removed, control characters and line
    breaks become spaces, characters the font lacks become U+FFFD, and text longer than
    ``max_length`` is cut with an ellipsis. For drawing only: what was signed is never changed.
    """
    if value is None:
        return ""
    text = unicodedata.normalize("NFC", str(value))
    out: list[str] = []
    for char in text:
        if char in BIDI_CONTROLS:
            continue
        category = unicodedata.category(char)
        if category == "Cf":  # zero-width joiners, BOM, soft hyphen, language tags
            continue
        if category in ("Cc", "Zl", "Zp") or (category == "Zs" and char != " "):
            char = " "
        elif category in ("Co", "Cs", "Cn") or ord(char) not in glyphs:
            char = REPLACEMENT
        if char == " " and (not out or out[-1] == " "):
            continue
        if char == REPLACEMENT and out and out[-1] == REPLACEMENT:
            continue
        out.append(char)
    text = "".join(out).strip()
    if len(text) > max_length:
        text = text[: max_length - 1].rstrip() + "…"
    return text
