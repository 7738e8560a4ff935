"""Retirement certificate PDFs: drawing one (bilingual, with its signed data embedded) and
reading the signed data back out of a PDF someone was sent.

The signed payload, signature, key id and algorithm travel inside the PDF as an attached file
``certificate.json``, so the PDF alone can be verified. Everything drawn comes from the payload;
text in it is untrusted (a buyer typed the beneficiary and the purpose) and is drawn only after
``fonts.drawable`` has made it safe. The embedded data is never altered.
"""

import io
import json
import logging
import threading
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from xml.sax.saxutils import escape

from flask_babel import gettext as _
from reportlab.graphics.barcode.qr import QrCode
from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER, TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfdoc
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    BaseDocTemplate,
    CondPageBreak,
    Flowable,
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
from portal.core import jsontext
from portal.core.i18n import datetime_text, period_text

log = logging.getLogger(__name__)

ATTACHMENT_NAME = "certificate.json"
ATTACHMENT_DESCRIPTION = "Signed certificate data (payload, Ed25519 signature, key id)"
ALG = "Ed25519"
#: The embedded JSON is a few kB (about 250 bytes per block); anything far larger is not ours.
ATTACHMENT_MAX = 2 * 1024 * 1024

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

# ReportLab keeps per-document state on shared font objects: draw one certificate at a time.
render_lock = threading.Lock()


@dataclass(frozen=True)
class Embedded:
    """The signed data found in a certificate PDF."""

    payload: str  # canonical JSON text, exactly as signed
    signature: str  # standard base64 of the Ed25519 signature over payload.encode("utf-8")
    key_id: str
    alg: str  # "Ed25519"


class PdfError(Exception):
    """A PDF could not be drawn or read. ``code`` is stable; ``message`` is translated."""

    def __init__(self, code: str, **params):
        super().__init__(code)
        self.code = code
        self.params = params

    @property
    def message(self) -> str:
        if self.code == "not_a_pdf":
            return _("The file is not a PDF document, or it is damaged.")
        if self.code == "no_certificate":
            return _("This PDF does not contain a certificate issued by this portal.")
        if self.code == "too_large":
            return _("The file is too large (at most %(limit)s).", limit=self.params.get("limit", "?"))
        if self.code == "no_font":
            return _(
                "No Chinese font is available for certificate PDFs. Install the Debian package "
                "fonts-wqy-microhei, or set PORTAL_PDF_FONT to a TrueType font file (.ttf or .ttc)."
            )
        return _("The PDF could not be processed.")


def font_path() -> Path | None:
    """The CJK font that certificates embed: config ``PDF_FONT`` wins, else known system paths."""
    return fonts.font_path()


# --- drawing -------------------------------------------------------------------------------------


def render(
    *,
    payload: str,
    signature: str,
    key_id: str,
    verify_url: str,
    status: str = "valid",
    revoked_reason: str | None = None,
    revoked_at: str | None = None,
    source: str | None = None,
) -> bytes:
    """The certificate as an A4 PDF, with ``payload``, ``signature`` and ``key_id`` attached.

    The page shows the payload as the public sees it (``services.public_document``, given the
    certificate's recorded ``source``); the attachment is the payload as signed."""
    from portal.certificates.services import public_document

    data = json.loads(payload)
    if not isinstance(data, dict):
        raise ValueError("the certificate payload is not a JSON object")
    data = public_document(data, source)
    try:
        font, glyphs = fonts.load()
    except fonts.FontUnavailable as exc:
        raise PdfError("no_font") from exc
    embedded = json.dumps(
        {"payload": payload, "signature": signature, "key_id": key_id, "alg": ALG},
        ensure_ascii=True,  # byte-exact through any tool that re-encodes text
        sort_keys=True,
    ).encode("ascii")
    drawing = _Drawing(
        data,
        font=font,
        glyphs=glyphs,
        signature=signature,
        key_id=key_id,
        verify_url=verify_url,
        revoked=status == "revoked",
        revoked_reason=revoked_reason,
        revoked_at=revoked_at,
    )
    with render_lock:
        return drawing.build(embedded)


