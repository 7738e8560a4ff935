"""``/staff/registry/statements``: importing a registry account statement, the reconciliation
report, and resolving withheld serials (on the registry blueprint)."""

from flask import abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from portal.access import may, page
from portal.core.limits import body_limit
from portal.core.spreadsheet import csv_response
from portal.extensions import db
from portal.registry import reconcile
from portal.registry.forms import ResolveForm, StatementForm
from portal.registry.instructions import RegistryError
from portal.registry.models import REGISTRY_LABELS, RegistryStatement, Withholding, WithholdingStatus
from portal.registry.statements import MAX_BYTES
from portal.registry.views import bp


def _statement_form() -> StatementForm:
    form = StatementForm()
    form.registry.choices = [(code, str(label)) for code, label in REGISTRY_LABELS.items()]
    return form


def _resolve_form() -> ResolveForm:
    form = ResolveForm()
    form.outcome.choices = [
        (WithholdingStatus.RELEASED.value, _("The registry shows them: back to sale")),
        (WithholdingStatus.CANCELLED.value, _("The registry does not have them: cancel in the ledger")),
    ]
    return form


def _statements_page(form=None, status=200):
    return render_template(
        "registry/statements.html",
        form=form or _statement_form(),
        statements=list(
            db.session.scalars(select(RegistryStatement).order_by(RegistryStatement.id.desc()).limit(50))
        ),
        withholdings=reconcile.open_withholdings(),
        resolve_form=_resolve_form() if may(current_user, "registry.change") else None,
        max_mb=MAX_BYTES // (1024 * 1024),
    ), status


@bp.get("/statements")
@page("registry.read")
def statements():
    return _statements_page()


@bp.post("/statements")
@page("registry.change")
@body_limit(MAX_BYTES + 64 * 1024)  # the statement and the form around it
def import_statement():
    form = _statement_form()
    if not form.validate_on_submit():
        return _statements_page(form, 400)
    upload = form.file.data
    if upload is None or not getattr(upload, "filename", ""):
        form.file.errors = [_("Choose the statement file.")]
        return _statements_page(form, 400)
    data = upload.stream.read(MAX_BYTES + 1)
    try:
        report = reconcile.import_statement(
            data,
            registry=form.registry.data,
            account=form.account.data,
            filename=upload.filename,
            actor=f"user:{current_user.id}",
        )
    except RegistryError as exc:
        db.session.rollback()
        target = {"registry": form.registry, "account": form.account}.get(exc.field, form.file)
        target.errors = [*target.errors, exc.message]
        return _statements_page(form, exc.status)
    flash(
        _(
            "Statement imported: %(n)s differences found; %(withheld)s t withheld from sale.",
            n=len(report.differences),
            withheld=report.withheld,
        ),
        "success" if not report.differences else "error",
    )
    return redirect(url_for("registry.statement", statement_id=report.statement.id)), 303


def _statement_or_404(statement_id: int) -> RegistryStatement:
    found = db.session.get(RegistryStatement, statement_id) if 0 < statement_id < 2**31 else None
    if found is None:
        abort(404)
    return found


@bp.get("/statements/<int:statement_id>")
@page("registry.read")
def statement(statement_id):
    found = _statement_or_404(statement_id)
    report = reconcile.reconcile(found)
    return render_template("registry/report.html", report=report, kinds=reconcile.KINDS)


@bp.get("/statements/<int:statement_id>/report.csv")
@page("registry.read")
def report_csv(statement_id):
    report = reconcile.reconcile(_statement_or_404(statement_id))
    return csv_response(report_rows(report), f"registry-reconciliation-{statement_id}.csv")


def report_rows(report):
    yield [
        "difference",
        "batch_code",
        "series",
        "unit_first",
        "unit_last",
        "serial_start",
        "serial_end",
        "quantity",
        "where",
        "withheld",
    ]
    for d in report.differences:
        yield [
            d.kind,
            d.batch_code,
            d.series,
            d.unit_first,
            d.unit_last,
            d.serial_start or "",
            d.serial_end or "",
            d.quantity,
            d.detail,
            "yes" if d.withheld else "",
        ]


@bp.post("/withholdings/<int:withholding_id>")
@page("registry.change")
def resolve(withholding_id):
    found = db.session.get(Withholding, withholding_id) if 0 < withholding_id < 2**31 else None
    if found is None:
        abort(404)
    form = _resolve_form()
    if not form.validate_on_submit():
        for errors in form.errors.values():
            flash(errors[0], "error")
        return redirect(url_for("registry.statements")), 303
    try:
        reconcile.resolve(
            found, outcome=form.outcome.data, note=form.note.data, actor=f"user:{current_user.id}"
        )
    except RegistryError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return redirect(url_for("registry.statements")), 303
    flash(_("Withheld serials resolved."), "success")
    return redirect(url_for("registry.statements")), 303
