"""Invoice PDFs: one delivery of an offtake contract, its credits and amounts (also in capital
numerals), the payments received, and how to pay, with a QR code of the invoice's page.

Drawn on the operator's letterhead (``contracts.letterhead``) with the toolkit ``portal.pdf``.
"""

from datetime import date
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.units import mm
from reportlab.platypus import CondPageBreak, KeepTogether, Spacer, Table, TableStyle

from portal.contracts.letterhead import AMBER, GREY, Letterhead, date_markup
from portal.contracts.models import DeliveryMode, Invoice, InvoiceStatus, PaymentMethod
from portal.core.amounts import amount_in_words, yuan
from portal.core.i18n import absolute_url, date_text, period_text
from portal.pdf.drawing import load_font
from portal.pdf.page import CONTENT_W, GREEN, RED, RULE, TINT, render_lock
from portal.pdf.tables import CELL_PADDING, qr_box, rows_style, tinted_box_style
from portal.timeutil import beijing_today

METHODS = {
    PaymentMethod.BANK: ("银行转账", "Bank transfer"),
    PaymentMethod.STRIPE: ("在线支付", "Online payment"),
}


def render_invoice(invoice: Invoice, *, today: date | None = None) -> bytes:
    """The invoice as an A4 PDF. ``today`` (Beijing) decides whether an open invoice is overdue.

    Raises ``portal.pdf.errors.PdfError("no_font")`` when no CJK font can be embedded.
    """
    font, glyphs = load_font()
    drawing = _InvoiceDrawing(
        invoice,
        font=font,
        glyphs=glyphs,
        today=today or beijing_today(),
        url=absolute_url("contracts.buyer_invoice", number=invoice.number),
    )
    with render_lock:
        return drawing.pdf()


class _InvoiceDrawing(Letterhead):
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

    def pdf(self) -> bytes:
        issued = self.invoice.issued_on
        # dated when issued, not when drawn
        return self.render(self.story(), pdf_date=f"D:{issued:%Y%m%d}000000+08'00'")

    def story(self) -> list:
        story = self.letterhead("发　票", "INVOICE")
        story.append(self.summary())
        story.append(Spacer(1, 8))
        org = self.invoice.contract.organisation
        story.append(self.parties(org.name_zh, org.name_en, org.uscc))
        story.append(Spacer(1, 6))
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
        story.append(Spacer(1, 6))
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
                self.para(date_markup(inv.issued_on)),
                self.label("付款期限", "Due date"),
                self.para(date_markup(inv.due_on)),
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
        table.setStyle(tinted_box_style())
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
                self.para(date_markup(delivery.created_at, "<br/>")),
            ],
            [self.label("合同名称", "Contract title"), self.para(self.markup(contract.title, 200)), "", ""],
            [
                self.label("交付批次", "Tranche"),
                self.para(
                    f"第 {tranche.seq} 批，共 {count} 批 <font color='{GREY}'>"
                    f"Tranche {tranche.seq} of {count}</font>"
                ),
                self.label("约定交付日", "Tranche due"),
                self.para(date_markup(tranche.due, "<br/>")),
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
        table.setStyle(rows_style())
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
        widths = [27 * mm, 42 * mm, 71 * mm]
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
                    self.day(payment.received_on, widths[0]),
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
                self.para(
                    f"① 银行转账：汇至上方销售方的收款账户，并在附言中注明发票编号 {number}。", "small"
                ),
                self.para(
                    f"Bank transfer to the seller's account above, quoting the invoice number "
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
