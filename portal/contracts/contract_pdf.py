"""Contract PDFs: a signed offtake contract drawn from its document
(:func:`~portal.contracts.contract_document.contract_document`), which is signed with the
certificates' key and attached to the PDF the way a certificate's signed data is, with a QR code
of the contract's address. A draft has no PDF: its terms are not agreed yet.

Drawn on the operator's letterhead (``contracts.letterhead``) with the toolkit ``portal.pdf``.
"""

import json
from collections import Counter
from datetime import UTC, date, datetime
from decimal import Decimal
from xml.sax.saxutils import escape

from reportlab.lib.units import mm
from reportlab.platypus import CondPageBreak, KeepTogether, Paragraph, Spacer, Table, TableStyle

from portal.certificates import signing
from portal.certificates.pdf_sections import PROJECT_TYPES
from portal.contracts.contract_document import TERM_NAMES, contract_document
from portal.contracts.letterhead import AMBER, GREY, Letterhead, date_of
from portal.contracts.models import Contract, ContractStatus, DeliveryMode
from portal.core.amounts import yuan
from portal.pdf.drawing import load_font
from portal.pdf.embedded import signed_json
from portal.pdf.page import CONTENT_W, GREEN, MUTED, RED, render_lock
from portal.pdf.tables import CELL_PADDING, band_style, facts_style, rows_style, tinted_box_style

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
#: Tranches added or removed by one amendment that are listed; the rest are counted.
LISTED_CHANGES = 6


def render_contract(contract: Contract) -> bytes:
    """A signed contract as an A4 PDF: its document (:func:`contract_document`) signed with the
    portal's certificate key and attached, as certificates carry theirs, and everything drawn
    from that document. A draft has no PDF (``ValueError``): its terms are not agreed yet.

    Raises ``portal.pdf.errors.PdfError("no_font")`` when no CJK font can be embedded.
    """
    if contract.signed_at is None:
        raise ValueError("a draft contract has no document")
    font, glyphs = load_font()
    payload = signing.canonical(contract_document(contract))
    key = signing.signer()
    signature = key.sign(payload)
    embedded = signed_json(payload, signature, key.key_id)
    drawing = _ContractDrawing(
        json.loads(payload), font=font, glyphs=glyphs, signature=signature, key_id=key.key_id
    )
    with render_lock:
        return drawing.render(
            drawing.story(),
            pdf_date=_pdf_date(drawing.data.get("as_of")),
            attachment=(CONTRACT_ATTACHMENT, embedded, CONTRACT_ATTACHMENT_DESCRIPTION),
        )


class _ContractDrawing(Letterhead):
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
                self.para(date_of(d["signed_at"])),
                self.label("现行版本", "Version in force"),
                self.para(f"第 {d['version']} 版 <font color='{GREY}'>Version {d['version']}</font>"),
            ],
            [
                self.label("合同期限", "Term"),
                self.para(f"{self.terms['start']} – {self.terms['end']}"),
                self.label("截至", "As of"),
                self.para(date_of(d["as_of"])),
            ],
            [
                self.label("合同总量", "Contracted"),
                self.para(f"{total:,} 吨 <font color='{GREY}'>t CO₂e</font>"),
                self.label("已交付", "Delivered"),
                self.para(f"{delivered:,} 吨 <font color='{GREY}'>t CO₂e</font>"),
            ],
        ]
        table = Table(rows, colWidths=[27 * mm, 58 * mm, 27 * mm, CONTENT_W - 112 * mm])
        table.setStyle(tinted_box_style(("SPAN", (1, 1), (-1, 1))))
        return table

    def terminated_band(self) -> Table:
        d = self.data
        when = date_of(d["terminated_at"])
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
        table.setStyle(band_style())
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
        table.setStyle(facts_style())
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
        table.setStyle(facts_style())
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
        widths = [13 * mm, 27 * mm, 24 * mm, 24 * mm, 24 * mm, 24 * mm]
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
                    self.day(date.fromisoformat(t["due"]), widths[1]),
                    self.para(f"{t['quantity']:,}", "td_r"),
                    self.para(f"{t['delivered']:,}", "td_r"),
                    self.para(f"{t['quantity'] - t['delivered']:,}", "td_r"),
                    self.money(price, "td_r", widths[5]),
                    self.money(price * t["quantity"], "td_r", widths[6]),
                ]
            )
        table = Table(rows, colWidths=widths, repeatRows=1)
        table.setStyle(rows_style())
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
        widths = [27 * mm, 13 * mm, 22 * mm, 44 * mm, 33 * mm]
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
                    self.day(d["at"], widths[0]),
                    self.para(str(d["tranche"]), "td"),
                    self.para(f"{d['quantity']:,}", "td_r"),
                    self.para(f"{zh}<br/><font size=7 color='{GREY}'>{en}</font>", "td"),
                    self.fitted(self.text(d["certificate"] or "—", 40), "td", widths[4], smallest=6.5),
                    self.fitted(self.text(d["invoice"] or "—", 40), "td", widths[5], smallest=6.5),
                ]
            )
        table = Table(rows, colWidths=widths, repeatRows=1)
        table.setStyle(rows_style())
        return table

    def versions(self) -> Table:
        widths = [16 * mm, 27 * mm, 45 * mm]
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
                    self.day(v["at"], widths[1]),
                    self.para(reason, "td"),
                    self.para(self.version_changes(before, terms), "td"),
                ]
            )
            before = terms
        table = Table(rows, colWidths=widths, repeatRows=1)
        table.setStyle(rows_style())
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


def _percent(value: Decimal) -> str:
    """2.50 → "2.5"."""
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _pdf_date(instant: str | None) -> str:
    moment = datetime.fromisoformat(instant) if instant else datetime(2000, 1, 1, tzinfo=UTC)
    return f"D:{moment.astimezone(UTC):%Y%m%d%H%M%S}+00'00'"
