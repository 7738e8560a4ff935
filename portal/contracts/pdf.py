"""Invoice and contract PDFs for offtake contracts, and amounts written in Chinese capital numerals.

Both are drawn on A4 in Chinese with the English beside or below it (they are not translated
through Babel: both languages are on the page), in the certificates' visual language and with
the same embedded CJK font. Names, titles and reasons were typed by people: they are drawn only
after ``fonts.drawable`` has made them safe and, in Paragraph markup, escaped.

A signed contract's PDF is drawn from its document (:func:`contract_document`), which is signed
with the certificates' key and attached to the PDF the way a certificate's signed data is, with a
QR code of the contract's address. A draft has no PDF: its terms are not agreed yet.
"""

import io
import json
from collections import Counter
from datetime import UTC, date, datetime
from decimal import Decimal
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER, TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    BaseDocTemplate,
    CondPageBreak,
    Frame,
    KeepTogether,
    NextPageTemplate,
    PageTemplate,
    Paragraph,
    Spacer,
    Table,
    TableStyle,
)
from sqlalchemy import select

from portal.catalog.models import Region
from portal.certificates import fonts, signing

# The certificates' colours, margins and page furniture; their lock too, because ReportLab keeps
# per-document state on the font objects that both kinds of PDF share.
from portal.certificates.pdf import (
    CONTENT_W,
    FRAME_PADDING,
    GREEN,
    INK,
    MARGIN_X,
    MONO,
    MUTED,
    PAGE_H,
    PAGE_W,
    PROJECT_TYPES,
    RED,
    RULE,
    TINT,
    CentredLine,
    NumberedCanvas,
    PdfError,
    TextDrawing,
    attach,
    continued_header,
    page_footer,
    qr_box,
    render_lock,
)
from portal.contracts.models import (
    Contract,
    ContractStatus,
    DeliveryMode,
    Invoice,
    InvoiceStatus,
    PaymentMethod,
)
from portal.core.i18n import absolute_url, date_text, period_text
from portal.extensions import db
from portal.timeutil import beijing_today

#: The operator, named as in the site's footer and the demo projects' descriptions.
SELLER_ZH = "赤峰市农投集团"
SELLER_EN = "Chifeng Agricultural Investment Group"
#: The marketplace through which it sells (the certificates' issuer).
PLATFORM_ZH = "赤峰市碳汇交易平台"
PLATFORM_EN = "Chifeng Carbon Sink Marketplace"

METHODS = {
    PaymentMethod.BANK: ("银行转账", "Bank transfer"),
    PaymentMethod.STRIPE: ("在线支付", "Online payment"),
}
#: The colours for ``<font color=...>`` in Paragraph markup.
GREY = "#" + MUTED.hexval()[2:]
GREEN_HEX = "#" + GREEN.hexval()[2:]
#: Left plus right padding of the cells of the batch and payment tables.
CELL_PADDING = 8
AMBER = colors.HexColor("#b45309")  # open: to be paid, not yet late

# --- money ----------------------------------------------------------------------------------------

CENT = Decimal("0.01")
DIGITS = "零壹贰叁肆伍陆柒捌玖"
PLACES = ("", "拾", "佰", "仟")
#: Chinese numbers group by 10^4: 万, 亿 (10^8), 万亿 (10^12).
GROUPS = ("", "万", "亿", "万亿")


def _exact(amount) -> Decimal:
    """``amount`` as a Decimal of whole fen; a float or anything finer than a fen is refused."""
    if isinstance(amount, float | bool):
        raise TypeError("money is a Decimal, an int or a string, never a float")
    value = Decimal(amount)
    if not value.is_finite() or value != value.quantize(CENT):
        raise ValueError(f"not an amount in whole fen: {amount!r}")
    return value.quantize(CENT)


def yuan(amount) -> str:
    """``¥12,345.00``: exact, two decimals, thousands separated."""
    value = _exact(amount)
    return f"-¥{-value:,.2f}" if value < 0 else f"¥{value:,.2f}"


def amount_in_words(amount) -> str:
    """The amount in Chinese capital numerals (大写金额), as bills and invoices write it.

    ``12345`` → 壹万贰仟叁佰肆拾伍元整, ``100001.10`` → 壹拾万零壹元壹角整, ``0.05`` → 伍分,
    ``16409.02`` → 壹万陆仟肆佰零玖元零贰分. A run of zeros inside the number is one 零; a
    leading ten is 壹拾; 整 ends an amount without fen.
    """
    value = _exact(amount)
    if value < 0:
        raise ValueError("a negative amount has no capital form")
    fen_total = int(value * 100)
    whole, rest = divmod(fen_total, 100)
    jiao, fen = divmod(rest, 10)
    if whole >= 10 ** (4 * len(GROUPS)):
        raise ValueError("amount too large")
    words = _integer_words(whole)
    if whole:
        words += "元"
    if jiao:
        words += DIGITS[jiao] + "角"
    elif fen and whole:
        words += "零"  # 元 is followed by a zero 角: ¥16,409.02 is …元零贰分
    if fen:
        return words + DIGITS[fen] + "分"
    return (words or "零元") + "整"


def _integer_words(number: int) -> str:
    groups = []
    while number:
        number, group = divmod(number, 10000)
        groups.append(group)
    words = ""
    skipped = False  # a group of four zeros since the last digit written
    for index in range(len(groups) - 1, -1, -1):
        group = groups[index]
        if group == 0:
            skipped = True
            continue
        if words and (skipped or group < 1000):
            words += "零"
        words += _group_words(group) + GROUPS[index]
        skipped = False
    return words


def _group_words(group: int) -> str:
    """1 to 9999 without its group's unit: 1004 → 壹仟零肆, 10 → 壹拾, 1040 → 壹仟零肆拾."""
    words = ""
    zero = False
    for place in (3, 2, 1, 0):
        digit = group // 10**place % 10
        if digit == 0:
            zero = bool(words)
            continue
        if zero:
            words += "零"
            zero = False
        words += DIGITS[digit] + PLACES[place]
    return words


# --- drawing --------------------------------------------------------------------------------------


def render_invoice(invoice: Invoice, *, today: date | None = None) -> bytes:
    """The invoice as an A4 PDF. ``today`` (Beijing) decides whether an open invoice is overdue.

    Raises ``portal.certificates.pdf.PdfError("no_font")`` when no CJK font can be embedded.
    """
    try:
        font, glyphs = fonts.load()
    except fonts.FontUnavailable as exc:
        raise PdfError("no_font") from exc
    drawing = _InvoiceDrawing(
        invoice,
        font=font,
        glyphs=glyphs,
        today=today or beijing_today(),
        url=absolute_url("contracts.buyer_invoice", number=invoice.number),
    )
    with render_lock:
        return drawing.build()


