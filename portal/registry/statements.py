"""Reading a registry account statement: the serial blocks the registry shows in the operator's
account, per batch (docs/registry-statements.md describes the format).

Two layouts are accepted, told apart by their header:

* the portal's: ``serial_start, serial_end, quantity, status`` (``account`` optional; ``quantity``
  optional and then checked), serials in the registry's own format, status ``active``,
  ``retired`` or ``cancelled``;
* Verra's public export (the registry's "VCUs" search exported as CSV): ``Serial Number`` and
  ``Quantity Issued``, with ``Retirement/Cancellation Date`` (and ``Retirement Reason``) saying
  whether a block is retired or cancelled.

Every refusal names the line (the header is line 1) or the reason; nothing is kept of a refused
file. Bounded: at most ``MAX_BYTES`` and ``MAX_ROWS``.
"""

import csv
import io
from dataclasses import dataclass

from flask_babel import gettext as _

from portal.core.text import has_hidden_characters
from portal.ledger import serials
from portal.registry.instructions import RegistryError
from portal.registry.models import BlockStatus

MAX_BYTES = 2 * 1024 * 1024
MAX_ROWS = 20_000
#: Serial fields are at most this long (the batches' columns are as wide).
SERIAL_MAX = 120

PORTAL_REQUIRED = ("serial_start", "serial_end", "status")
VERRA_REQUIRED = ("serial number", "quantity issued")


@dataclass(frozen=True)
class ParsedBlock:
    line: int
    series: str
    first: int
    last: int
    status: str

    @property
    def quantity(self) -> int:
        return self.last - self.first + 1


@dataclass(frozen=True)
class ParsedStatement:
    format: str  #: ``portal`` or ``verra``
    blocks: list[ParsedBlock]


def _refuse(code: str, message: str) -> RegistryError:
    return RegistryError(code, message, field="file")


