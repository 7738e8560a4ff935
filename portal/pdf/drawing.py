"""The one drawing class of the portal's PDFs, and its one ``build``.

A document (a certificate, an invoice, a contract) is a subclass of :class:`Drawing`: it sets its
paragraph ``styles``, writes its story from what it describes, and draws its page furniture
(``page_background``, ``later_page_background``, ``footer``); ``build`` lays the story out on A4
in the given :class:`~portal.pdf.page.PageFrame`, numbers the pages, embeds the signed data,
dates the file and signs the whole of it with the portal's document-signing certificate
(``sealing``). Untrusted text reaches the PDF only through ``text`` and ``markup``.
"""

import io
from xml.sax.saxutils import escape

from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import BaseDocTemplate, Frame, NextPageTemplate, PageTemplate, Paragraph, Table

from portal.pdf import fonts, sealing
from portal.pdf.embedded import ALG, attach
from portal.pdf.errors import PdfError
from portal.pdf.page import CONTENT_W, FRAME_PADDING, MARGIN_X, NumberedCanvas, PageFrame
from portal.pdf.tables import qr_box
from portal.pdf.text import base64_only, is_http


def load_font() -> tuple[str, frozenset[int]]:
    """The embedded CJK font: (font name, code points it has); ``PdfError("no_font")`` when no
    CJK font can be embedded."""
    try:
        return fonts.load()
    except fonts.FontUnavailable as exc:
        raise PdfError("no_font") from exc


class Drawing:
    """A document being laid out (certificates, invoices, contracts): ``font`` and ``glyphs`` (the
    CJK font), ``fallback`` (for other scripts); ``styles`` is set by the subclass. Untrusted text
    reaches the PDF only through ``text`` and ``markup``."""

    font: str
    glyphs: frozenset[int]
    fallback: tuple[str, frozenset[int]] | None
    styles: dict
    signature: str = ""
    key_id: str = ""

    def __init__(self, *, font: str, glyphs: frozenset[int]):
        self.font = font
        self.glyphs = glyphs
        self.fallback = fonts.load_fallback()  # letters the CJK font lacks

    def text(self, value, max_length: int = 300) -> str:
        return fonts.drawable(value, self.glyphs, max_length)

    def markup(self, value, max_length: int = 300) -> str:
        """Untrusted text as Paragraph markup: safe characters, escaped, in display order, other
        scripts in the fallback font."""
        return fonts.markup(value, (self.font, self.glyphs), self.fallback, max_length)

    def para(self, markup: str, style: str = "value") -> Paragraph:
        return Paragraph(markup, self.styles[style])

    def signed_data_box(self, url: str, lead_zh: str, lead_en: str) -> Table:
        """The QR code of ``url`` beside the link, the key id and the signature of the data
        embedded in the PDF (styles ``heading``, ``td``, ``td_en``, ``url``, ``td_small``,
        ``mono``; ``signature`` and ``key_id`` set by the subclass)."""
        link = self.markup(url, 300)
        if is_http(url):
            href = escape(self.text(url, 1000), {'"': "&quot;"})
            link = f'<link href="{href}">{link}</link>'
        text = [
            self.para("验证 <font size=9 color='#5f6b76'>Verification</font>", "heading"),
            self.para(lead_zh, "td"),
            self.para(lead_en, "td_en"),
            self.para(link, "url"),
            self.para(
                f"签名密钥 Key ID: {self.markup(self.key_id, 80)}　算法 Algorithm: {ALG}　"
                "数字签名 Signature (base64):",
                "td_small",
            ),
            self.para(base64_only(self.signature), "mono"),
        ]
        return qr_box(url, text, 27 * mm, padding=(5, 7))

    # the document

    def build(
        self,
        story: list,
        *,
        frame: PageFrame,
        title: str,
        author: str,
        subject: str,
        creator: str,
        pdf_date: str | None,
        attachment: tuple[str, bytes, str] | None = None,
    ) -> bytes:
        """The PDF of ``story`` on A4 in ``frame``, dated ``pdf_date`` (a PDF date string, not the
        clock; undated when None), with ``attachment`` (name, data, description) embedded when
        given, signed over the whole file (the signature claims ``pdf_date`` as its time)."""
        out = io.BytesIO()
        drawing = self

        class DocumentCanvas(NumberedCanvas):
            def draw_page_furniture(self, page: int, pages: int) -> None:
                drawing.footer(self, page, pages)

            def before_save(self) -> None:
                if attachment is not None:
                    attach(self, *attachment)
                if pdf_date:  # dated by the document, not by when this copy was drawn
                    self.setDateFormatter(lambda *_: pdf_date)

        doc = BaseDocTemplate(
            out,
            pagesize=A4,
            title=title,
            author=author,
            subject=subject,
            creator=creator,
            invariant=1,  # the same document in the same state gives the same bytes
            leftMargin=MARGIN_X,
            rightMargin=MARGIN_X,
            topMargin=frame.top_margin,
            bottomMargin=frame.bottom_margin,
        )
        first = Frame(
            MARGIN_X, frame.frame_bottom, CONTENT_W, frame.first_height, id="first", **FRAME_PADDING
        )
        later = Frame(
            MARGIN_X, frame.frame_bottom, CONTENT_W, frame.later_height, id="later", **FRAME_PADDING
        )
        doc.addPageTemplates(
            [
                PageTemplate("first", [first], onPage=self.page_background),
                PageTemplate("later", [later], onPage=self.later_page_background),
            ]
        )
        doc.build([NextPageTemplate("later"), *story], canvasmaker=DocumentCanvas)
        return sealing.seal_document(out.getvalue(), pdf_date)

    # page furniture, drawn by the subclass

    def page_background(self, canvas: Canvas, doc) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def later_page_background(self, canvas: Canvas, doc) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def footer(self, canvas: Canvas, page: int, pages: int) -> None:  # pragma: no cover - overridden
        raise NotImplementedError