class _Letterhead(TextDrawing):
    """What the operator's documents (invoices, contracts) share: the type, bilingual labels,
    headings and amounts, the two parties, the green band at the top, the continued-page header
    and the footer. The subclass sets ``number`` and the words below, and writes ``story``."""

    #: What the document is, for the continued-page header and the PDF's title.
    kind_zh = ""
    kind_en = ""
    #: The footer's label for the document's number.
    number_label = ""

    def __init__(self, *, font: str, glyphs: frozenset[int]):
        self.font = font
        self.glyphs = glyphs
        self.fallback = fonts.load_fallback()  # letters the CJK font lacks
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
        seller = [
            self.label("销售方", "Seller"),
            Spacer(1, 3),
            self.para(SELLER_ZH, "party"),
            self.para(SELLER_EN, "small_en"),
            Spacer(1, 3),
            self.para(f"{PLATFORM_ZH} <font color='{GREY}'>{PLATFORM_EN}</font>", "small"),
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
        table = Table([[seller, "", buyer]], colWidths=[half, gap, half])
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
        return [
            self.para(
                f"<font size=12.5 color='{GREEN_HEX}'>{SELLER_ZH}</font>"
                f"　<font size=8.5 color='{GREY}'>{SELLER_EN}</font>",
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
        out = io.BytesIO()
        drawing = self

        class DocumentCanvas(NumberedCanvas):
            def draw_page_furniture(self, page: int, pages: int) -> None:
                drawing.footer(self, page, pages)

            def before_save(self) -> None:
                if attachment is not None:
                    attach(self, *attachment)
                self.setDateFormatter(lambda *_: pdf_date)

        doc = BaseDocTemplate(
            out,
            pagesize=A4,
            title=f"{self.kind_zh} {self.kind_en} {self.number}",
            author=f"{SELLER_ZH} {SELLER_EN}",
            subject=f"{self.kind_en} {self.number}",
            creator=PLATFORM_EN,
            invariant=1,  # the same document in the same state gives the same bytes
            leftMargin=MARGIN_X,
            rightMargin=MARGIN_X,
            topMargin=18 * mm,
            bottomMargin=24 * mm,
        )
        first = Frame(MARGIN_X, 21 * mm, CONTENT_W, PAGE_H - 37 * mm, id="first", **FRAME_PADDING)
        later = Frame(MARGIN_X, 21 * mm, CONTENT_W, PAGE_H - 46 * mm, id="later", **FRAME_PADDING)
        doc.addPageTemplates(
            [
                PageTemplate("first", [first], onPage=self.page_background),
                PageTemplate("later", [later], onPage=self.later_page_background),
            ]
        )
        doc.build([NextPageTemplate("later"), *story], canvasmaker=DocumentCanvas)
        return out.getvalue()

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


class _InvoiceDrawing(_Letterhead):
    """One invoice being laid out."""

    kind_zh = "发票"
    kind_en = "Invoice"
    number_label = "发票编号"

    def __init__(self, invoice: Invoice, *, font: str, glyphs: frozenset[int], today: date, url: str):
        super().__init__(font=font, glyphs=glyphs)
        self.invoice = invoice
        self.today = today
        self.url = url
        self.number = self.text(invoice.number, 40)

    def build(self) -> bytes:
        issued = self.invoice.issued_on
        # dated when issued, not when drawn
        return self.render(self.story(), pdf_date=f"D:{issued:%Y%m%d}000000+08'00'")

    def story(self) -> list:
        story = self.letterhead("发　票", "INVOICE")
        story.append(self.summary())
        story.append(Spacer(1, 8))
        org = self.invoice.contract.organisation
        story.append(self.parties(org.name_zh, org.name_en, org.uscc))
        story.append(Spacer(1, 9))
        story.append(self.heading("合同与交付", "Contract and delivery"))
        story.append(self.delivery_facts())
        story.append(Spacer(1, 9))
        story.append(CondPageBreak(45 * mm))  # a heading never ends a page
        story.append(self.heading("交付明细", "Credits delivered"))
        items, totals = self.items()
        story += [items, KeepTogether(totals)]
        if self.invoice.payments:
            story.append(Spacer(1, 9))
            story.append(KeepTogether([self.heading("付款记录", "Payments received"), self.payments()]))
        story.append(Spacer(1, 10))
        story.append(KeepTogether(self.how_to_pay()))
        return story

    def status(self) -> tuple[str, str, colors.Color]:
        """(Chinese, English, colour) of the invoice's state."""
        inv = self.invoice
        if inv.status == InvoiceStatus.PAID:
            return "已付清", "Paid", GREEN
        if inv.is_overdue(self.today):
            return "已逾期", "Overdue", RED
        if inv.paid_amount > 0:
            return "部分付款", "Partly paid", AMBER
        return "待付款", "Open", AMBER

    def summary(self) -> Table:
        """The invoice number, status, dates and amounts, in a band under the title."""
        inv = self.invoice
        badge = self.badge(*self.status())
        rows = [
            [
                self.label("发票编号", "Invoice No."),
                self.para(self.markup(self.number), "strong"),
                self.label("状态", "Status"),
                badge,
            ],
            [
                self.label("开票日期", "Issue date"),
                self.para(_date(inv.issued_on)),
                self.label("付款期限", "Due date"),
                self.para(_date(inv.due_on)),
            ],
            [
                self.label("发票金额", "Invoice amount"),
                self.para(escape(yuan(inv.amount))),
                self.label("币种", "Currency"),
                self.para(f"人民币 <font color='{GREY}'>Chinese yuan</font> {self.markup(inv.currency, 3)}"),
            ],
            [
                self.label("已付金额", "Paid"),
                self.para(escape(yuan(inv.paid_amount))),
                self.label("应付余额", "Amount due"),
                self.para(escape(yuan(inv.outstanding)), "strong"),
            ],
        ]
        table = Table(rows, colWidths=[27 * mm, 58 * mm, 27 * mm, CONTENT_W - 112 * mm])
        table.setStyle(
            TableStyle(
                [
                    ("BACKGROUND", (0, 0), (-1, -1), TINT),
                    ("LINEABOVE", (0, 0), (-1, 0), 1.2, GREEN),
                    ("LINEBELOW", (0, -1), (-1, -1), 1.2, GREEN),
                    ("LINEBELOW", (0, 0), (-1, -2), 0.4, RULE),
                    ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
                    ("TOPPADDING", (0, 0), (-1, -1), 2.5),
                    ("BOTTOMPADDING", (0, 0), (-1, -1), 3.5),
                    ("LEFTPADDING", (0, 0), (-1, -1), 6),
                ]
            )
        )
        return table

    def delivery_facts(self) -> Table:
        inv = self.invoice
        contract = inv.contract
        delivery = inv.delivery
        tranche = delivery.tranche
        count = len(contract.tranches)
        if delivery.mode == DeliveryMode.RETIRE:
            certificate = delivery.certificate
            mode = (
                f"代为注销 <font color='{GREY}'>Retired on the buyer's behalf</font>　"
                f"注销证明编号 <font color='{GREY}'>Certificate No.</font> "
                f"{self.markup(certificate.number if certificate else '—', 40)}"
            )
        else:
            mode = f"转入买方持有账户 <font color='{GREY}'>Moved to the buyer's holding</font>"
        rows = [
            [
                self.label("合同编号", "Contract No."),
                self.para(self.markup(contract.number, 40)),
                self.label("交付日期", "Delivered on"),
                self.para(_date(delivery.created_at, "<br/>")),
            ],
            [self.label("合同名称", "Contract title"), self.para(self.markup(contract.title, 200)), "", ""],
            [
                self.label("交付批次", "Tranche"),
                self.para(
                    f"第 {tranche.seq} 批，共 {count} 批 <font color='{GREY}'>"
                    f"Tranche {tranche.seq} of {count}</font>"
                ),
                self.label("约定交付日", "Tranche due"),
                self.para(_date(tranche.due, "<br/>")),
            ],
            [
                self.label("交付数量", "Quantity"),
                self.para(f"{delivery.quantity:,} 吨 <font color='{GREY}'>tonnes CO₂e</font>"),
                self.label("单价", "Unit price"),
                self.para(f"{escape(yuan(inv.unit_price))} <font color='{GREY}'>/ 吨 per tonne</font>"),
            ],
            [self.label("交付方式", "Delivery"), self.para(mode), "", ""],
        ]
        table = Table(rows, colWidths=[27 * mm, 73 * mm, 27 * mm, CONTENT_W - 127 * mm])
        table.setStyle(
            TableStyle(
                [
                    ("SPAN", (1, 1), (-1, 1)),
                    ("SPAN", (1, 4), (-1, 4)),
                    ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
                    ("LINEABOVE", (0, 0), (-1, 0), 1.2, GREEN),
                    ("LINEBELOW", (0, 0), (-1, -2), 0.4, RULE),
                    ("LINEBELOW", (0, -1), (-1, -1), 1.2, GREEN),
                    ("TOPPADDING", (0, 0), (-1, -1), 2.5),
                    ("BOTTOMPADDING", (0, 0), (-1, -1), 3.5),
                    ("LEFTPADDING", (0, 0), (-1, -1), 6),
                ]
            )
        )
        return table

    def items(self) -> tuple[Table, list]:
        inv = self.invoice
        widths = [9 * mm, 38 * mm, 42 * mm, 15 * mm, 17 * mm, 20 * mm]
        widths.append(CONTENT_W - sum(widths))
        rows = [
            [
                self.th("序号", "No."),
                self.th("批次编号", "Batch"),
                self.th("项目", "Project"),
                self.th("减排年份", "Vintage"),
                self.th("数量（吨）", "Quantity (t)", "th_r"),
                self.th("单价", "Unit price", "th_r"),
                self.th("金额", "Amount", "th_r"),
            ]
        ]
        for index, line in enumerate(inv.delivery.lines, 1):
            batch = line.batch
            project = batch.project
            name = self.markup(project.name_zh, 120)
            if project.name_en:
                name += f"<br/><font size=7 color='{GREY}'>{self.markup(project.name_en, 200)}</font>"
            rows.append(
                [
                    self.para(str(index), "td"),
                    self.fitted(self.text(batch.code, 80), "td", widths[1], smallest=7),
                    self.para(name, "td"),
                    self.para(escape(period_text(batch.vintage_start, batch.vintage_end, "zh")), "td"),
                    self.para(f"{line.quantity:,}", "td_r"),
                    self.money(inv.unit_price, "td_r", widths[5]),
                    self.money(inv.unit_price * line.quantity, "td_r", widths[6]),
                ]
            )
        table = Table(rows, colWidths=widths, repeatRows=1)
        table.setStyle(
            TableStyle(
                [
                    ("BACKGROUND", (0, 0), (-1, 0), GREEN),
                    ("VALIGN", (0, 0), (-1, 0), "BOTTOM"),
                    ("VALIGN", (0, 1), (-1, -1), "TOP"),
                    ("ROWBACKGROUNDS", (0, 1), (-1, -1), [colors.white, TINT]),
                    ("LINEBELOW", (0, 1), (-1, -1), 0.3, RULE),
                    ("TOPPADDING", (0, 0), (-1, -1), 3.5),
                    ("BOTTOMPADDING", (0, 0), (-1, -1), 4),
                    ("LEFTPADDING", (0, 0), (-1, -1), CELL_PADDING / 2),
                    ("RIGHTPADDING", (0, 0), (-1, -1), CELL_PADDING / 2),
                ]
            )
        )
        # The totals are a table of their own, kept together: a page never ends between the
        # figures and the amount in words.
        label_w = sum(widths[:4])
        totals = Table(
            [
                [
                    self.para(f"合计 <font color='{GREY}'>Total</font>", "td"),
                    self.para(f"{inv.quantity:,}", "td_r"),
                    "",
                    self.money(inv.amount, "strong_r", widths[6]),
                ],
                [
                    self.para(
                        f"金额大写 <font color='{GREY}'>Amount in words</font>　"
                        f"<font size=10.5>人民币{amount_in_words(inv.amount)}</font>",
                        "td",
                    ),
                    "",
                    "",
                    "",
                ],
            ],
            colWidths=[label_w, widths[4], widths[5], widths[6]],
        )
        totals.setStyle(
            TableStyle(
                [
                    ("SPAN", (0, 1), (-1, 1)),
                    ("LINEABOVE", (0, 0), (-1, 0), 1, GREEN),
                    ("LINEBELOW", (0, 0), (-1, 0), 0.4, RULE),
                    ("LINEBELOW", (0, 1), (-1, 1), 1.2, GREEN),
                    ("BACKGROUND", (0, 1), (-1, 1), TINT),
                    ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
                    ("TOPPADDING", (0, 0), (-1, -1), 4),
                    ("BOTTOMPADDING", (0, 0), (-1, -1), 5),
                    ("LEFTPADDING", (0, 0), (-1, -1), CELL_PADDING / 2),
                    ("RIGHTPADDING", (0, 0), (-1, -1), CELL_PADDING / 2),
                ]
            )
        )
        return table, [totals]

    def payments(self) -> Table:
        """The money received against the invoice (the totals are in the summary band)."""
        widths = [25 * mm, 42 * mm, 73 * mm]
        widths.append(CONTENT_W - sum(widths))
        rows = [
            [
                self.th("收款日期", "Received on"),
                self.th("付款方式", "Method"),
                self.th("参考号", "Reference"),
                self.th("金额", "Amount", "th_r"),
            ]
        ]
        for payment in self.invoice.payments:
            zh, en = METHODS.get(payment.method, (payment.method, ""))
            rows.append(
                [
                    self.para(_date(payment.received_on, "<br/>"), "td"),
                    self.para(f"{self.markup(zh, 20)} <font color='{GREY}'>{escape(en)}</font>", "td"),
                    self.para(self.markup(payment.reference, 200), "td"),
                    self.money(payment.amount, "td_r", widths[3]),
                ]
            )
        table = Table(rows, colWidths=widths, repeatRows=1)
        table.setStyle(
            TableStyle(
                [
                    ("BACKGROUND", (0, 0), (-1, 0), GREEN),
                    ("VALIGN", (0, 0), (-1, 0), "BOTTOM"),
                    ("VALIGN", (0, 1), (-1, -1), "MIDDLE"),
                    ("ROWBACKGROUNDS", (0, 1), (-1, -1), [colors.white, TINT]),
                    ("LINEBELOW", (0, 1), (-1, -2), 0.3, RULE),
                    ("LINEBELOW", (0, -1), (-1, -1), 1.2, GREEN),
                    ("TOPPADDING", (0, 0), (-1, -1), 3.5),
                    ("BOTTOMPADDING", (0, 0), (-1, -1), 4),
                    ("LEFTPADDING", (0, 0), (-1, -1), CELL_PADDING / 2),
                    ("RIGHTPADDING", (0, 0), (-1, -1), CELL_PADDING / 2),
                ]
            )
        )
        return table

    def how_to_pay(self) -> list:
        inv = self.invoice
        number = self.markup(self.number)
        url = self.markup(self.url, 300)
        if self.url.startswith(("https://", "http://")):
            href = escape(self.text(self.url, 1000), {'"': "&quot;"})
            url = f'<link href="{href}">{url}</link>'
        if inv.status == InvoiceStatus.PAID:
            text = [
                self.heading("已付清", "Paid in full"),
                self.para(f"本发票已于 {date_text(inv.paid_at, 'zh')} 付清，谢谢。", "small"),
                self.para(
                    f"This invoice was paid in full on {date_text(inv.paid_at, 'en')}. Thank you.", "small_en"
                ),
                self.para(url, "url"),
            ]
        else:
            amount = escape(yuan(inv.outstanding))
            text = [
                self.heading("付款方式", "How to pay"),
                self.para(
                    f"请于 {date_text(inv.due_on, 'zh')} 前支付 {amount}，可选择以下任一方式：", "small"
                ),
                self.para(
                    f"Please pay {amount} by {date_text(inv.due_on, 'en')} in either of these ways:",
                    "small_en",
                ),
                Spacer(1, 3),
                self.para(f"① 银行转账：汇至合同约定的收款账户，并在附言中注明发票编号 {number}。", "small"),
                self.para(
                    f"Bank transfer to the account named in the contract, quoting the invoice number "
                    f"{number} as the payment reference.",
                    "small_en",
                ),
                Spacer(1, 3),
                self.para("② 在线支付：扫描二维码或访问以下网址。", "small"),
                self.para("Pay online: scan the QR code or visit the address below.", "small_en"),
                self.para(url, "url"),
            ]
        # In China 发票 also names the official tax invoice; say plainly this is not one.
        text += [
            Spacer(1, 3),
            self.para(
                f"本单据为交易平台的付款凭单，不是增值税发票。 <font color='{GREY}'>Not a VAT invoice (fapiao).</font>",
                "small",
            ),
        ]
        return [qr_box(self.url, text, 24 * mm, padding=(4, 6))]


# --- contracts ------------------------------------------------------------------------------------

#: The name of the signed contract data attached to a contract PDF.
CONTRACT_ATTACHMENT = "contract.json"
CONTRACT_ATTACHMENT_DESCRIPTION = "Signed offtake contract data (payload, Ed25519 signature, key id)"
CONTRACT_STATUSES = {
    ContractStatus.DRAFT: ("草案", "Draft", AMBER),
    ContractStatus.ACTIVE: ("执行中", "Active", GREEN),
    ContractStatus.COMPLETED: ("已完成", "Completed", GREEN),
    ContractStatus.TERMINATED: ("已终止", "Terminated", RED),
}
DELIVERY_MODES = {
    DeliveryMode.HOLDING: ("转入买方持有账户", "Moved to the buyer's holding"),
    DeliveryMode.RETIRE: ("代为注销", "Retired on the buyer's behalf"),
}
#: The terms a version records, in the order their changes are listed, with their names.
TERM_NAMES = {
    "title": ("合同名称", "Title"),
    "start": ("起始日", "Start"),
    "end": ("到期日", "End"),
    "total_quantity": ("合同总量（吨）", "Total quantity (t)"),
    "price_per_t": ("基准单价", "Base price per tonne"),
    "escalation_pct_per_year": ("年递增率（%）", "Yearly escalation (%)"),
    "year_prices": ("固定年度价格", "Fixed yearly prices"),
    "standard": ("标准", "Standard"),
    "project_types": ("项目类型", "Project types"),
    "counties": ("旗县区", "Counties"),
    "vintage_from": ("减排年份起", "Vintages from"),
    "vintage_to": ("减排年份止", "Vintages to"),
    "delivery": ("交付方式", "Delivery"),
    "beneficiary": ("受益方", "Beneficiary"),
    "payment_days": ("付款期限（天）", "Payment terms (days)"),
    "tranches": ("交付计划", "Schedule"),
}
#: Tranches added or removed by one amendment that are listed; the rest are counted.
LISTED_CHANGES = 6


def _instant(moment: datetime | None) -> str | None:
    """An aware moment as ISO 8601 UTC with a Z, to the second."""
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def contract_document(contract: Contract) -> dict:
    """What a contract's PDF states, and signs: the parties, the terms in force, the schedule with
    what was delivered, every delivery, and every version with its date and reason.

    It is dated by the last thing that happened to the contract (signed, amended, delivered,
    completed, terminated), never by the clock: the same contract in the same state gives the
    same document, and the same PDF.
    """
    from portal.contracts import services  # the services use nothing of this module

    terms = services.terms_of(contract).as_json()
    regions = {
        r.code: r for r in db.session.scalars(select(Region).where(Region.code.in_(terms["counties"])))
    }
    terms["counties"] = [
        {"code": code, "zh": regions[code].name_zh, "en": regions[code].name_en}
        if code in regions
        else {"code": code, "zh": code, "en": code}
        for code in terms["counties"]
    ]
    del terms["title"], terms["tranches"]
    versions = services.versions(contract)
    deliveries = services.deliveries_of(contract)
    moments = [contract.signed_at, contract.completed_at, contract.terminated_at]
    moments += [v.created_at for v in versions] + [d.created_at for d in deliveries]
    org = contract.organisation
    return {
        "v": 1,
        "document": "offtake_contract",
        "number": contract.number,
        "title": contract.title,
        "status": contract.status,
        "version": contract.version,
        "seller": {"zh": SELLER_ZH, "en": SELLER_EN},
        "buyer": {"name_zh": org.name_zh, "name_en": org.name_en or "", "uscc": org.uscc},
        "signed_at": _instant(contract.signed_at),
        "completed_at": _instant(contract.completed_at),
        "terminated_at": _instant(contract.terminated_at),
        "termination_reason": contract.termination_reason or "",
        "as_of": _instant(max((m for m in moments if m is not None), default=None)),
        "terms": terms,
        "tranches": [
            {
                "seq": t.seq,
                "due": t.due.isoformat(),
                "quantity": t.quantity,
                "delivered": t.delivered,
                "price_per_t": str(services.price_for(contract, t.due)),
            }
            for t in contract.tranches
        ],
        "deliveries": [
            {
                "at": _instant(d.created_at),
                "tranche": d.tranche.seq,
                "quantity": d.quantity,
                "mode": d.mode,
                "certificate": d.certificate.number if d.certificate else None,
                "invoice": d.invoice.number if d.invoice else None,
            }
            for d in deliveries
        ],
        "versions": [
            {
                "version": v.version,
                "at": _instant(v.created_at),
                "reason": v.reason,
                "terms": {k: value for k, value in json.loads(v.terms).items() if k in TERM_NAMES},
            }
            for v in versions
        ],
        "url": contract_url(contract),
    }


def contract_url(contract: Contract) -> str:
    """The contract's page, for whoever may see it (the buyer's, or the staff's)."""
    return absolute_url("contracts.contract_page", number=contract.number)


def render_contract(contract: Contract) -> bytes:
    """A signed contract as an A4 PDF: its document (:func:`contract_document`) signed with the
    portal's certificate key and attached, as certificates carry theirs, and everything drawn
    from that document. A draft has no PDF (``ValueError``): its terms are not agreed yet.

    Raises ``portal.certificates.pdf.PdfError("no_font")`` when no CJK font can be embedded.
    """
    if contract.signed_at is None:
        raise ValueError("a draft contract has no document")
    try:
        font, glyphs = fonts.load()
    except fonts.FontUnavailable as exc:
        raise PdfError("no_font") from exc
    payload = signing.canonical(contract_document(contract))
    key = signing.signer()
    signature = key.sign(payload)
    embedded = json.dumps(
        {"payload": payload, "signature": signature, "key_id": key.key_id, "alg": signing.ALG},
        ensure_ascii=True,  # byte-exact through any tool that re-encodes text
        sort_keys=True,
    ).encode("ascii")
    drawing = _ContractDrawing(
        json.loads(payload), font=font, glyphs=glyphs, signature=signature, key_id=key.key_id
    )
    with render_lock:
        return drawing.render(
            drawing.story(),
            pdf_date=_pdf_date(drawing.data.get("as_of")),
            attachment=(CONTRACT_ATTACHMENT, embedded, CONTRACT_ATTACHMENT_DESCRIPTION),
        )


class _ContractDrawing(_Letterhead):
    """One contract being laid out, from its signed document."""

    kind_zh = "承购合同"
    kind_en = "Offtake contract"
    number_label = "合同编号"

    def __init__(self, data: dict, *, font: str, glyphs: frozenset[int], signature: str, key_id: str):
        super().__init__(font=font, glyphs=glyphs)
        self.data = data
        self.terms = data["terms"]
        self.signature = signature
        self.key_id = key_id
        self.number = self.text(data["number"], 40)

    def story(self) -> list:
        d = self.data
        story = self.letterhead("碳汇承购合同", "CARBON CREDIT OFFTAKE CONTRACT")
        story.append(self.summary())
        if d["status"] == ContractStatus.TERMINATED:
            story += [Spacer(1, 6), self.terminated_band()]
        story.append(Spacer(1, 8))
        buyer = d["buyer"]
        story.append(self.parties(buyer["name_zh"], buyer["name_en"], buyer["uscc"]))
        story.append(Spacer(1, 9))
        story.append(KeepTogether([self.heading("合同条款", "Terms"), self.term_facts()]))
        story.append(Spacer(1, 9))
        story.append(KeepTogether([self.heading("价格规则", "Price rules"), *self.price_rules()]))
        story.append(Spacer(1, 9))
        story.append(CondPageBreak(45 * mm))  # a heading never ends a page
        story.append(self.heading("交付计划", "Delivery schedule"))
        schedule, totals = self.schedule()
        story += [schedule, totals]
        story.append(Spacer(1, 9))
        story.append(CondPageBreak(35 * mm))
        story.append(self.heading("交付记录", "Deliveries"))
        story.append(self.deliveries())
        story.append(Spacer(1, 9))
        story.append(CondPageBreak(45 * mm))
        story.append(self.heading("合同版本", "Versions"))
        story.append(self.versions())
        story.append(Spacer(1, 10))
        story.append(
            KeepTogether(
                [
                    self.signed_data_box(
                        d["url"],
                        "扫描二维码或访问以下网址查看合同的最新状态（需登录）。本 PDF 内嵌经平台签名的合同数据，"
                        "可用平台公布的签名公钥核验。",
                        "Scan the QR code or visit the address below for the contract's current state "
                        "(sign-in needed). The contract data, signed by the portal, is embedded in this PDF "
                        "and can be checked with the portal's published signing keys.",
                    )
                ]
            )
        )
        return story

    def summary(self) -> Table:
        d = self.data
        zh, en, colour = CONTRACT_STATUSES.get(d["status"], (d["status"], "", MUTED))
        total = sum(t["quantity"] for t in d["tranches"])
        delivered = sum(t["delivered"] for t in d["tranches"])
        rows = [
            [
                self.label("合同编号", "Contract No."),
                self.para(self.markup(self.number), "strong"),
                self.label("状态", "Status"),
                self.badge(zh, en, colour),
            ],
            [self.label("合同名称", "Title"), self.para(self.markup(d["title"], 200)), "", ""],
            [
                self.label("签署日期", "Signed on"),
                self.para(_date_of(d["signed_at"])),
                self.label("现行版本", "Version in force"),
                self.para(f"第 {d['version']} 版 <font color='{GREY}'>Version {d['version']}</font>"),
            ],
            [
                self.label("合同期限", "Term"),
                self.para(f"{self.terms['start']} – {self.terms['end']}"),
                self.label("截至", "As of"),
                self.para(_date_of(d["as_of"])),
            ],
            [
                self.label("合同总量", "Contracted"),
                self.para(f"{total:,} 吨 <font color='{GREY}'>t CO₂e</font>"),
                self.label("已交付", "Delivered"),
                self.para(f"{delivered:,} 吨 <font color='{GREY}'>t CO₂e</font>"),
            ],
        ]
        table = Table(rows, colWidths=[27 * mm, 58 * mm, 27 * mm, CONTENT_W - 112 * mm])
        table.setStyle(
            TableStyle(
                [
                    ("SPAN", (1, 1), (-1, 1)),
                    ("BACKGROUND", (0, 0), (-1, -1), TINT),
                    ("LINEABOVE", (0, 0), (-1, 0), 1.2, GREEN),
                    ("LINEBELOW", (0, -1), (-1, -1), 1.2, GREEN),
                    ("LINEBELOW", (0, 0), (-1, -2), 0.4, RULE),
                    ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
                    ("TOPPADDING", (0, 0), (-1, -1), 2.5),
                    ("BOTTOMPADDING", (0, 0), (-1, -1), 3.5),
                    ("LEFTPADDING", (0, 0), (-1, -1), 6),
                ]
            )
        )
        return table

    def terminated_band(self) -> Table:
        d = self.data
        when = _date_of(d["terminated_at"])
        lines = [
            f"本合同已于 {when} 终止，未交付的部分不再交付；已开具的发票仍须支付。",
            f"This contract was terminated on {when}: what was not delivered will not be; "
            "invoices already issued remain payable.",
            f"终止原因 Reason: {self.markup(d['termination_reason'], 500)}",
        ]
        title = self.para('<font size="15">已终止</font><br/><font size="10">TERMINATED</font>', "band_title")
        table = Table(
            [[title, [self.para(line, "band") for line in lines]]],
            colWidths=[30 * mm, CONTENT_W - 30 * mm],
        )
        table.setStyle(
            TableStyle(
                [
                    ("BACKGROUND", (0, 0), (-1, -1), RED),
                    ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
                    ("LINEAFTER", (0, 0), (0, 0), 0.6, colors.white),
                    ("LEFTPADDING", (0, 0), (-1, -1), 8),
                    ("RIGHTPADDING", (0, 0), (-1, -1), 8),
                    ("TOPPADDING", (0, 0), (-1, -1), 5),
                    ("BOTTOMPADDING", (0, 0), (-1, -1), 7),
                ]
            )
        )
        return table

    def credits(self, terms: dict) -> str:
        """The credits the contract delivers, as Paragraph markup."""
        any_ = f"不限 <font color='{GREY}'>any</font>"
        standard = self.markup(terms.get("standard"), 8) or f"CCER 或 VCS <font color='{GREY}'>either</font>"
        types = "、".join(
            f"{zh} <font color='{GREY}'>{en}</font>"
            for zh, en in (
                PROJECT_TYPES.get(t, (self.text(t, 40), "")) for t in terms.get("project_types") or []
            )
        )
        counties = "、".join(
            f"{self.markup(c.get('zh'), 40)} <font color='{GREY}'>{self.markup(c.get('en'), 60)}</font>"
            for c in terms.get("counties") or []
            if isinstance(c, dict)
        )
        low, high = terms.get("vintage_from"), terms.get("vintage_to")
        vintages = f"{low or '…'}–{high or '…'}" if (low or high) else any_
        return (
            f"标准 <font color='{GREY}'>Standard</font>：{standard}<br/>"
            f"项目类型 <font color='{GREY}'>Project types</font>：{types or any_}<br/>"
            f"旗县区 <font color='{GREY}'>Counties</font>：{counties or any_}<br/>"
            f"减排年份 <font color='{GREY}'>Vintages</font>：{vintages}"
        )

    def term_facts(self) -> Table:
        terms = self.terms
        zh, en = DELIVERY_MODES.get(terms["delivery"], (self.text(terms["delivery"], 20), ""))
        delivery = f"{zh} <font color='{GREY}'>{en}</font>"
        if terms["delivery"] == DeliveryMode.RETIRE:
            beneficiary = self.markup(terms.get("beneficiary"), 200) or self.markup(
                self.data["buyer"]["name_zh"], 200
            )
            delivery += f"<br/>受益方 <font color='{GREY}'>Beneficiary</font>：{beneficiary}"
        days = terms["payment_days"]
        rows = [
            [self.label("交付标的", "Credits"), self.para(self.credits(terms))],
            [self.label("交付方式", "Delivery"), self.para(delivery)],
            [
                self.label("付款条件", "Payment"),
                self.para(
                    f"每次交付后开具发票，买方于开票后 {days} 天内付款。"
                    f"<br/><font color='{GREY}'>An invoice is issued for each delivery and is due "
                    f"{days} days after it is issued.</font>"
                ),
            ],
        ]
        table = Table(rows, colWidths=[27 * mm, CONTENT_W - 27 * mm])
        table.setStyle(_facts_style())
        return table

    def price_rules(self) -> list:
        terms = self.terms
        start_year = terms["start"][:4]
        escalation = Decimal(terms["escalation_pct_per_year"])
        if escalation:
            rise = (
                f"自起始年度之后每个日历年递增 {_percent(escalation)} %（复利）"
                f"<br/><font color='{GREY}'>rising {_percent(escalation)} % each calendar year after "
                "the start year (compounding)</font>"
            )
        else:
            rise = f"不递增 <font color='{GREY}'>none: the price does not rise</font>"
        fixed = terms.get("year_prices") or {}
        fixed_text = (
            "；".join(
                f"{self.text(y, 4)} 年 <font color='{GREY}'>year</font> {escape(yuan(p))}"
                for y, p in fixed.items()
            )
            if fixed
            else f"无 <font color='{GREY}'>none</font>"
        )
        rows = [
            [
                self.label("基准单价", "Base price"),
                self.para(
                    f"{escape(yuan(terms['price_per_t']))} / 吨 <font color='{GREY}'>per tonne</font>，"
                    f"{start_year} 年 <font color='{GREY}'>in the start year {start_year}</font>"
                ),
            ],
            [self.label("年递增率", "Escalation"), self.para(rise)],
            [self.label("固定年度价格", "Fixed prices"), self.para(fixed_text)],
        ]
        table = Table(rows, colWidths=[27 * mm, CONTENT_W - 27 * mm])
        table.setStyle(_facts_style())
        rule = [
            self.para(
                "每批按约定交付日所在日历年度的单价计价：该年度定有固定价格的，按固定价格；否则按基准单价"
                "自起始年度起逐年复利递增，四舍六入五成双至分。",
                "small",
            ),
            self.para(
                "Each tranche is priced at the price of the calendar year it is due in: that year's "
                "fixed price if one is set, otherwise the base price escalated once for every calendar "
                "year since the start year (compounding, rounded half to even to the fen).",
                "small_en",
            ),
        ]
        return [table, Spacer(1, 3), *rule]

    def schedule(self) -> tuple[Table, Table]:
        widths = [13 * mm, 24 * mm, 24 * mm, 24 * mm, 24 * mm, 24 * mm]
        widths.append(CONTENT_W - sum(widths))
        rows = [
            [
                self.th("批次", "Tranche"),
                self.th("约定交付日", "Due on"),
                self.th("合同数量（吨）", "Contracted (t)", "th_r"),
                self.th("已交付（吨）", "Delivered (t)", "th_r"),
                self.th("未交付（吨）", "To deliver (t)", "th_r"),
                self.th("单价", "Price per t", "th_r"),
                self.th("金额", "Value", "th_r"),
            ]
        ]
        value = Decimal(0)
        for t in self.data["tranches"]:
            price = Decimal(t["price_per_t"])
            value += price * t["quantity"]
            rows.append(
                [
                    self.para(str(t["seq"]), "td"),
                    self.para(_date(date.fromisoformat(t["due"]), "<br/>"), "td"),
                    self.para(f"{t['quantity']:,}", "td_r"),
                    self.para(f"{t['delivered']:,}", "td_r"),
                    self.para(f"{t['quantity'] - t['delivered']:,}", "td_r"),
                    self.money(price, "td_r", widths[5]),
                    self.money(price * t["quantity"], "td_r", widths[6]),
                ]
            )
        table = Table(rows, colWidths=widths, repeatRows=1)
        table.setStyle(_rows_style())
        tranches = self.data["tranches"]
        total = sum(t["quantity"] for t in tranches)
        delivered = sum(t["delivered"] for t in tranches)
        totals = Table(
            [
                [
                    self.para(f"合计 <font color='{GREY}'>Total</font>", "td"),
                    self.para(f"{total:,}", "td_r"),
                    self.para(f"{delivered:,}", "td_r"),
                    self.para(f"{total - delivered:,}", "td_r"),
                    "",
                    self.money(value, "strong_r", widths[6]),
                ]
            ],
            colWidths=[widths[0] + widths[1], *widths[2:]],
        )
        totals.setStyle(
            TableStyle(
                [
                    ("LINEABOVE", (0, 0), (-1, 0), 1, GREEN),
                    ("LINEBELOW", (0, 0), (-1, 0), 1.2, GREEN),
                    ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
                    ("TOPPADDING", (0, 0), (-1, -1), 4),
                    ("BOTTOMPADDING", (0, 0), (-1, -1), 5),
                    ("LEFTPADDING", (0, 0), (-1, -1), CELL_PADDING / 2),
                    ("RIGHTPADDING", (0, 0), (-1, -1), CELL_PADDING / 2),
                ]
            )
        )
        return table, totals

    def deliveries(self) -> Table | Paragraph:
        deliveries = self.data["deliveries"]
        if not deliveries:
            return self.para(f"尚无交付。 <font color='{GREY}'>Nothing delivered yet.</font>", "small")
        widths = [24 * mm, 16 * mm, 22 * mm, 44 * mm, 33 * mm]
        widths.append(CONTENT_W - sum(widths))
        rows = [
            [
                self.th("交付日期", "Delivered on"),
                self.th("批次", "Tranche"),
                self.th("数量（吨）", "Quantity (t)", "th_r"),
                self.th("交付方式", "Delivery"),
                self.th("注销证明编号", "Certificate No."),
                self.th("发票编号", "Invoice No."),
            ]
        ]
        for d in deliveries:
            zh, en = DELIVERY_MODES.get(d["mode"], (self.text(d["mode"], 20), ""))
            rows.append(
                [
                    self.para(_date_of(d["at"]), "td"),
                    self.para(str(d["tranche"]), "td"),
                    self.para(f"{d['quantity']:,}", "td_r"),
                    self.para(f"{zh}<br/><font size=7 color='{GREY}'>{en}</font>", "td"),
                    self.fitted(self.text(d["certificate"] or "—", 40), "td", widths[4], smallest=6.5),
                    self.fitted(self.text(d["invoice"] or "—", 40), "td", widths[5], smallest=6.5),
                ]
            )
        table = Table(rows, colWidths=widths, repeatRows=1)
        table.setStyle(_rows_style())
        return table

    def versions(self) -> Table:
        widths = [16 * mm, 24 * mm, 48 * mm]
        widths.append(CONTENT_W - sum(widths))
        rows = [
            [
                self.th("版本", "Version"),
                self.th("日期", "Date"),
                self.th("原因", "Reason"),
                self.th("内容与变更", "Terms and changes"),
            ]
        ]
        before = None
        for v in self.data["versions"]:
            terms = v["terms"]
            if v["version"] == 1 and v["reason"] == "signed":
                reason = f"签署 <font color='{GREY}'>Signed</font>"
            else:
                reason = f"修订 <font color='{GREY}'>Amendment</font><br/>{self.markup(v['reason'], 500)}"
            rows.append(
                [
                    self.para(
                        f"第 {v['version']} 版<br/><font size=7 color='{GREY}'>v{v['version']}</font>", "td"
                    ),
                    self.para(_date_of(v["at"]), "td"),
                    self.para(reason, "td"),
                    self.para(self.version_changes(before, terms), "td"),
                ]
            )
            before = terms
        table = Table(rows, colWidths=widths, repeatRows=1)
        table.setStyle(_rows_style())
        return table

    def version_changes(self, before: dict | None, terms: dict) -> str:
        """What a version agreed (the first) or changed (an amendment), as Paragraph markup."""
        tranches = [t for t in terms.get("tranches") or [] if isinstance(t, dict)]
        if before is None:
            return (
                f"{terms.get('total_quantity', 0):,} 吨，分 {len(tranches)} 批交付；基准单价 "
                f"{escape(yuan(terms.get('price_per_t', '0')))} / 吨"
                f"<br/><font color='{GREY}'>{terms.get('total_quantity', 0):,} t in {len(tranches)} "
                f"tranche(s); base price {escape(yuan(terms.get('price_per_t', '0')))} per tonne</font>"
            )
        lines = []
        for key, (zh, en) in TERM_NAMES.items():
            old, new = before.get(key), terms.get(key)
            if old == new:
                continue
            name = f"{zh} <font color='{GREY}'>{en}</font>"
            if key == "tranches":
                lines.append(f"{name}：{self.schedule_changes(old or [], new or [])}")
            else:
                lines.append(f"{name}：{self.term_value(key, old)} → {self.term_value(key, new)}")
        return "<br/>".join(lines) or f"无条款变更 <font color='{GREY}'>no change of terms</font>"

    def term_value(self, key: str, value) -> str:
        if value in (None, "", [], {}):
            return "—"
        if key in ("price_per_t",):
            return escape(yuan(value))
        if key == "year_prices" and isinstance(value, dict):
            return "；".join(f"{self.text(y, 4)}: {escape(yuan(p))}" for y, p in sorted(value.items()))
        if key == "delivery":
            zh, en = DELIVERY_MODES.get(value, (self.text(value, 20), ""))
            return f"{zh} <font color='{GREY}'>{en}</font>"
        if isinstance(value, list):
            return "、".join(self.markup(item, 60) for item in value[:20])
        if isinstance(value, int) and not isinstance(value, bool):
            return f"{value:,}"
        return self.markup(value, 200)

    def schedule_changes(self, before: list, after: list) -> str:
        """The tranches an amendment added, removed or changed the quantity of (by due date),
        the first few listed and the rest counted."""

        def key(t):
            return (str(t.get("due")), t.get("quantity")) if isinstance(t, dict) else ("", 0)

        old, new = Counter(map(key, before)), Counter(map(key, after))
        removed, added = sorted((old - new).elements()), sorted((new - old).elements())
        items = []
        for due, quantity in added:
            was = next((r for r in removed if r[0] == due), None)
            if was is None:
                items.append((due, f"+{escape(due)} {quantity:,} 吨 t"))
            else:  # the same due date: a changed quantity
                removed.remove(was)
                items.append((due, f"{escape(due)} {was[1]:,} → {quantity:,} 吨 t"))
        items += [(due, f"−{escape(due)} {quantity:,} 吨 t") for due, quantity in removed]
        parts = [text for _due, text in sorted(items)[:LISTED_CHANGES]]
        if len(items) > LISTED_CHANGES:
            more = len(items) - LISTED_CHANGES
            parts.append(f"另 {more} 项 <font color='{GREY}'>and {more} more</font>")
        count = f"{len(before)} → {len(after)} 批 <font color='{GREY}'>tranches</font>"
        return count + ("<br/>" + "；".join(parts) if parts else "")


def _facts_style() -> TableStyle:
    return TableStyle(
        [
            ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
            ("LINEABOVE", (0, 0), (-1, 0), 1.2, GREEN),
            ("LINEBELOW", (0, 0), (-1, -2), 0.4, RULE),
            ("LINEBELOW", (0, -1), (-1, -1), 1.2, GREEN),
            ("TOPPADDING", (0, 0), (-1, -1), 3),
            ("BOTTOMPADDING", (0, 0), (-1, -1), 4),
            ("LEFTPADDING", (0, 0), (-1, -1), 6),
        ]
    )


def _rows_style() -> TableStyle:
    """A table of rows under a green header row, striped, that may run over several pages."""
    return TableStyle(
        [
            ("BACKGROUND", (0, 0), (-1, 0), GREEN),
            ("VALIGN", (0, 0), (-1, 0), "BOTTOM"),
            ("VALIGN", (0, 1), (-1, -1), "TOP"),
            ("ROWBACKGROUNDS", (0, 1), (-1, -1), [colors.white, TINT]),
            ("LINEBELOW", (0, 1), (-1, -1), 0.3, RULE),
            ("TOPPADDING", (0, 0), (-1, -1), 3.5),
            ("BOTTOMPADDING", (0, 0), (-1, -1), 4),
            ("LEFTPADDING", (0, 0), (-1, -1), CELL_PADDING / 2),
            ("RIGHTPADDING", (0, 0), (-1, -1), CELL_PADDING / 2),
        ]
    )


def _percent(value: Decimal) -> str:
    """2.50 → "2.5"."""
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _date_of(instant: str | None) -> str:
    """The Beijing day of an ISO 8601 instant from a contract document, or "—"."""
    return _date(datetime.fromisoformat(instant)) if instant else "—"


def _pdf_date(instant: str | None) -> str:
    moment = datetime.fromisoformat(instant) if instant else datetime(2000, 1, 1, tzinfo=UTC)
    return f"D:{moment.astimezone(UTC):%Y%m%d%H%M%S}+00'00'"


def _date(value: date | datetime, between: str = " ") -> str:
    """Markup of a day (a moment's, in Beijing) in Chinese, then in English in grey."""
    return f"{date_text(value, 'zh')}{between}<font color='{GREY}'>{date_text(value, 'en')}</font>"
