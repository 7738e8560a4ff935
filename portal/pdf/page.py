"""The page every portal PDF is drawn on: A4, its colours and margins, where the story's frames
sit, the canvas that numbers the pages, and the header and footer bands drawn on it.

ReportLab keeps per-document state on the shared font objects: ``render_lock`` lets one document
be drawn at a time, whatever its kind.
"""

import threading
from dataclasses import dataclass

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen.canvas import Canvas

GREEN = colors.HexColor("#1d5a45")
INK = colors.HexColor("#1f2933")
MUTED = colors.HexColor("#5f6b76")
RULE = colors.HexColor("#c5d3cc")
TINT = colors.HexColor("#f1f6f3")
RED = colors.HexColor("#b42318")
MONO = "Courier"  # the signature is base64: ASCII in a standard font

PAGE_W, PAGE_H = A4
MARGIN_X = 20 * mm
CONTENT_W = PAGE_W - 2 * MARGIN_X
FRAME_PADDING = {"leftPadding": 0, "rightPadding": 0, "topPadding": 0, "bottomPadding": 0}

# ReportLab keeps per-document state on shared font objects: draw one document at a time.
render_lock = threading.Lock()


@dataclass(frozen=True)
class PageFrame:
    """Where the story goes: the document's top and bottom margins, the bottom of the frames, and
    the frames' heights on the first page and on the later ones (under the continued header)."""

    top_margin: float
    bottom_margin: float
    frame_bottom: float
    first_height: float
    later_height: float


#: The certificate: a double border, the footer inside it.
CERTIFICATE_FRAME = PageFrame(22 * mm, 24 * mm, 19 * mm, PAGE_H - 39 * mm, PAGE_H - 46 * mm)
#: The operator's documents (invoices, contracts): a green band at the top.
LETTERHEAD_FRAME = PageFrame(18 * mm, 24 * mm, 21 * mm, PAGE_H - 37 * mm, PAGE_H - 46 * mm)


class NumberedCanvas(Canvas):
    """Draws "page x of y" once the number of pages is known, and attaches the signed data."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._pages: list[dict] = []

    def showPage(self):
        self._pages.append(dict(self.__dict__))
        self._startPage()

    def save(self):
        for number, state in enumerate(self._pages, start=1):
            self.__dict__.update(state)
            self.draw_page_furniture(number, len(self._pages))
            super().showPage()
        self.before_save()
        super().save()

    def draw_page_furniture(self, page: int, pages: int) -> None:  # pragma: no cover - overridden
        pass

    def before_save(self) -> None:  # pragma: no cover - overridden
        pass


def continued_header(canvas: Canvas, font: str, title: str, number: str, y: float) -> None:
    """The top line of a second or later page: what the document is, and its number."""
    canvas.saveState()
    canvas.setFont(font, 9)
    canvas.setFillColor(GREEN)
    canvas.drawString(MARGIN_X, y, title)
    canvas.setFillColor(INK)
    room = CONTENT_W - stringWidth(title, font, 9) - 20
    canvas.drawRightString(PAGE_W - MARGIN_X, y, fit(number, font, 9, room))
    canvas.setStrokeColor(RULE)
    canvas.setLineWidth(0.5)
    canvas.line(MARGIN_X, y - 4, PAGE_W - MARGIN_X, y - 4)
    canvas.restoreState()


def page_footer(canvas: Canvas, font: str, y: float, left: str, centre: str, page: int, pages: int) -> None:
    """A rule, then the document's number, who issued it and the page count, on every page."""
    canvas.saveState()
    size = 7.5
    canvas.setStrokeColor(RULE)
    canvas.setLineWidth(0.5)
    canvas.line(MARGIN_X, y + 9, PAGE_W - MARGIN_X, y + 9)
    canvas.setFont(font, size)
    canvas.setFillColor(MUTED)
    left = fit(left, font, size, CONTENT_W * 0.3)
    right = f"第 {page} 页 / 共 {pages} 页　Page {page} of {pages}"
    side = max(stringWidth(left, font, size), stringWidth(right, font, size))
    centre = fit(centre, font, size, CONTENT_W - 2 * side - 24)
    canvas.drawString(MARGIN_X, y, left)
    canvas.drawCentredString(PAGE_W / 2, y, centre)
    canvas.drawRightString(PAGE_W - MARGIN_X, y, right)
    canvas.restoreState()


def fit(text: str, font: str, size: float, width: float) -> str:
    """``text``, cut short with an ellipsis to fit ``width`` points."""
    if stringWidth(text, font, size) <= width:
        return text
    while text and stringWidth(text + "…", font, size) > width:
        text = text[:-1]
    return text + "…" if text else ""
