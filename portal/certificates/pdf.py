"""Retirement certificate PDFs: drawing one (bilingual, with its signed data embedded) and
reading the signed data back out of a PDF someone was sent.

The signed payload, signature, key id and algorithm travel inside the PDF as an attached file
``certificate.json``, so the PDF alone can be verified. Everything drawn comes from the payload;
text in it is untrusted (a buyer typed the beneficiary and the purpose) and is drawn only after
``fonts.drawable`` has made it safe. The embedded data is never altered.

The building blocks (page, fonts, tables, QR box, the attachment and reading it back) are the
toolkit's, ``portal.pdf``; the parts of the page are in ``pdf_sections``.
"""

import json
from datetime import UTC, datetime
from pathlib import Path
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER, TA_RIGHT
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import CondPageBreak, KeepTogether, Spacer

from portal.certificates.pdf_sections import (
    PROJECT_TYPES,
    PURPOSES,
    CertificateSections,
    NumberPlate,
    dicts,
)
from portal.core.seller import PLATFORM_EN
from portal.pdf import fonts
from portal.pdf.drawing import load_font
from portal.pdf.embedded import (
    ALG,
    ATTACHMENT_DESCRIPTION,
    ATTACHMENT_MAX,
    ATTACHMENT_NAME,
    Embedded,
    extract,
    signed_json,
)
from portal.pdf.errors import PdfError
from portal.pdf.page import (
    CERTIFICATE_FRAME,
    GREEN,
    INK,
    MONO,
    MUTED,
    PAGE_H,
    PAGE_W,
    RED,
    continued_header,
    page_footer,
    render_lock,
)
from portal.pdf.text import CentredLine

__all__ = [
    "ALG",
    "ATTACHMENT_DESCRIPTION",
    "ATTACHMENT_MAX",
    "ATTACHMENT_NAME",
    "PROJECT_TYPES",
    "PURPOSES",
    "Embedded",
    "PdfError",
    "extract",
    "font_path",
    "render",
]


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
    font, glyphs = load_font()
    embedded = signed_json(payload, signature, key_id)
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
        return drawing.pdf(embedded)


class _Drawing(CertificateSections):
    """One certificate being laid out."""

    def __init__(
        self, data, *, font, glyphs, signature, key_id, verify_url, revoked, revoked_reason, revoked_at
    ):
        super().__init__(font=font, glyphs=glyphs)
        self.data = data
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

    # the document

    def pdf(self, attachment: bytes) -> bytes:
        return self.build(
            self.story(),
            frame=CERTIFICATE_FRAME,
            title=f"碳汇注销证明 Carbon Credit Retirement Certificate {self.number}",
            author=f"{self.issuer_zh} {self.issuer_en}".strip(),
            subject="Carbon Credit Retirement Certificate",
            creator=self.issuer_en or PLATFORM_EN,
            # dated when the credits were retired, not when this copy was drawn
            pdf_date=_pdf_date(self.data.get("retired_at")),
            attachment=(ATTACHMENT_NAME, attachment, ATTACHMENT_DESCRIPTION),
        )

    def story(self) -> list:
        d = self.data
        story: list = []
        story.append(CentredLine(self.issuer_zh, self.font, 13, GREEN, space_after=3, char_space=2))
        story.append(CentredLine(self.issuer_en, self.font, 8.5, MUTED, space_after=10, char_space=0.6))
        story.append(CentredLine("碳汇注销证明", self.font, 28, INK, bold=True, char_space=6, space_after=6))
        story.append(
            CentredLine(
                "CARBON CREDIT RETIREMENT CERTIFICATE", self.font, 11.5, INK, char_space=1.6, space_after=9
            )
        )
        story.append(NumberPlate(self.number, self.font))
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
        projects = dicts(d.get("projects"))
        if projects:
            story.append(Spacer(1, 8))
            story.append(CondPageBreak(40 * mm))  # a heading never ends a page
            story.append(self.para("项目信息 <font size=9 color='#5f6b76'>Projects</font>", "heading"))
            for project in projects[:50]:
                story.append(self.project_table(project))
                story.append(Spacer(1, 4))
        blocks = dicts(d.get("blocks"))
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


def _pdf_date(value) -> str | None:
    """An ISO 8601 instant as a PDF date string (``D:YYYYMMDDHHmmSS+00'00'``), or None."""
    try:
        moment = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return f"D:{moment.astimezone(UTC):%Y%m%d%H%M%S}+00'00'"
