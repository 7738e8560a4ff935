"""CSV downloads that open safely in spreadsheets (Chinese text, no formula injection)."""

import csv
import io
from collections.abc import Iterable

from flask import Response, stream_with_context

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
    """Stream ``rows`` as a CSV download, UTF-8 with a byte-order mark (for Excel and WPS)."""

    def generate():
        out = io.StringIO()
        writer = csv.writer(out)
        yield "\ufeff"
        for n, row in enumerate(rows, 1):
            writer.writerow([safe_cell(c) for c in row])
            if n % 500 == 0:
                yield out.getvalue()
                out.seek(0)
                out.truncate()
        yield out.getvalue()

    return Response(
        stream_with_context(generate()),
        mimetype="text/csv",
        headers={"Content-Disposition": f"attachment; filename={filename}"},
    )
