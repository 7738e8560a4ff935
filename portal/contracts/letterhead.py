"""The operator's documents (invoices, contracts): what they share on the page.

Both are drawn on A4 in Chinese with the English beside or below it (they are not translated
through Babel: both languages are on the page), in the certificates' visual language and with
the same embedded CJK font. Names, titles and reasons were typed by people: they are drawn only
after ``fonts.drawable`` has made them safe and, in Paragraph markup, escaped.
"""

from datetime import date, datetime
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER, TA_RIGHT
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import Paragraph, Spacer, Table, TableStyle

from portal.core.amounts import yuan
from portal.core.i18n import date_text
from portal.core.seller import PLATFORM_EN, PLATFORM_ZH, seller
from portal.pdf.drawing import Drawing
from portal.pdf.page import (
    CONTENT_W,
    GREEN,
    INK,
    LETTERHEAD_FRAME,
    MONO,
    MUTED,
    PAGE_H,
    PAGE_W,
    RULE,
    continued_header,
    page_footer,
)
from portal.pdf.tables import CELL_PADDING
from portal.pdf.text import CentredLine

#: The colours for ``<font color=...>`` in Paragraph markup.
GREY = "#" + MUTED.hexval()[2:]
GREEN_HEX = "#" + GREEN.hexval()[2:]
AMBER = colors.HexColor("#b45309")  # open: to be paid, not yet late


