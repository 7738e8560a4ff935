"""Back office: revenue statements per county and period (screen, CSV, XLSX) and sharing rules."""

import calendar
import io
import re
from datetime import date
from decimal import Decimal

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from portal.buyers.policy import require
from portal.catalog.labels import PROJECT_TYPES
from portal.catalog.models import Region
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
    today = beijing_today()  # months are Beijing's, as the lines' paid_on dates are
    period = request.args.get("period") or f"{today:%Y-%m}"
    found = _period(period)
    county = (request.args.get("county") or "").strip()[:32]
    regions = list(db.session.scalars(select(Region).order_by(Region.id)))
    if found is None or (county and county not in {r.code for r in regions}):
        abort(400, _("Choose a county and a period written as YYYY or YYYY-MM."))
    return found, county, regions


#: Columns of ``_rows`` that hold yuan (XLSX gives them a two-decimal number format).
_YUAN_COLUMNS = (4, 5, 6)


def _rows(statement):
    """The statement as rows: a header, one row per line, a total. Amounts and percentages are
    numbers (Decimal), never text: a spreadsheet must be able to add them up, and a reversing
    line's ``-820.20`` as text would be neutralised as a formula."""
    yield [
        _("Paid on"),
        _("Sale"),
        _("County"),
        _("Batch"),
        _("Amount (yuan)"),
        _("City share (yuan)"),
        _("County share (yuan)"),
        _("Rule in force from"),
        _("City share (per cent)"),
        _("County share (per cent)"),
    ]
    for line in statement.lines:
        yield [
            line.paid_on.isoformat(),
            line.sale_ref,
            line.region.code,
            line.batch.code,
            services.yuan_of(line.amount_fen),
            services.yuan_of(line.city_fen),
            services.yuan_of(line.county_fen),
            line.rule.effective_from.isoformat(),
            line.rule.city_pct,
            line.rule.county_pct,
        ]
    yield [
        _("Total"),
        "",
        "",
        "",
        services.yuan_of(statement.amount_fen),
        services.yuan_of(statement.city_fen),
        services.yuan_of(statement.county_fen),
        "",
        "",
        "",
    ]


@bp.get("/")
@require("revenue.read")
def statement():
    (first, last, label), county, regions = _filters()
    found = services.statement(first, last, county)
    fmt = request.args.get("format")
    filename = f"revenue-{county or 'all'}-{label}"
    if fmt == "csv":
        return csv_response(_rows(found), f"{filename}.csv")
    if fmt == "xlsx":
        from openpyxl import Workbook

        book = Workbook()
        sheet = book.active
        sheet.title = label
        for row in _rows(found):
            sheet.append([safe_cell(c) for c in row])
            for column in _YUAN_COLUMNS:
                cell = sheet.cell(row=sheet.max_row, column=column + 1)
                if isinstance(cell.value, (int, float, Decimal)):
                    cell.number_format = "0.00"
        out = io.BytesIO()
        book.save(out)
        return Response(
            out.getvalue(),
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
@require("revenue.read")
def rules():
    error = None
    if request.method == "POST":
        from portal.buyers.policy import user_may

        if not user_may(current_user, "revenue.change"):
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
    return render_template(
        "revenue/rules.html",
        rules=services.rules(),
        regions=list(db.session.scalars(select(Region).order_by(Region.id))),
        project_types=PROJECT_TYPES,
        error=error,
        form=request.form,
    ), (400 if error else 200)
