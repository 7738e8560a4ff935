"""``/staff/registry``: the queue of registry instructions, recording the registry's decisions,
and the exports for the registry's forms. Statements and reconciliation: ``views_statements``."""

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from portal.access import may, page
from portal.core.spreadsheet import csv_response, xlsx_response
from portal.extensions import db
from portal.registry import instructions, overdue
from portal.registry import queue as listing
from portal.registry.forms import ConfirmForm, RejectForm
from portal.registry.models import REGISTRY_LABELS, InstructionStatus, Registry

bp = Blueprint("registry", __name__, url_prefix="/staff/registry", template_folder="templates")


def _filters() -> tuple[str | None, str | None]:
    status = request.args.get("status", InstructionStatus.PENDING)
    registry = request.args.get("registry") or None
    return (
        status if status in set(InstructionStatus) else None,
        registry if registry in set(Registry) else None,
    )


@bp.get("/")
@page("registry.read")
def queue():
    status, registry = _filters()
    groups, more = listing.groups(status, registry)
    return render_template(
        "registry/queue.html",
        groups=groups,
        more=more,
        status=status or "",
        registry=registry or "",
        statuses=list(InstructionStatus),
        registries=REGISTRY_LABELS,
        pending=listing.pending_by_registry(),
        overdue_count=overdue.overdue_count(),
        is_overdue=overdue.is_overdue,
        registry_serials=instructions.registry_serials,
        days=overdue.working_days(),
    )


@bp.get("/export.csv")
@page("registry.read")
def export_csv():
    status, registry = _filters()
    return csv_response(
        listing.export_rows(status, registry), f"registry-instructions-{registry or 'all'}.csv"
    )


@bp.get("/export.xlsx")
@page("registry.read")
def export_xlsx():
    status, registry = _filters()
    return xlsx_response(
        listing.export_rows(status, registry),
        f"registry-instructions-{registry or 'all'}.xlsx",
        title=_("Registry instructions"),
    )


def _instruction_or_404(instruction_id: int):
    found = instructions.find(instruction_id)
    if found is None:
        abort(404)
    return found


def _instruction_page(instruction, confirm_form=None, reject_form=None, status=200):
    editable = instruction.status == InstructionStatus.PENDING and may(current_user, "registry.change")
    return render_template(
        "registry/instruction.html",
        instruction=instruction,
        serials=instructions.registry_serials(instruction),
        units=instructions.registry_units(instruction),
        confirm_form=(confirm_form or ConfirmForm()) if editable else None,
        reject_form=(reject_form or RejectForm()) if editable else None,
        overdue=overdue.is_overdue(instruction),
        confirmation_valid=instruction.confirmation is not None
        and instructions.confirmation_valid(instruction.confirmation),
    ), status


@bp.get("/instructions/<int:instruction_id>")
@page("registry.read")
def instruction(instruction_id):
    return _instruction_page(_instruction_or_404(instruction_id))


@bp.post("/instructions/<int:instruction_id>/confirmation")
@page("registry.change")
def confirm(instruction_id):
    found = _instruction_or_404(instruction_id)
    form = ConfirmForm()
    if not form.validate_on_submit():
        return _instruction_page(found, confirm_form=form, status=400)
    try:
        instructions.confirm(
            found,
            reference=form.reference.data,
            registry_date=form.date.data,
            serial_start=form.serial_start.data,
            serial_end=form.serial_end.data or "",
            actor=f"user:{current_user.id}",
        )
    except instructions.RegistryError as exc:
        db.session.rollback()
        field = {"serials": form.serial_start, "date": form.date, "reference": form.reference}.get(exc.field)
        if field is not None:
            field.errors = [*field.errors, exc.message]
        else:
            flash(exc.message, "error")
        return _instruction_page(_instruction_or_404(instruction_id), confirm_form=form, status=exc.status)
    flash(
        _("The registry's confirmation of instruction %(id)s is recorded and signed.", id=instruction_id),
        "success",
    )
    return redirect(url_for("registry.queue")), 303


@bp.post("/instructions/<int:instruction_id>/rejection")
@page("registry.change")
def reject(instruction_id):
    found = _instruction_or_404(instruction_id)
    form = RejectForm()
    if not form.validate_on_submit():
        return _instruction_page(found, reject_form=form, status=400)
    try:
        instructions.reject(found, reason=form.reason.data, actor=f"user:{current_user.id}")
    except instructions.RegistryError as exc:
        db.session.rollback()
        form.reason.errors = [*form.reason.errors, exc.message]
        return _instruction_page(_instruction_or_404(instruction_id), reject_form=form, status=exc.status)
    flash(_("The registry's rejection of instruction %(id)s is recorded.", id=instruction_id), "success")
    return redirect(url_for("registry.queue")), 303
