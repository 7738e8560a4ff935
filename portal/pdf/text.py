"""Text on the portal's PDFs beyond Paragraphs: a centred title line that shrinks rather than run
over, and the checks that decide how an address or a signature may be drawn."""

from reportlab.platypus import Flowable


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


def is_http(url) -> bool:
    return isinstance(url, str) and url.startswith(("https://", "http://")) and len(url) <= 1000


def base64_only(value) -> str:
    allowed = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")
    return "".join(c for c in str(value or "") if c in allowed)[:512]