class TextDrawing:
    """Text helpers of a document being laid out (certificates, invoices, contracts): ``font`` and
    ``glyphs`` (the CJK font), ``fallback`` (for other scripts) and ``styles`` are set by the
    subclass. Untrusted text reaches the PDF only through ``text`` and ``markup``."""

    font: str
    glyphs: frozenset[int]
    fallback: tuple[str, frozenset[int]] | None
    styles: dict
    signature: str = ""
    key_id: str = ""

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
        if _is_http(url):
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
            self.para(_base64_only(self.signature), "mono"),
        ]
        return qr_box(url, text, 27 * mm, padding=(5, 7))


class _Drawing(TextDrawing):
    """One certificate being laid out."""

    def __init__(
        self, data, *, font, glyphs, signature, key_id, verify_url, revoked, revoked_reason, revoked_at
    ):
        self.data = data
        self.font = font
        self.glyphs = glyphs
        self.fallback = fonts.load_fallback()  # letters the CJK font lacks
        self.signature = signature
        self.key_id = key_id
        self.verify_url = verify_url
        self.revoked = revoked
        self.revoked_reason = revoked_reason
        self.revoked_at = revoked_at
        self.number = self.text(data.get("number"), 40) or "—"
        issuer = data.get("issuer") if isinstance(data.get("issuer"), dict) else {}
        self.issuer_zh = self.text(issuer.get("zh"), 60)
        self.issuer_en = self.text(issuer.get("en"), 80)
        self.styles = self._styles()

    def _styles(self) -> dict[str, ParagraphStyle]:
        base = ParagraphStyle(
            "base", fontName=self.font, fontSize=10, leading=14, textColor=INK, wordWrap="CJK"
        )
        return {
            "value": base,
            "big": ParagraphStyle("big", parent=base, fontSize=13.5, leading=17),
            "label": ParagraphStyle("label", parent=base, fontSize=9.5, leading=11.5, textColor=GREEN),
            "statement": ParagraphStyle(
                "statement", parent=base, fontSize=10, leading=15, alignment=TA_CENTER
            ),
            "statement_en": ParagraphStyle(
                "statement_en", parent=base, fontSize=8, leading=11, alignment=TA_CENTER, textColor=MUTED
            ),
            "heading": ParagraphStyle(
                "heading",
                parent=base,
                fontSize=11.5,
                leading=15,
                textColor=GREEN,
                spaceBefore=2,
                spaceAfter=3,
            ),
            "th": ParagraphStyle("th", parent=base, fontSize=8.5, leading=11, textColor=colors.white),
            "th_r": ParagraphStyle(
                "th_r", parent=base, fontSize=8.5, leading=11, textColor=colors.white, alignment=TA_RIGHT
            ),
            "td": ParagraphStyle("td", parent=base, fontSize=8.5, leading=11),
            "td_r": ParagraphStyle("td_r", parent=base, fontSize=8.5, leading=11, alignment=TA_RIGHT),
            "td_en": ParagraphStyle("td_en", parent=base, fontSize=7.8, leading=10.5),
            "url": ParagraphStyle("url", parent=base, fontSize=9, leading=13, textColor=GREEN, spaceAfter=3),
            "td_small": ParagraphStyle("td_small", parent=base, fontSize=6.5, leading=8.5, textColor=MUTED),
            "mono": ParagraphStyle(
                "mono", parent=base, fontName=MONO, fontSize=6.5, leading=8, textColor=INK
            ),
            "revoked": ParagraphStyle(
                "revoked", parent=base, fontSize=8.5, leading=12, textColor=colors.white
            ),
            "revoked_title": ParagraphStyle(
                "revoked_title",
                parent=base,
                fontSize=17,
                leading=20,
                textColor=colors.white,
                alignment=TA_CENTER,
            ),
        }

    def bilingual_label(self, zh: str, en: str) -> Paragraph:
        return self.para(f'{zh}<br/><font size="7.5" color="#5f6b76">{en}</font>', "label")

    # the document

    def build(self, attachment: bytes) -> bytes:
        out = io.BytesIO()
        drawing = self
        pdf_date = _pdf_date(self.data.get("retired_at"))

        class CertificateCanvas(NumberedCanvas):
            def draw_page_furniture(self, page: int, pages: int) -> None:
                drawing.footer(self, page, pages)

            def before_save(self) -> None:
                attach(self, ATTACHMENT_NAME, attachment)
                if pdf_date:  # dated when the credits were retired, not when this copy was drawn
                    self.setDateFormatter(lambda *_: pdf_date)

        doc = BaseDocTemplate(
            out,
            pagesize=A4,
            title=f"碳汇注销证明 Carbon Credit Retirement Certificate {self.number}",
            author=f"{self.issuer_zh} {self.issuer_en}".strip(),
            subject="Carbon Credit Retirement Certificate",
            creator=self.issuer_en or "Chifeng Carbon Sink Marketplace",
            invariant=1,  # the same certificate gives the same bytes (no clock time, fixed ID)
            leftMargin=MARGIN_X,
            rightMargin=MARGIN_X,
            topMargin=22 * mm,
            bottomMargin=24 * mm,
        )
        first = Frame(MARGIN_X, 19 * mm, CONTENT_W, PAGE_H - 39 * mm, id="first", **FRAME_PADDING)
        later = Frame(MARGIN_X, 19 * mm, CONTENT_W, PAGE_H - 46 * mm, id="later", **FRAME_PADDING)
        doc.addPageTemplates(
            [
                PageTemplate("first", [first], onPage=self.page_background),
                PageTemplate("later", [later], onPage=self.later_page_background),
            ]
        )
        doc.build(self.story(), canvasmaker=CertificateCanvas)
        return out.getvalue()

    def story(self) -> list:
        d = self.data
        story: list = [NextPageTemplate("later")]
        story.append(CentredLine(self.issuer_zh, self.font, 13, GREEN, space_after=3, char_space=2))
        story.append(CentredLine(self.issuer_en, self.font, 8.5, MUTED, space_after=10, char_space=0.6))
        story.append(CentredLine("碳汇注销证明", self.font, 28, INK, bold=True, char_space=6, space_after=6))
        story.append(
            CentredLine(
                "CARBON CREDIT RETIREMENT CERTIFICATE", self.font, 11.5, INK, char_space=1.6, space_after=9
            )
        )
        story.append(_NumberPlate(self.number, self.font))
        story.append(Spacer(1, 8))
        if self.revoked:  # the band takes the place of the statement: the credits stay retired
            story.append(self.revoked_band())
        else:
            story.append(
                self.para(
                    f"兹证明下列碳信用已在{escape(self.issuer_zh)}永久注销，不可再转让或使用。", "statement"
                )
            )
            story.append(
                self.para(
                    f"The carbon credits below were permanently retired on the {escape(self.issuer_en)}"
                    " and cannot be transferred or used again.",
                    "statement_en",
                )
            )
        story.append(Spacer(1, 8))
        story.append(self.facts())
        projects = _dicts(d.get("projects"))
        if projects:
            story.append(Spacer(1, 8))
            story.append(CondPageBreak(40 * mm))  # a heading never ends a page
            story.append(self.para("项目信息 <font size=9 color='#5f6b76'>Projects</font>", "heading"))
            for project in projects[:50]:
                story.append(self.project_table(project))
                story.append(Spacer(1, 4))
        blocks = _dicts(d.get("blocks"))
        if blocks:
            story.append(CondPageBreak(30 * mm))
            story.append(
                self.para("注销序列号 <font size=9 color='#5f6b76'>Retired serial numbers</font>", "heading")
            )
            table, totals = self.blocks_table(blocks)
            story += [table, KeepTogether([totals, Spacer(1, 10), *self.verification()])]
        else:
            story += [Spacer(1, 10), KeepTogether(self.verification())]
        return story

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
                (registry, "td_small", 6.5),
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
                    ("FONT", (4, 1), (4, -1), self.font, 6.5, 8.5),
                    ("TEXTCOLOR", (0, 1), (-1, -1), INK),
                    ("TEXTCOLOR", (4, 1), (4, -1), MUTED),
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

    def verification(self) -> list:
        return [
            self.signed_data_box(
                self.verify_url,
                "扫描二维码或访问以下网址核验本证明；经签名的证明数据已嵌入本 PDF 文件。",
                "Scan the QR code or visit the address below to verify; "
                "the signed data is embedded in this PDF.",
            )
        ]

    # page furniture

    def page_background(self, canvas: Canvas, doc) -> None:
        canvas.saveState()
        canvas.setStrokeColor(GREEN)
        canvas.setLineWidth(1.6)
        canvas.rect(10 * mm, 10 * mm, PAGE_W - 20 * mm, PAGE_H - 20 * mm)
        canvas.setLineWidth(0.5)
        canvas.rect(12 * mm, 12 * mm, PAGE_W - 24 * mm, PAGE_H - 24 * mm)
        if self.revoked:
            canvas.setFillColor(RED)
            canvas.setFillAlpha(0.11)
            canvas.translate(PAGE_W / 2, PAGE_H / 2)
            canvas.rotate(35)
            canvas.setFont(self.font, 64)
            canvas.drawCentredString(0, 10, "已撤销")
            canvas.setFont(self.font, 48)
            canvas.drawCentredString(0, -50, "REVOKED")
        canvas.restoreState()

    def later_page_background(self, canvas: Canvas, doc) -> None:
        self.page_background(canvas, doc)
        continued_header(
            canvas,
            self.font,
            "碳汇注销证明 Carbon Credit Retirement Certificate — 续页 continued",
            self.number,
            PAGE_H - 22 * mm,
        )

    def footer(self, canvas: Canvas, page: int, pages: int) -> None:
        page_footer(
            canvas,
            self.font,
            15 * mm,
            f"证明编号 No. {self.number}",
            f"{self.issuer_zh} {self.issuer_en}".strip(),
            page,
            pages,
        )


