"""Invoice PDFs for offtake contracts, and amounts written in Chinese capital numerals.

An invoice is drawn on A4 in Chinese with the English beside or below it (it is not translated
through Babel: both languages are on the page), in the certificates' visual language and with
the same embedded CJK font. Names and titles were typed by people: they are drawn only after
``fonts.drawable`` has made them safe and, in Paragraph markup, escaped.
"""

import io
from datetime import date, datetime
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

from portal.certificates import fonts

# The certificates' colours, margins and page furniture; their lock too, because ReportLab keeps
# per-document state on the font objects that both kinds of PDF share.
from portal.certificates.pdf import (
    CONTENT_W,
    FRAME_PADDING,
    GREEN,
    INK,
    MARGIN_X,
    MUTED,
    PAGE_H,
    PAGE_W,
    RED,
    RULE,
    TINT,
    CentredLine,
    NumberedCanvas,
    PdfError,
    TextDrawing,
    continued_header,
    page_footer,
    qr_box,
    render_lock,
)
from portal.contracts.models import DeliveryMode, Invoice, InvoiceStatus, PaymentMethod
from portal.core.i18n import absolute_url, date_text, period_text
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
    drawing = _Drawing(
        invoice,
        font=font,
        glyphs=glyphs,
        today=today or beijing_today(),
        url=absolute_url("contracts.buyer_invoice", number=invoice.number),
    )
    with render_lock:
        return drawing.build()


class _Drawing(TextDrawing):
    """One invoice being laid out."""

    def __init__(self, invoice: Invoice, *, font: str, glyphs: frozenset[int], today: date, url: str):
        self.invoice = invoice
        self.font = font
        self.glyphs = glyphs
        self.fallback = fonts.load_fallback()  # letters the CJK font lacks
        self.today = today
        self.url = url
        self.number = self.text(invoice.number, 40)
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
            "small": style("small", fontSize=8, leading=11),
            "small_en": style("small_en", fontSize=7.5, leading=10, textColor=MUTED),
            "url": style("url", fontSize=8.5, leading=12, textColor=GREEN),
            "badge": style("badge", fontSize=9, leading=11, alignment=TA_CENTER, textColor=colors.white),
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

    # the document

    def build(self) -> bytes:
        out = io.BytesIO()
        drawing = self
        issued = self.invoice.issued_on
        pdf_date = f"D:{issued:%Y%m%d}000000+08'00'"

        class InvoiceCanvas(NumberedCanvas):
            def draw_page_furniture(self, page: int, pages: int) -> None:
                drawing.footer(self, page, pages)

            def before_save(self) -> None:
                self.setDateFormatter(lambda *_: pdf_date)  # dated when issued, not when drawn

        doc = BaseDocTemplate(
            out,
            pagesize=A4,
            title=f"发票 Invoice {self.number}",
            author=f"{SELLER_ZH} {SELLER_EN}",
            subject=f"Invoice {self.number}",
            creator=PLATFORM_EN,
            invariant=1,  # the same invoice in the same state gives the same bytes
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
        doc.build(self.story(), canvasmaker=InvoiceCanvas)
        return out.getvalue()

    def story(self) -> list:
        story: list = [NextPageTemplate("later")]
        story.append(
            self.para(
                f"<font size=12.5 color='{GREEN_HEX}'>{SELLER_ZH}</font>"
                f"　<font size=8.5 color='{GREY}'>{SELLER_EN}</font>",
                "letterhead",
            )
        )
        story.append(Spacer(1, 7))
        story.append(CentredLine("发　票", self.font, 24, INK, bold=True, char_space=6, space_after=3))
        story.append(CentredLine("INVOICE", self.font, 10.5, INK, char_space=3, space_after=9))
        story.append(self.summary())
        story.append(Spacer(1, 8))
        story.append(self.parties())
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

    def heading(self, zh: str, en: str) -> Paragraph:
        return self.para(f"{zh} <font size=8.5 color='{GREY}'>{en}</font>", "heading")

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
        zh, en, background = self.status()
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

    def parties(self) -> Table:
        org = self.invoice.contract.organisation
        seller = [
            self.label("销售方", "Seller"),
            Spacer(1, 3),
            self.para(SELLER_ZH, "party"),
            self.para(SELLER_EN, "small_en"),
            Spacer(1, 3),
            self.para(f"{PLATFORM_ZH} <font color='{GREY}'>{PLATFORM_EN}</font>", "small"),
        ]
        buyer = [self.label("购买方", "Buyer"), Spacer(1, 3)]
        name_zh = self.markup(org.name_zh, 200)
        name_en = self.markup(org.name_en, 200)
        if name_zh:
            buyer.append(self.para(name_zh, "party"))
        if name_en:
            buyer.append(self.para(name_en, "party" if not name_zh else "small_en"))
        if not name_zh and not name_en:
            buyer.append(self.para("—", "party"))
        buyer += [
            Spacer(1, 3),
            self.para(
                f"统一社会信用代码 <font color='{GREY}'>USCC</font>　{self.markup(org.uscc, 40)}", "small"
            ),
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

    # page furniture

    def page_background(self, canvas: Canvas, doc) -> None:
        canvas.saveState()
        canvas.setFillColor(GREEN)
        canvas.rect(0, PAGE_H - 6 * mm, PAGE_W, 6 * mm, stroke=0, fill=1)
        canvas.restoreState()

    def later_page_background(self, canvas: Canvas, doc) -> None:
        self.page_background(canvas, doc)
        continued_header(canvas, self.font, "发票 Invoice — 续页 continued", self.number, PAGE_H - 20 * mm)

    def footer(self, canvas: Canvas, page: int, pages: int) -> None:
        page_footer(
            canvas,
            self.font,
            14 * mm,
            f"发票编号 No. {self.number}",
            f"{PLATFORM_ZH} {PLATFORM_EN}",
            page,
            pages,
        )


def _date(value: date | datetime, between: str = " ") -> str:
    """Markup of a day (a moment's, in Beijing) in Chinese, then in English in grey."""
    return f"{date_text(value, 'zh')}{between}<font color='{GREY}'>{date_text(value, 'en')}</font>"
