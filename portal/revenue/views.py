"""Back office: revenue statements per county and period (screen, CSV, XLSX) and sharing rules."""

import calendar
import io
import re
from datetime import date

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from portal.access import county_of, may, page
from portal.catalog.models import PROJECT_TYPE_LABELS, Region
from portal.core.i18n import SPREADSHEET_DATE_FORMATS, current_language, iso_beijing, localized
from portal.core.spreadsheet import csv_response, safe_cell
from portal.extensions import db
from portal.revenue import services
from portal.timeutil import beijing_today

bp = Blueprint("revenue", __name__, url_prefix="/staff/revenue", template_folder="templates")


#: ``YYYY`` or ``YYYY-MM``, ASCII digits only.
_PERIOD = re.compile(r"(\d{4})(?:-(\d{2}))?", re.ASCII)


def _period(raw: str):
    """(first day, last day, label) of ``YYYY`` or ``YYYY-MM``; None if it is neither."""
    raw = (raw or "").strip()
    found = _PERIOD.fullmatch(raw)
    if found is None:
        return None
    year = int(found[1])
    try:
        if found[2] is None:
            return date(year, 1, 1), date(year, 12, 31), raw
        month = int(found[2])
        # monthrange, not "first of next month minus a day": that overflows in December 9999.
        return date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1]), raw
    except (ValueError, OverflowError):
        return None


def _filters():
    """(period, county code, the counties offered). A county reviewer reads its own county only:
    it is the one shown, and another county asked for is refused."""
    today = beijing_today()  # months are Beijing's, as the lines' paid_on dates are
    period = request.args.get("period") or f"{today:%Y-%m}"
    found = _period(period)
    county = (request.args.get("county") or "").strip()[:32]
    regions = list(db.session.scalars(select(Region).order_by(Region.id)))
    if found is None or (county and county not in {r.code for r in regions}):
        abort(400, _("Choose a county and a period written as YYYY or YYYY-MM."))
    own = county_of(current_user)
    if own is not None:
        regions = [r for r in regions if r.id == own]
        if county and county != regions[0].code:
            abort(403, _("You read your own county's statements only."))
        county = regions[0].code
    return found, county, regions


def _header() -> list[str]:
    return [
        _("Paid on"),
        _("Sale"),
        _("County"),
        _("County code"),
        _("Batch"),
        _("Amount (yuan)"),
        _("City share (yuan)"),
        _("County share (yuan)"),
        _("Rule in force from"),
        _("City share (per cent)"),
        _("County share (per cent)"),
    ]


#: Columns (from 0) of the rows that hold yuan, and the dates' columns.
_YUAN_COLUMNS = (5, 6, 7)
_DATE_COLUMNS = (0, 8)


def _line_row(line) -> list:
    """One line as plain values: dates as dates (a Beijing day each), amounts and percentages as
    numbers (Decimal), never text: a spreadsheet must be able to add them up, and a reversing
    line's ``-820.20`` as text would be neutralised as a formula."""
    return [
        line.paid_on,
        line.sale_ref,
        localized(line.region, "name"),
        line.region.code,
        line.batch.code,
        services.yuan_of(line.amount_fen),
        services.yuan_of(line.city_fen),
        services.yuan_of(line.county_fen),
        line.rule.effective_from,
        line.rule.city_pct,
        line.rule.county_pct,
    ]


def _total_row(label: str, amount_fen: int, city_fen: int, county_fen: int, county=None) -> list:
    name, code = (localized(county, "name"), county.code) if county is not None else (None, None)
    amounts = [services.yuan_of(fen) for fen in (amount_fen, city_fen, county_fen)]
    return [label, None, name, code, None, *amounts, None, None, None]


def _csv_rows(statement) -> list[list]:
    """The statement for the CSV: a header, one row per line (dates in ISO 8601, ``YYYY-MM-DD``,
    Beijing days as the statement's), the total."""
    rows = [_header()]
    for line in statement.lines:
        row = _line_row(line)
        for column in _DATE_COLUMNS:
            row[column] = iso_beijing(row[column])
        rows.append(row)
    rows.append(_total_row(_("Total"), statement.amount_fen, statement.city_fen, statement.county_fen))
    return rows