def qr_box(url: str, text: list, qr_size: float, *, padding: tuple[float, float]) -> Table:
    """A framed box: the QR code of ``url`` on the left, ``text`` (flowables) beside it."""
    table = Table(
        [[_qr(url, qr_size), text]],
        colWidths=[qr_size + 8 * mm, CONTENT_W - qr_size - 8 * mm],
    )
    top, bottom = padding
    table.setStyle(
        TableStyle(
            [
                ("BOX", (0, 0), (-1, -1), 0.8, GREEN),
                ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
                ("LEFTPADDING", (0, 0), (0, 0), 4 * mm),
                ("TOPPADDING", (0, 0), (-1, -1), top),
                ("BOTTOMPADDING", (0, 0), (-1, -1), bottom),
                ("RIGHTPADDING", (1, 0), (1, 0), 8),
            ]
        )
    )
    return table


def continued_header(canvas: Canvas, font: str, title: str, number: str, y: float) -> None:
    """The top line of a second or later page: what the document is, and its number."""
    canvas.saveState()
    canvas.setFont(font, 9)
    canvas.setFillColor(GREEN)
    canvas.drawString(MARGIN_X, y, title)
    canvas.setFillColor(INK)
    room = CONTENT_W - stringWidth(title, font, 9) - 20
    canvas.drawRightString(PAGE_W - MARGIN_X, y, _fit(number, font, 9, room))
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
    left = _fit(left, font, size, CONTENT_W * 0.3)
    right = f"第 {page} 页 / 共 {pages} 页　Page {page} of {pages}"
    side = max(stringWidth(left, font, size), stringWidth(right, font, size))
    centre = _fit(centre, font, size, CONTENT_W - 2 * side - 24)
    canvas.drawString(MARGIN_X, y, left)
    canvas.drawCentredString(PAGE_W / 2, y, centre)
    canvas.drawRightString(PAGE_W - MARGIN_X, y, right)
    canvas.restoreState()


