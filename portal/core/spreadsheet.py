"""CSV and XLSX downloads that open safely in spreadsheets (Chinese text, no formula injection)."""

import csv
import io
from collections.abc import Iterable
from decimal import Decimal

from flask import Response

#: A cell starting with one of these is a formula (or becomes one) in a spreadsheet.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value):
    """``value`` for a CSV or XLSX cell: text that a spreadsheet would run as a formula gets a quote.

    Numbers (``int``, ``Decimal``, …) are left alone, so pass amounts as numbers, never as text:
    ``"-820.20"`` as text starts with ``-`` and comes out as ``'-820.20``, which no spreadsheet
    adds up."""
    if isinstance(value, str) and value[:1] in _FORMULA_STARTS:
        return "'" + value
    return value


def csv_response(rows: Iterable[Iterable], filename: str) -> Response:
    """A CSV download of ``rows``, UTF-8 with a byte-order mark (for Excel and WPS).

    The rows are read and written out here, while the request and its database session are
    open, and the response sends the finished text. They must not be read while the body is
    being sent: by then the request has committed and its session is closed, so ORM objects are
    detached (an attribute not yet loaded raises ``DetachedInstanceError`` half-way through the
    download, which the browser just cancels, and nobody is told). Keeping a session open for
    the body instead (``stream_with_context``) would hold a pooled connection, and its
    transaction, for as long as the slowest client takes to read, outside the one commit per
    request. What is held in memory is the CSV text, not the rows' objects: pass a generator
    that reads in chunks (``yield_per``) for a long export.
    """
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out)
    for row in rows:
        writer.writerow([safe_cell(c) for c in row])
    return Response(
        out.getvalue(),
        mimetype="text/csv",
        headers={"Content-Disposition": f"attachment; filename={filename}"},
    )


XLSX_MIMETYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def xlsx_response(rows: Iterable[Iterable], filename: str, *, title: str, money_columns=()) -> Response:
    """``rows`` as a one-sheet XLSX download. Text is guarded as in CSV (``safe_cell``); numbers
    stay numbers (those in ``money_columns``, counted from 0, shown with two decimals); dates are
    date cells (shown YYYY-MM-DD), so a spreadsheet can sort, filter and add them up; None and
    empty text are empty cells."""
    from datetime import date, datetime

    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    # A sheet name has at most 31 characters and none of []:*?/\
    sheet.title = "".join(c for c in title if c not in "[]:*?/\\")[:31] or "Sheet1"
    for row in rows:
        sheet.append([None if c == "" else safe_cell(c) for c in row])
        for cell in sheet[sheet.max_row]:
            if isinstance(cell.value, datetime):
                cell.number_format = "yyyy-mm-dd hh:mm:ss"
            elif isinstance(cell.value, date):
                cell.number_format = "yyyy-mm-dd"
            elif cell.column - 1 in money_columns and isinstance(cell.value, int | float | Decimal):
                cell.number_format = "0.00"
    out = io.BytesIO()
    book.save(out)
    return Response(
        out.getvalue(),
        mimetype=XLSX_MIMETYPE,
        headers={"Content-Disposition": f"attachment; filename={filename}"},
    )