class Letterhead(Drawing):
    """What the operator's documents (invoices, contracts) share: the type, bilingual labels,
    headings and amounts, the two parties, the green band at the top, the continued-page header
    and the footer. The subclass sets ``number`` and the words below, and writes ``story``."""

    #: What the document is, for the continued-page header and the PDF's title.
    kind_zh = ""
    kind_en = ""
    #: The footer's label for the document's number.
    number_label = ""

    def __init__(self, *, font: str, glyphs: frozenset[int]):
        super().__init__(font=font, glyphs=glyphs)
        self.styles = self._styles()

    def _styles(self) -> dict[str, ParagraphStyle]:
        base = ParagraphStyle(
            "base", fontName=self.font, fontSize=9.5, leading=13, textColor=INK, wordWrap="CJK"
        )

        def style(name, **kw):
            return ParagraphStyle(name, parent=base, **kw)

        return {
            "value": base,
            "letterhead": style("letterhead", fontSize=12.5, leading=15, alignment=TA_CENTER),
            "strong": style("strong", fontSize=11, leading=14.5),
            "strong_r": style("strong_r", fontSize=11, leading=14.5, alignment=TA_RIGHT),
            "label": style("label", fontSize=8.5, leading=10.5, textColor=GREEN),
            "heading": style("heading", fontSize=11, leading=14, textColor=GREEN, spaceAfter=3),
            "party": style("party", fontSize=10.5, leading=14),
            "th": style("th", fontSize=8, leading=10, textColor=colors.white),
            "th_r": style("th_r", fontSize=8, leading=10, textColor=colors.white, alignment=TA_RIGHT),
            "td": style("td", fontSize=8.5, leading=11),
            "td_r": style("td_r", fontSize=8.5, leading=11, alignment=TA_RIGHT),
            "td_en": style("td_en", fontSize=7.8, leading=10.5, textColor=MUTED),
            "td_small": style("td_small", fontSize=6.5, leading=8.5, textColor=MUTED),
            "mono": style("mono", fontName=MONO, fontSize=6.5, leading=8),
            "small": style("small", fontSize=8, leading=11),
            "small_en": style("small_en", fontSize=7.5, leading=10, textColor=MUTED),
            "url": style("url", fontSize=8.5, leading=12, textColor=GREEN),
            "badge": style("badge", fontSize=9, leading=11, alignment=TA_CENTER, textColor=colors.white),
            "band": style("band", fontSize=8.5, leading=12, textColor=colors.white),
            "band_title": style(
                "band_title", fontSize=15, leading=18, textColor=colors.white, alignment=TA_CENTER
            ),
        }

    def fitted(self, text: str, style: str, width: float, smallest: float = 0) -> Paragraph:
        """Plain ``text`` in a cell ``width`` wide, in smaller type (down to ``smallest``) rather
        than wrapped; wrapped when even that is too wide."""
        size = self.styles[style].fontSize
        room = width - CELL_PADDING - 1
        natural = stringWidth(text, self.font, size)
        if natural > room:
            size = max(smallest, size * room / natural)
        return self.para(f"<font size={size:.2f}>{escape(text)}</font>", style)

    def day(self, value: date | datetime | str | None, width: float) -> Paragraph:
        """A day in a table cell ``width`` wide: in Chinese above English in grey, each on one
        line, in smaller type rather than a date broken in two (``2026年12月10日`` is the
        widest). ``value`` may be an ISO 8601 instant from a contract document; None is "—"."""
        if value is None:
            return self.para("—", "td")
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        zh, en = date_text(value, "zh"), date_text(value, "en")
        size = self.styles["td"].fontSize
        room = width - CELL_PADDING - 1
        natural = max(stringWidth(zh, self.font, size), stringWidth(en, self.font, size))
        if natural > room:
            size = size * room / natural
        return self.para(f"<font size={size:.2f}>{zh}<br/><font color='{GREY}'>{en}</font></font>", "td")

    def money(self, amount, style: str, width: float) -> Paragraph:
        """An amount on one line: smaller type rather than a figure broken in two."""
        return self.fitted(yuan(amount), style, width)

    def label(self, zh: str, en: str) -> Paragraph:
        return self.para(f'{zh}<br/><font size="7" color="{GREY}">{en}</font>', "label")

    def th(self, zh: str, en: str, style: str = "th") -> Paragraph:
        return self.para(f"{zh}<br/><font size=6.5>{en}</font>", style)

    def heading(self, zh: str, en: str) -> Paragraph:
        return self.para(f"{zh} <font size=8.5 color='{GREY}'>{en}</font>", "heading")

    def badge(self, zh: str, en: str, background: colors.Color) -> Table:
        badge = Table([[self.para(f"{zh}　{en}", "badge")]], colWidths=[32 * mm], hAlign="LEFT")
        badge.setStyle(
            TableStyle(
                [
                    ("BACKGROUND", (0, 0), (-1, -1), background),
                    ("TOPPADDING", (0, 0), (-1, -1), 2.5),
                    ("BOTTOMPADDING", (0, 0), (-1, -1), 3.5),
                    ("LEFTPADDING", (0, 0), (-1, -1), 2),
                    ("RIGHTPADDING", (0, 0), (-1, -1), 2),
                ]
            )
        )
        return badge

    def parties(self, name_zh, name_en, uscc) -> Table:
        """The seller (the operator) and the buyer, side by side."""
        the_seller = seller()
        selling = [
            self.label("销售方", "Seller"),
            Spacer(1, 3),
            self.para(self.markup(the_seller.name_zh, 200), "party"),
            self.para(self.markup(the_seller.name_en, 200), "small_en"),
            self.para(
                f"统一社会信用代码 <font color='{GREY}'>USCC</font>　{self.markup(the_seller.uscc, 40)}",
                "small",
            ),
            # The payee account (bank, number): what a bank transfer names the seller by. (The
            # marketplace the seller sells through is named in every page's footer.)
            self.para(
                f"{self.markup(the_seller.bank, 100)} {self.markup(the_seller.account_display, 60)}", "small"
            ),
        ]
        buyer = [self.label("购买方", "Buyer"), Spacer(1, 3)]
        name_zh = self.markup(name_zh, 200)
        name_en = self.markup(name_en, 200)
        if name_zh:
            buyer.append(self.para(name_zh, "party"))
        if name_en:
            buyer.append(self.para(name_en, "party" if not name_zh else "small_en"))
        if not name_zh and not name_en:
            buyer.append(self.para("—", "party"))
        buyer += [
            Spacer(1, 3),
            self.para(f"统一社会信用代码 <font color='{GREY}'>USCC</font>　{self.markup(uscc, 40)}", "small"),
        ]
        gap = 6 * mm
        half = (CONTENT_W - gap) / 2
        table = Table([[selling, "", buyer]], colWidths=[half, gap, half])
        table.setStyle(
            TableStyle(
                [
                    ("VALIGN", (0, 0), (-1, -1), "TOP"),
                    ("BOX", (0, 0), (0, 0), 0.5, RULE),
                    ("BOX", (2, 0), (2, 0), 0.5, RULE),
                    ("LINEABOVE", (0, 0), (0, 0), 1.2, GREEN),
                    ("LINEABOVE", (2, 0), (2, 0), 1.2, GREEN),
                    ("TOPPADDING", (0, 0), (-1, -1), 5),
                    ("BOTTOMPADDING", (0, 0), (-1, -1), 6),
                    ("LEFTPADDING", (0, 0), (-1, -1), 7),
                    ("RIGHTPADDING", (0, 0), (-1, -1), 7),
                ]
            )
        )
        return table

    def letterhead(self, title_zh: str, title_en: str) -> list:
        """The seller's name, then the document's title in both languages."""
        the_seller = seller()
        return [
            self.para(
                f"<font size=12.5 color='{GREEN_HEX}'>{self.markup(the_seller.name_zh, 200)}</font>"
                f"　<font size=8.5 color='{GREY}'>{self.markup(the_seller.name_en, 200)}</font>",
                "letterhead",
            ),
            Spacer(1, 7),
            CentredLine(title_zh, self.font, 24, INK, bold=True, char_space=6, space_after=3),
            CentredLine(title_en, self.font, 10.5, INK, char_space=3, space_after=9),
        ]

    # the document
    def render(
        self, story: list, *, pdf_date: str, attachment: tuple[str, bytes, str] | None = None
    ) -> bytes:
        """The PDF of ``story``, dated ``pdf_date`` (a PDF date string, not the clock), with
        ``attachment`` (name, data, description) embedded when given."""
        return self.build(
            story,
            frame=LETTERHEAD_FRAME,
            title=f"{self.kind_zh} {self.kind_en} {self.number}",
            author=f"{seller().name_zh} {seller().name_en}",
            subject=f"{self.kind_en} {self.number}",
            creator=PLATFORM_EN,
            pdf_date=pdf_date,
            attachment=attachment,
        )

    # page furniture

    def page_background(self, canvas: Canvas, doc) -> None:
        canvas.saveState()
        canvas.setFillColor(GREEN)
        canvas.rect(0, PAGE_H - 6 * mm, PAGE_W, 6 * mm, stroke=0, fill=1)
        canvas.restoreState()

    def later_page_background(self, canvas: Canvas, doc) -> None:
        self.page_background(canvas, doc)
        title = f"{self.kind_zh} {self.kind_en} — 续页 continued"
        continued_header(canvas, self.font, title, self.number, PAGE_H - 20 * mm)

    def footer(self, canvas: Canvas, page: int, pages: int) -> None:
        page_footer(
            canvas,
            self.font,
            14 * mm,
            f"{self.number_label} No. {self.number}",
            f"{PLATFORM_ZH} {PLATFORM_EN}",
            page,
            pages,
        )


def date_of(instant: str | None) -> str:
    """The Beijing day of an ISO 8601 instant from a contract document, or "—"."""
    return date_markup(datetime.fromisoformat(instant)) if instant else "—"


def date_markup(value: date | datetime, between: str = " ") -> str:
    """Markup of a day (a moment's, in Beijing) in Chinese, then in English in grey."""
    return f"{date_text(value, 'zh')}{between}<font color='{GREY}'>{date_text(value, 'en')}</font>"