class CentredLine(Flowable):
    """One centred line of text (the title, the issuer), optionally bolder than the font."""

    def __init__(self, text, font, size, color, *, bold=False, char_space=0.0, space_after=0.0):
        super().__init__()
        self.text, self.font, self.size, self.color = text, font, size, color
        self.bold, self.char_space = bold, char_space
        self.spaceAfter = space_after

    def wrap(self, available_width, available_height):
        self.width = available_width
        return available_width, self.size * 1.15

    def draw(self):
        canvas = self.canv
        canvas.setFillColor(self.color)
        canvas.setFont(self.font, self.size)
        width = canvas.stringWidth(self.text, self.font, self.size) + self.char_space * max(
            len(self.text) - 1, 0
        )
        size = self.size
        if width > self.width:  # a long issuer name: shrink rather than run over the border
            size = self.size * self.width / width
            canvas.setFont(self.font, size)
        mode = 0
        if self.bold:  # the CJK font has no bold face: fill and stroke the outline
            canvas.setStrokeColor(self.color)
            canvas.setLineWidth(size * 0.028)
            mode = 2
        canvas.drawCentredString(
            self.width / 2, self.size * 0.22, self.text, mode=mode, charSpace=self.char_space
        )


class _NumberPlate(Flowable):
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


def _fit(text: str, font: str, size: float, width: float) -> str:
    """``text``, cut short with an ellipsis to fit ``width`` points."""
    if stringWidth(text, font, size) <= width:
        return text
    while text and stringWidth(text + "…", font, size) > width:
        text = text[:-1]
    return text + "…" if text else ""


