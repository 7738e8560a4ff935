"""Tables the portal's PDFs share: the QR box (a QR code beside its text), and the styles of a
table of facts (label, value) and of a table of rows under a green header."""

from reportlab.graphics.barcode.qr import QrCode
from reportlab.lib import colors
from reportlab.lib.units import mm
from reportlab.platypus import Table, TableStyle

from portal.pdf.page import CONTENT_W, GREEN, RED, RULE, TINT

#: Left plus right padding of the cells of the batch and payment tables.
CELL_PADDING = 8


def qr_box(url: str, text: list, qr_size: float, *, padding: tuple[float, float]) -> Table:
    """A framed box: the QR code of ``url`` on the left, ``text`` (flowables) beside it."""
    table = Table(
        [[qr_code(url, qr_size), text]],
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


def qr_code(value: str, size: float) -> QrCode:
    # The flowable draws straight onto the canvas: the graphics widget builds thousands of shapes.
    return QrCode(str(value or "-")[:1000], width=size, height=size, qrLevel="M", qrBorder=2)


def facts_style() -> TableStyle:
    """A table of facts (a label, then its value) between green rules."""
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


def rows_style() -> TableStyle:
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


def band_style() -> TableStyle:
    """The red band of a document that no longer holds (a revoked certificate, a terminated
    contract): its title, a white rule, then what happened."""
    return TableStyle(
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


def tinted_box_style(*extra) -> TableStyle:
    """A tinted box of facts between green rules, the head of an invoice or a contract (``extra``:
    the document's own commands, such as a cell spanning the row)."""
    return TableStyle(
        [
            *extra,
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