def parse(data: bytes, registry: str) -> ParsedStatement:
    """The blocks of a statement of ``registry`` (``ccer`` or ``verra``), or RegistryError."""
    if len(data) > MAX_BYTES:
        raise _refuse(
            "statement_too_large",
            _("The statement is larger than %(n)s MB; split it by batch.", n=MAX_BYTES // (1024 * 1024)),
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise _refuse(
            "statement_encoding",
            _(
                "Line %(line)s is not UTF-8 text. Save the statement as CSV UTF-8 (a file saved as GBK "
                "by a spreadsheet is the usual cause).",
                line=line,
            ),
        ) from None
    if "\x00" in text:
        raise _refuse("statement_binary", _("The statement is not a CSV text file."))
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise _refuse("statement_empty", _("The statement is empty: the first line must name the columns."))
    if len(lines) - 1 > MAX_ROWS:
        raise _refuse(
            "statement_too_many_rows",
            _(
                "The statement has %(rows)s rows; at most %(max)s are read at once. Split it by batch.",
                rows=len(lines) - 1,
                max=MAX_ROWS,
            ),
        )
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = [h.strip().lower() for h in next(reader)]
    except csv.Error:
        raise _refuse("statement_columns", _("Line 1 is not a CSV header.")) from None
    standard = "CCER" if registry == "ccer" else "VCS"
    if all(c in header for c in VERRA_REQUIRED):
        if registry != "verra":
            raise _refuse("statement_registry", _("This is a Verra export; choose the Verra registry."))
        layout = "verra"
    elif all(c in header for c in PORTAL_REQUIRED):
        layout = "portal"
    else:
        raise _refuse(
            "statement_columns",
            _(
                "Line 1 must name the columns serial_start, serial_end, quantity (optional), status (the portal's "
                "layout), or be Verra's export with Serial Number and Quantity Issued. Found: %(found)s.",
                found=", ".join(h for h in header if h)[:200] or "—",
            ),
        )
    column = {name: i for i, name in reversed(list(enumerate(header)))}
    blocks: list[ParsedBlock] = []
    line = 1
    try:
        for row in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            if len(row) > len(header) + 5:
                raise _refuse(
                    "statement_row", _("Line %(line)s has more cells than the header names.", line=line)
                )
            cell = _cells(row, column)
            if any(has_hidden_characters(c) or len(c) > 500 for c in row):
                raise _refuse(
                    "statement_row",
                    _("Line %(line)s holds control characters or an overlong cell.", line=line),
                )
            blocks.append(_block(layout, standard, cell, line))
    except csv.Error:
        raise _refuse(
            "statement_row", _("Line %(line)s is not valid CSV (an unclosed quote?).", line=line)
        ) from None
    if not blocks:
        raise _refuse("statement_empty", _("The statement names no serial blocks."))
    _check_overlaps(blocks)
    return ParsedStatement(layout, blocks)


def _cells(row: list[str], column: dict[str, int]):
    """A look-up of ``row``'s cell by column name ("" where the row is short)."""
    return lambda name: row[column[name]].strip() if column.get(name, len(row)) < len(row) else ""


def _block(layout: str, standard: str, cell, line: int) -> ParsedBlock:
    if layout == "verra":
        start, end, quantity = cell("serial number"), "", cell("quantity issued")
        retired_on = cell("retirement/cancellation date")
        reason = cell("retirement reason").lower()
        status = (
            BlockStatus.ACTIVE
            if not retired_on
            else BlockStatus.CANCELLED
            if "cancel" in reason
            else BlockStatus.RETIRED
        )
    else:
        start, end, quantity = cell("serial_start"), cell("serial_end"), cell("quantity")
        status = cell("status").lower()
        if status not in set(BlockStatus):
            raise _refuse(
                "statement_status",
                _(
                    "Line %(line)s: the status must be active, retired or cancelled (found %(found)s).",
                    line=line,
                    found=status[:40] or "—",
                ),
            )
    if len(start) > SERIAL_MAX or len(end) > SERIAL_MAX:
        raise _refuse(
            "statement_serial",
            _("Line %(line)s: a serial is longer than %(n)s characters.", line=line, n=SERIAL_MAX),
        )
    try:
        units = serials.parse_range(standard, start, end)
    except serials.SerialError as exc:
        if exc.reason == "reversed":
            message = _(
                "Line %(line)s: the range is reversed (%(first)s comes after %(last)s).",
                line=line,
                first=exc.params["first"],
                last=exc.params["last"],
            )
        elif exc.reason == "missing":
            message = _("Line %(line)s: the serials are missing.", line=line)
        else:
            message = _(
                "Line %(line)s: %(serial)s is not a serial number in the registry's format.",
                line=line,
                serial=(start or end)[:120],
            )
        raise _refuse("statement_serial", message) from None
    if units.last > serials.MAX_UNIT:
        raise _refuse("statement_serial", _("Line %(line)s: the unit numbers are too large.", line=line))
    if quantity:
        quantity = quantity.replace(",", "")
        if not (quantity.isascii() and quantity.isdigit()) or int(quantity) != units.count:
            raise _refuse(
                "statement_quantity",
                _(
                    "Line %(line)s: the quantity %(quantity)s does not equal the %(count)s serials of the range.",
                    line=line,
                    quantity=quantity[:20],
                    count=units.count,
                ),
            )
    return ParsedBlock(line, units.series, units.first, units.last, status)


def _check_overlaps(blocks: list[ParsedBlock]) -> None:
    ordered = sorted(blocks, key=lambda b: (b.series, b.first))
    for before, after in zip(ordered, ordered[1:], strict=False):
        if before.series == after.series and after.first <= before.last:
            raise _refuse(
                "statement_overlap",
                _(
                    "Lines %(a)s and %(b)s overlap: serials %(first)s to %(last)s are listed twice.",
                    a=min(before.line, after.line),
                    b=max(before.line, after.line),
                    first=after.first,
                    last=min(before.last, after.last),
                ),
            )
