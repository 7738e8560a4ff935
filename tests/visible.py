"""What a person sees of a page: its text, without tags, attributes, scripts and styles."""

from html.parser import HTMLParser

#: Elements a browser draws apart from their neighbours.
BLOCKS = {
    "p",
    "div",
    "li",
    "dt",
    "dd",
    "td",
    "th",
    "tr",
    "br",
    "option",
    "h1",
    "h2",
    "h3",
    "h4",
    "section",
    "nav",
}


class _Text(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style", "title", "head"):
            self._hidden += 1
        elif tag in BLOCKS:
            self.parts.append(" ")

    def handle_endtag(self, tag):
        if tag in ("script", "style", "title", "head") and self._hidden:
            self._hidden -= 1
        elif tag in BLOCKS:
            self.parts.append(" ")

    def handle_data(self, data):
        if not self._hidden:
            self.parts.append(data)


def visible_text(html: str) -> str:
    """The page's text as shown (whitespace runs collapsed to one space)."""
    parser = _Text()
    parser.feed(html)
    return " ".join("".join(parser.parts).split())


def selected_option(html: str, select_name: str, row_text: str) -> str | None:
    """The value of the option selected in the ``<select name=select_name>`` of the table row that
    contains ``row_text`` (as a browser shows it: the first option when none is marked)."""
    row = next(r for r in html.split("<tr") if row_text in r)
    select = row.split(f'<select name="{select_name}"', 1)[1].split("</select>", 1)[0]
    options = select.split("<option")[1:]
    for option in options:
        if " selected" in option.split(">", 1)[0]:
            return option.split('value="', 1)[1].split('"', 1)[0]
    return options[0].split('value="', 1)[1].split('"', 1)[0] if options else None
