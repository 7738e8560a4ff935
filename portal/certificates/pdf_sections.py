"""The parts of a retirement certificate's page: the revoked band, the facts of the retirement,
each project, the retired blocks with their total, and the boxed certificate number.

Everything drawn comes from the certificate's payload, whose text is untrusted: it reaches the
page through ``text`` and ``markup`` only.
"""

from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.units import mm
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.platypus import Flowable, Paragraph, Table, TableStyle

from portal.core.i18n import datetime_text, period_text
from portal.pdf.drawing import Drawing
from portal.pdf.page import CONTENT_W, GREEN, INK, MUTED, RULE, TINT
from portal.pdf.tables import band_style

PURPOSES = {
    "voluntary": ("自愿抵销", "Voluntary offset"),
    "event": ("活动碳中和", "Event neutralisation"),
    "compliance": ("全国碳市场履约抵销", "National ETS compliance offset"),
}
PROJECT_TYPES = {
    "forestry": ("林业（造林）", "Forestry (afforestation)"),
    "grassland": ("草原", "Grassland"),
    "wetland": ("湿地", "Wetland"),
    "cropland": ("农田", "Cropland"),
    "manure": ("畜禽粪污", "Livestock manure"),
}


class CertificateSections(Drawing):
    """What a certificate's story is made of; ``certificates.pdf`` puts them in order. Expects
    ``data`` (the payload as the public sees it), ``revoked_at`` and ``revoked_reason``."""

    data: dict
    revoked_at: str | None
    revoked_reason: str | None

    def bilingual_label(self, zh: str, en: str) -> Paragraph:
        return self.para(f'{zh}<br/><font size="7.5" color="#5f6b76">{en}</font>', "label")

    def revoked_band(self) -> Table:
        lines = [
            "本证明已撤销，不能再作为注销或抵销的凭证。",
            "This certificate has been revoked and is no longer evidence of a retirement or offset.",
        ]
        if self.revoked_at:
            zh, en = _moment(self.revoked_at)
            when = escape(self.text(zh, 60))
            if en:
                when += f"　{escape(en)}"
            lines.append(f"撤销时间 Revoked at: {when}")
        if self.revoked_reason:
            lines.append(f"撤销原因 Reason: {self.markup(self.revoked_reason, 500)}")
        title = self.para('<font size="17">已撤销</font><br/><font size="11">REVOKED</font>', "revoked_title")
        table = Table(
            [[title, [self.para(line, "revoked") for line in lines]]],
            colWidths=[30 * mm, CONTENT_W - 30 * mm],
        )
        table.setStyle(band_style())
        return table

    def facts(self) -> Table:
        d = self.data
        purpose_zh, purpose_en = _label(PURPOSES, d.get("purpose"), self.text(d.get("purpose"), 40))
        purpose = f"{escape(purpose_zh)} <font color='#5f6b76'>{escape(purpose_en)}</font>"
        detail = self.markup(d.get("purpose_detail"), 400)
        if detail:
            purpose += f"<br/>{detail}"
        if d.get("source") == "contract":
            purpose += "<br/><font size=8.5 color='#5f6b76'>依承购合同交付 Delivered under an offtake contract</font>"
        zh, en = _moment(d.get("retired_at"))
        retired_at = escape(self.text(zh, 60))
        if en:
            retired_at += f" <font color='#5f6b76'>{escape(en)}</font>"
        retired_by = d.get("retired_by") if isinstance(d.get("retired_by"), dict) else {}
        by = self.markup(retired_by.get("name"), 200)
        if retired_by.get("uscc"):
            by += (
                "<br/><font size=8.5 color='#5f6b76'>统一社会信用代码 USCC</font> "
                f"{self.markup(retired_by.get('uscc'), 40)}"
            )
        unit = (
            "tCO<sub><font size=9>2</font></sub>e"
            if d.get("unit", "tCO2e") == "tCO2e"
            else self.markup(d.get("unit"), 20)
        )
        quantity = (
            f"{self.markup(_quantity(d.get('quantity')), 40)} {unit}"
            "<font size=8.5 color='#5f6b76'>　吨二氧化碳当量 tonnes of CO<sub><font size=6>2</font></sub>"
            " equivalent</font>"
        )
        rows = [
            (("受益方", "Beneficiary"), self.para(self.markup(d.get("beneficiary"), 200), "big")),
            (("注销数量", "Quantity retired"), self.para(quantity, "big")),
            (("注销用途", "Purpose"), self.para(purpose)),
            (("注销时间", "Retired at"), self.para(retired_at)),
            (("注销操作方", "Retired by"), self.para(by)),
        ]
        table = Table(
            [[self.bilingual_label(*label), value] for label, value in rows],
            colWidths=[36 * mm, CONTENT_W - 36 * mm],
        )
        table.setStyle(
            TableStyle(
                [
                    ("VALIGN", (0, 0), (-1, -1), "TOP"),
                    ("LINEABOVE", (0, 0), (-1, 0), 1.2, GREEN),
                    ("LINEBELOW", (0, 0), (-1, -2), 0.4, RULE),
                    ("LINEBELOW", (0, -1), (-1, -1), 1.2, GREEN),
                    ("TOPPADDING", (0, 0), (-1, -1), 4),
                    ("BOTTOMPADDING", (0, 0), (-1, -1), 4.5),
                    ("LEFTPADDING", (0, 0), (0, -1), 4),
                ]
            )
        )
        return table

    def project_table(self, p: dict) -> Table:
        type_zh, type_en = _label(PROJECT_TYPES, p.get("type"), self.text(p.get("type"), 40))
        county = f"{self.markup(p.get('county_zh'), 40)} {self.markup(p.get('county_en'), 60)}".strip()
        name = (
            f"{self.markup(p.get('name_zh'), 120)}<br/>"
            f"<font size=8.5 color='#5f6b76'>{self.markup(p.get('name_en'), 200)}</font>"
        )

        def label(zh, en):
            return self.para(f"{zh}<br/>{en}", "td_small")

        def value(text):
            return self.para(text, "td")

        rows = [
            [self.para(name), "", "", "", "", ""],
            [
                label("项目代码", "Code"),
                value(self.markup(p.get("code"), 60)),
                label("标准", "Standard"),
                value(self.markup(p.get("standard"), 30)),
                label("所在旗县", "County"),
                value(county),
            ],
            [
                label("项目类型", "Type"),
                value(f"{escape(type_zh)}<br/>{escape(type_en)}" if type_en else escape(type_zh)),
                label("方法学", "Methodology"),
                value(self.markup(p.get("methodology"), 60)),
                label("登记编号", "Registry ID"),
                value(self.markup(p.get("registry_id"), 60)),
            ],
        ]
        table = Table(rows, colWidths=[15 * mm, 38 * mm, 18 * mm, 38 * mm, 18 * mm, CONTENT_W - 127 * mm])
        table.setStyle(
            TableStyle(
                [
                    ("SPAN", (0, 0), (-1, 0)),
                    ("BACKGROUND", (0, 0), (-1, -1), TINT),
                    ("BOX", (0, 0), (-1, -1), 0.4, RULE),
                    ("LINEBELOW", (0, 0), (-1, 0), 0.4, RULE),
                    ("VALIGN", (0, 0), (-1, -1), "TOP"),
                    ("TOPPADDING", (0, 0), (-1, -1), 3),
                    ("BOTTOMPADDING", (0, 0), (-1, -1), 3),
                    ("TOPPADDING", (0, 0), (-1, 0), 5),
                    ("BOTTOMPADDING", (0, 0), (-1, 0), 5),
                    ("TOPPADDING", (0, 1), (-1, 1), 5),
                    ("BOTTOMPADDING", (0, -1), (-1, -1), 5),
                ]
            )
        )
        return table

    def blocks_table(self, blocks: list[dict]) -> tuple[Table, Table]:
        def th(zh, en, style="th"):
            return self.para(f"{zh}<br/><font size=7>{en}</font>", style)

        rows = [
            [
                th("批次", "Batch"),
                th("减排年份", "Vintage"),
                th("平台序列号", "Portal serial numbers"),
                th("数量", "Quantity (t)", "th_r"),
                th("登记簿序列号", "Registry serial numbers"),
            ]
        ]
        widths = [38 * mm, 20 * mm, 42 * mm, 18 * mm, CONTENT_W - 118 * mm]
        pad = 12  # the table's left and right cell padding
        total = 0
        for b in blocks:
            quantity = b.get("quantity")
            if isinstance(quantity, int) and not isinstance(quantity, bool):
                total += quantity
            registry = "—"
            if b.get("registry_serial_start") or b.get("registry_serial_end"):
                start, end = b.get("registry_serial_start"), b.get("registry_serial_end")
                registry = f"{self.text(start, 80)} – {self.text(end, 80)}"
            vintage = _vintage(self.text(b.get("vintage_start"), 20), self.text(b.get("vintage_end"), 20))
            cells = [
                (self.text(b.get("batch_code"), 60), "td", 8.5),
                (vintage, "td", 8.5),
                (
                    self.text(f"{_quantity(b.get('serial_start'))} – {_quantity(b.get('serial_end'))}"),
                    "td",
                    8.5,
                ),
                (self.text(_quantity(quantity)), "td_r", 8.5),
                # The registry's own serials are what an auditor matches in the registry: as
                # legible as the portal's.
                (registry, "td", 8.5),
            ]
            # Most cells fit on one line and are drawn as plain strings: wrapping a Paragraph
            # costs ~0.2 ms, and a certificate may list hundreds of blocks.
            rows.append(
                [
                    text
                    if stringWidth(text, self.font, size) <= width - pad
                    else self.para(escape(text), style)
                    for (text, style, size), width in zip(cells, widths, strict=True)
                ]
            )
        table = Table(rows, colWidths=widths, repeatRows=1)
        table.setStyle(
            TableStyle(
                [
                    ("BACKGROUND", (0, 0), (-1, 0), GREEN),
                    ("VALIGN", (0, 0), (-1, -1), "TOP"),
                    ("FONT", (0, 1), (-1, -1), self.font, 8.5, 11),
                    ("TEXTCOLOR", (0, 1), (-1, -1), INK),
                    ("ALIGN", (3, 1), (3, -1), "RIGHT"),
                    ("ROWBACKGROUNDS", (0, 1), (-1, -1), [colors.white, TINT]),
                    ("LINEBELOW", (0, 1), (-1, -1), 0.3, RULE),
                    ("TOPPADDING", (0, 0), (-1, -1), 3.5),
                    ("BOTTOMPADDING", (0, 0), (-1, -1), 4),
                ]
            )
        )
        # The total is a table of its own, kept with the verification box: a page never holds
        # just the repeated header and the total.
        total_row = [
            self.para("合计 <font color='#5f6b76'>Total</font>", "td"),
            "",
            "",
            self.para(self.markup(_quantity(self.data.get("quantity", total)), 40), "td_r"),
            "",
        ]
        totals = Table([total_row], colWidths=widths)
        totals.setStyle(
            TableStyle(
                [
                    ("LINEABOVE", (0, 0), (-1, 0), 1, GREEN),
                    ("TOPPADDING", (0, 0), (-1, -1), 3.5),
                    ("BOTTOMPADDING", (0, 0), (-1, -1), 4),
                ]
            )
        )
        return table, totals


