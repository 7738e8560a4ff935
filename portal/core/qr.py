"""A QR code as inline SVG, for pages (a wallet's payment code): one path of dark modules on a
white square with the quiet zone the standard asks for. No script, no style sheet, no image
request, so the strictest Content-Security-Policy allows it."""

from markupsafe import Markup, escape
from reportlab.graphics.barcode import qrencoder

#: Modules of white around the code (the standard's quiet zone).
QUIET_ZONE = 4


def qr_svg(data: str, *, label: str, size_px: int = 240) -> Markup:
    """``data`` as a QR code (error correction M), ``size_px`` wide, named ``label`` for screen readers."""
    code = qrencoder.QRCode(None, qrencoder.QRErrorCorrectLevel.M)
    code.addData(str(data))
    code.make()
    count = code.getModuleCount()
    side = count + 2 * QUIET_ZONE
    path = "".join(
        f"M{column + QUIET_ZONE} {row + QUIET_ZONE}h1v1h-1z"
        for row in range(count)
        for column in range(count)
        if code.isDark(row, column)
    )
    return Markup(
        f'<svg class="qr" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {side} {side}" width="{size_px}" '
        f'height="{size_px}" role="img" aria-label="{escape(label)}" shape-rendering="crispEdges">'
        f'<rect width="{side}" height="{side}" fill="#fff"/><path d="{path}" fill="#000"/></svg>'
    )