def _xlsx(statement, title: str) -> bytes:
    """The statement as a workbook: the lines county by county (by name, with the code in a column
    of its own), each county's subtotal after its lines, the grand total last.

    Dates are real date cells (shown as the pages show dates), amounts numbers with two
    decimals. Subtotals and the total are written as numbers, not formulas: a file written here
    carries no calculated values, so a formula would show as empty in every reader that does not
    calculate (previewers, pandas, openpyxl); the numbers are the statement's own, to the fen."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    language = current_language()
    date_format = SPREADSHEET_DATE_FORMATS[language]
    book = Workbook()
    sheet = book.active
    sheet.title = title
    sheet.append(_header())
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    sheet.freeze_panes = "A2"

    def append(row, bold=False):
        sheet.append([safe_cell(c) for c in row])
        for cell in sheet[sheet.max_row]:
            if cell.column - 1 in _YUAN_COLUMNS:
                cell.number_format = "#,##0.00"
            elif cell.column - 1 in _DATE_COLUMNS and isinstance(cell.value, date):
                cell.number_format = date_format
            if bold:
                cell.font = Font(bold=True)

    by_county: dict[int, list] = {}
    for line in statement.lines:  # already by date, then by id
        by_county.setdefault(line.region_id, []).append(line)
    for lines in sorted(by_county.values(), key=lambda lines: lines[0].region_id):
        for line in lines:
            append(_line_row(line))
        append(
            _total_row(
                _("Subtotal"),
                sum(line.amount_fen for line in lines),
                sum(line.city_fen for line in lines),
                sum(line.county_fen for line in lines),
                lines[0].region,
            ),
            bold=True,
        )
    append(_total_row(_("Total"), statement.amount_fen, statement.city_fen, statement.county_fen), bold=True)
    for letter, width in zip("ABCDEFGHIJK", (16, 22, 16, 12, 24, 14, 14, 14, 16, 10, 10), strict=True):
        sheet.column_dimensions[letter].width = width
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


@bp.get("/")
@page("revenue.read", "county.supervise")
def statement():
    (first, last, label), county, regions = _filters()
    found = services.statement(first, last, county)
    fmt = request.args.get("format")
    filename = f"revenue-{county or 'all'}-{label}"
    if fmt == "csv":
        return csv_response(_csv_rows(found), f"{filename}.csv")
    if fmt == "xlsx":
        return Response(
            _xlsx(found, label),
            mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            headers={"Content-Disposition": f"attachment; filename={filename}.xlsx"},
        )
    return render_template(
        "revenue/statement.html",
        statement=found,
        period=label,
        county=county,
        regions=regions,
        yuan_of=services.yuan_of,
    )


@bp.route("/rules", methods=["GET", "POST"])
@page("revenue.read")
def rules():
    error = None
    if request.method == "POST":
        if not may(current_user, "revenue.change"):
            abort(403)
        try:
            services.add_rule(
                effective_from=request.form.get("effective_from", ""),
                city_pct=request.form.get("city_pct", ""),
                county_pct=request.form.get("county_pct", ""),
                region_code=request.form.get("region_code", ""),
                project_type=request.form.get("project_type", ""),
                note=request.form.get("note", ""),
                actor=f"user:{current_user.id}",
            )
        except services.RevenueError as exc:
            db.session.rollback()
            error = exc
        else:
            flash(_("The rule is recorded. Sales paid from its date on are shared by it."), "success")
            return redirect(url_for("revenue.rules"))
    regions = list(db.session.scalars(select(Region).order_by(Region.id)))
    return render_template(
        "revenue/rules.html",
        rules=services.rules(),
        regions=regions,
        counties={r.code: r for r in regions},
        project_types=PROJECT_TYPE_LABELS,
        error=error,
        form=request.form,
    ), (400 if error else 200)