class NumberPlate(Flowable):
    """The certificate number, boxed and centred."""

    def __init__(self, number, font):
        super().__init__()
        self.number, self.font = number, font

    def wrap(self, available_width, available_height):
        self.width = available_width
        return available_width, 13 * mm

    def draw(self):
        canvas = self.canv
        label = "证明编号  Certificate No."
        label_w = canvas.stringWidth(label, self.font, 8.5)
        number_w = canvas.stringWidth(self.number, self.font, 17) + 1.5 * max(len(self.number) - 1, 0)
        box_w = min(self.width, max(label_w, number_w) + 20 * mm)
        x = (self.width - box_w) / 2
        canvas.setStrokeColor(GREEN)
        canvas.setFillColor(TINT)
        canvas.setLineWidth(0.8)
        canvas.roundRect(x, 0, box_w, 13 * mm, 2 * mm, stroke=1, fill=1)
        canvas.setFillColor(MUTED)
        canvas.setFont(self.font, 8.5)
        canvas.drawCentredString(self.width / 2, 8.6 * mm, label)
        canvas.setFillColor(INK)
        canvas.setStrokeColor(INK)
        canvas.setLineWidth(0.4)
        size = 17 if number_w + 6 * mm <= box_w else 17 * (box_w - 6 * mm) / number_w
        canvas.setFont(self.font, size)
        canvas.drawCentredString(self.width / 2, 2.6 * mm, self.number, mode=2, charSpace=1.5)


def dicts(value) -> list[dict]:
    """The objects in ``value`` when it is a list: a payload may hold anything."""
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _label(labels: dict, key, fallback: str) -> tuple[str, str]:
    """The (Chinese, English) label of a known code, else the code itself."""
    return labels.get(key, (fallback, "")) if isinstance(key, str) else (fallback, "")


def _quantity(value) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value if value is not None else "—")[:40]


def _vintage(start: str, end: str) -> str:
    try:
        return period_text(start, end, "zh")
    except ValueError:  # not dates: as given
        pass
    if start and end:
        return f"{start} – {end}"
    return start or end or "—"


def _moment(value) -> tuple[str, str]:
    """(Chinese, English) of an ISO 8601 instant in Beijing time, as pages write it; the text as
    given and no English when it is not one (a document is drawn whatever it holds)."""
    if not isinstance(value, str) or not value:
        return ("—", "")
    try:
        return (datetime_text(value, "zh"), datetime_text(value, "en"))
    except ValueError:
        return (value, "")