def _qr(value: str, size: float) -> QrCode:
    # The flowable draws straight onto the canvas: the graphics widget builds thousands of shapes.
    return QrCode(str(value or "-")[:1000], width=size, height=size, qrLevel="M", qrBorder=2)


def _dicts(value) -> list[dict]:
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


def _pdf_date(value) -> str | None:
    """An ISO 8601 instant as a PDF date string (``D:YYYYMMDDHHmmSS+00'00'``), or None."""
    try:
        moment = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return f"D:{moment.astimezone(UTC):%Y%m%d%H%M%S}+00'00'"


def _is_http(url) -> bool:
    return isinstance(url, str) and url.startswith(("https://", "http://")) and len(url) <= 1000


def _base64_only(value) -> str:
    allowed = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")
    return "".join(c for c in str(value or "") if c in allowed)[:512]


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
    from pypdf.generic import ArrayObject, DictionaryObject

    reader = PdfReader(io.BytesIO(data), strict=False)
    if reader.is_encrypted:
        raise PdfError("no_certificate")
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


# --- untrusted uploads ---------------------------------------------------------------------------

#: Limits of the child process that reads an uploaded PDF.
UPLOAD_CPU_SECONDS = 5
UPLOAD_MEMORY_BYTES = 1024 * 1024 * 1024


def extract_isolated(data: bytes, max_bytes: int = 5 * 1024 * 1024) -> Embedded:
    """``extract`` for an uploaded file, in a child process limited in CPU time and memory.

    A general PDF parser on untrusted input can be made to inflate and walk far more than the
    file's size (compressed object streams of name trees): whatever an upload does, it costs at
    most a few seconds of one child process. Raises PdfError, and nothing else.
    """
    import subprocess
    import sys

    if not isinstance(data, bytes | bytearray | memoryview):
        raise PdfError("not_a_pdf")
    if len(data) > max_bytes:
        raise PdfError("too_large", limit=_size(max_bytes))
    if b"%PDF-" not in bytes(data[:1024]):
        raise PdfError("not_a_pdf")
    try:
        done = subprocess.run(
            [sys.executable, "-m", "portal.certificates.pdf", str(max_bytes)],
            input=bytes(data),
            capture_output=True,
            timeout=UPLOAD_CPU_SECONDS * 3,
        )
    except subprocess.TimeoutExpired:
        log.warning("reading an uploaded PDF took too long; refused")
        raise PdfError("not_a_pdf") from None
    try:
        result = json.loads(done.stdout) if done.returncode == 0 else None
    except ValueError:
        result = None
    if not isinstance(result, dict):
        log.warning("reading an uploaded PDF failed (exit %s); refused", done.returncode)
        raise PdfError("not_a_pdf")
    if "error" in result:
        raise PdfError(str(result["error"]), **(result.get("params") or {}))
    return Embedded(**{key: str(result[key]) for key in ("payload", "signature", "key_id", "alg")})


def _child_main() -> None:
    """``python -m portal.certificates.pdf MAX_BYTES``: the PDF on stdin, JSON on stdout."""
    import resource
    import sys

    resource.setrlimit(resource.RLIMIT_CPU, (UPLOAD_CPU_SECONDS, UPLOAD_CPU_SECONDS))
    resource.setrlimit(resource.RLIMIT_AS, (UPLOAD_MEMORY_BYTES, UPLOAD_MEMORY_BYTES))
    data = sys.stdin.buffer.read()
    try:
        found = extract(data, max_bytes=int(sys.argv[1]))
    except PdfError as exc:
        out = {"error": exc.code, "params": exc.params}
    else:
        out = {
            "payload": found.payload,
            "signature": found.signature,
            "key_id": found.key_id,
            "alg": found.alg,
        }
    sys.stdout.write(json.dumps(out))


if __name__ == "__main__":
    _child_main()
