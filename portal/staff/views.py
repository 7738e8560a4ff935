"""Back-office pages for operators, sales staff and auditors."""

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import func, select
from wtforms.fields.choices import SelectChoice

from portal.access import may, page
from portal.audit.models import AuditEvent
from portal.buyers import services as buyers
from portal.buyers.models import MEASURES, Organisation, OrgStatus, User, org_status_label
from portal.catalog import services as catalog
from portal.catalog.models import Project, Region
from portal.core import mail
from portal.core.confirm import ask, confirmed
from portal.core.i18n import colon, iso_beijing, localized
from portal.core.limits import body_limit
from portal.core.spreadsheet import csv_response
from portal.extensions import db
from portal.ledger.models import ENTRY_KIND_LABELS, Account, Batch, LedgerEntry
from portal.staff.dashboard import fit_label, text_width
from portal.staff.forms import IssuanceForm, ListingForm, ProjectForm
from portal.staff.readable import Reader

bp = Blueprint("staff", __name__, url_prefix="/staff", template_folder="templates")
bp.add_app_template_global(fit_label)
bp.add_app_template_global(text_width)

PER_PAGE = 50


def _page() -> int:
    value = request.args.get("page", "1")
    return int(value) if value.isascii() and value.isdigit() and 0 < int(value) <= 100_000 else 1


#: How many of the latest journal entries and audit events the back office's front page shows.
LATEST = 10


@bp.get("/")
@page("staff.read")
def index():
    """The back office's pages; for those who read the ledger journal and the audit log (the
    auditor starts here), the latest entries of each."""
    entries = events = None
    if may(current_user, "journal.read"):
        entries = db.session.execute(
            select(LedgerEntry, Batch.code)
            .join(Batch, Batch.id == LedgerEntry.batch_id)
            .order_by(LedgerEntry.id.desc())
            .limit(LATEST)
        ).all()
    if may(current_user, "audit.read"):
        events = list(db.session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(LATEST)))
    accounts = _accounts(entries or [])
    return render_template(
        "staff/index.html",
        entries=entries,
        accounts=accounts,
        events=events,
        journal_read=Reader.for_entries(entries, accounts) if entries else None,
        audit_read=Reader.for_events(events) if events else None,
    )


@bp.get("/organisations")
@page("organisations.read")
def organisations():
    status = request.args.get("status") or None
    query = select(Organisation).order_by(Organisation.created_at.desc())
    if status in set(OrgStatus):
        query = query.where(Organisation.status == status)
    return render_template(
        "staff/organisations.html",
        organisations=list(db.session.scalars(query.limit(500))),
        status=status,
        statuses=list(OrgStatus),
    )


@bp.post("/organisations/<uscc>/status")
@page("organisations.change_status")
def change_status(uscc):
    def limit(name):
        value = (request.form.get(name) or "").strip()
        if not value:
            return None
        return int(value) if value.isascii() and value.isdigit() and len(value) <= 10 else -1

    status = request.form.get("status", "")
    back = url_for("staff.organisations", status=request.args.get("status") or None)
    try:
        org = buyers.find_by_uscc(uscc)
        restricting = status == OrgStatus.RESTRICTED  # the limit fields count only then
        terms = {
            "reason": request.form.get("reason", ""),
            "order_limit_t": limit("order_limit_t") if restricting else None,
            "year_limit_t": limit("year_limit_t") if restricting else None,
        }
        reason = buyers.check_status_change(org, status, **terms)
        if status in MEASURES and not confirmed():
            return _confirm_measure(org, status, reason, terms, back)
        buyers.change_status(org, status, actor=f"user:{current_user.id}", **terms)
    except buyers.OrganisationError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return redirect(back), 303
    flash(
        _(
            "Status of %(name)s changed to %(status)s.",
            name=localized(org, "name"),
            status=org_status_label(status),
        ),
        "info",
    )
    return redirect(back), 303


def _confirm_measure(org, status, reason, terms, back):
    """What suspending, restricting or barring ``org`` does, before it is done."""
    name = localized(org, "name")
    consequences = {
        OrgStatus.SUSPENDED: [
            _("Its users are signed out at once and cannot sign in; its API keys stop working."),
            _("It cannot buy, retire or receive credits until it is reinstated."),
        ],
        OrgStatus.RESTRICTED: [
            _("Its orders must stay within the limits below; larger orders are refused."),
        ],
        OrgStatus.BARRED: [
            _("Its users are signed out at once and cannot sign in; its API keys stop working."),
            _("It cannot buy, retire or receive credits until it is reinstated."),
        ],
    }[status]
    consequences.append(
        _(
            "The measure is announced publicly on the Notices page with the reason and today's date; "
            "when it is lifted it stays listed there as history."
        )
    )
    facts = [
        (_("Organisation"), f"{name} ({org.uscc})"),
        (_("Status now"), org_status_label(org.status)),
        (_("New status"), org_status_label(status)),
        (_("Reason (published)"), reason),
    ]
    if status == OrgStatus.RESTRICTED:
        facts.append(
            (_("Limit per order"), _("%(n)s t", n=terms["order_limit_t"]) if terms["order_limit_t"] else "—")
        )
        facts.append(
            (_("Limit per year"), _("%(n)s t", n=terms["year_limit_t"]) if terms["year_limit_t"] else "—")
        )
    titles = {
        OrgStatus.SUSPENDED: _("Suspend %(name)s?", name=name),
        OrgStatus.RESTRICTED: _("Restrict %(name)s?", name=name),
        OrgStatus.BARRED: _("Bar %(name)s?", name=name),
    }
    buttons = {
        OrgStatus.SUSPENDED: _("Suspend the organisation"),
        OrgStatus.RESTRICTED: _("Restrict the organisation"),
        OrgStatus.BARRED: _("Bar the organisation"),
    }
    return ask(
        title=titles[status],
        consequences=consequences,
        facts=facts,
        button=buttons[status],
        back=back,
        irreversible=False,
    )


def _journal_query():
    query = select(LedgerEntry, Batch.code).join(Batch, Batch.id == LedgerEntry.batch_id)
    batch = (request.args.get("batch") or "").strip()
    kind = request.args.get("kind") or ""
    reference = (request.args.get("reference") or "").strip()
    if batch:
        query = query.where(Batch.code == batch[:80])
    if kind in ("issue", "transfer", "retire", "cancel"):
        query = query.where(LedgerEntry.kind == kind)
    if reference:
        query = query.where(LedgerEntry.reference == reference[:120])
    return query.order_by(LedgerEntry.id.desc())


def _accounts(entries) -> dict[int, Account]:
    ids = {e.from_account_id for e, _ in entries} | {e.to_account_id for e, _ in entries}
    return {a.id: a for a in db.session.scalars(select(Account).where(Account.id.in_(ids - {None})))}


@bp.get("/journal")
@page("journal.read")
def journal():
    page = _page()
    entries = db.session.execute(_journal_query().limit(PER_PAGE).offset((page - 1) * PER_PAGE)).all()
    accounts = _accounts(entries)
    return render_template(
        "staff/journal.html",
        entries=entries,
        accounts=accounts,
        read=Reader.for_entries(entries, accounts),
        page=page,
        per_page=PER_PAGE,
    )


@bp.get("/journal.csv")
@page("journal.read")
def journal_csv():
    """The codes as stored, then the same in words (in the page's language)."""
    entries = db.session.execute(_journal_query().limit(100_000)).all()
    accounts = _accounts(entries)
    read = Reader.for_entries(entries, accounts)
    rows = [
        [
            "id",
            "time_utc+08:00",
            "movement",
            "kind",
            "batch",
            "serial_start",
            "serial_end",
            "quantity",
            "from",
            "to",
            "reference",
            "actor",
            "kind_name",
            "from_name",
            "to_name",
            "reference_name",
            "actor_name",
        ]
    ]
    for e, code in entries:
        source, destination = accounts.get(e.from_account_id), accounts[e.to_account_id]
        rows.append(
            [
                e.id,
                iso_beijing(e.created_at),
                e.movement_id,
                e.kind,
                code,
                e.serial_start,
                e.serial_end,
                e.quantity,
                str(source) if source else "",
                str(destination),
                e.reference,
                e.actor,
                str(ENTRY_KIND_LABELS.get(e.kind, e.kind)),
                read.account(source).label if source else "",
                read.account(destination).label,
                read.reference(e.reference).label,
                read.actor(e.actor).label,
            ]
        )
    return _csv(rows, "ledger-journal.csv")


def _audit_query():
    query = select(AuditEvent).order_by(AuditEvent.id.desc())
    action = (request.args.get("action") or "").strip()
    actor = (request.args.get("actor") or "").strip()
    if action:
        query = query.where(AuditEvent.action == action[:64])
    if actor:
        query = query.where(AuditEvent.actor == actor[:120])
    return query


@bp.get("/audit")
@page("audit.read")
def audit():
    page = _page()
    events = list(db.session.scalars(_audit_query().limit(PER_PAGE).offset((page - 1) * PER_PAGE)))
    actions = list(db.session.scalars(select(AuditEvent.action).distinct().order_by(AuditEvent.action)))
    actors = list(
        db.session.scalars(select(AuditEvent.actor).distinct().order_by(AuditEvent.actor).limit(1000))
    )
    total = db.session.scalar(select(func.count()).select_from(AuditEvent))
    names = Reader(actors=actors)
    return render_template(
        "staff/audit.html",
        events=events,
        read=Reader.for_events(events),
        actions=actions,
        actors=sorted((names.actor(a) for a in actors), key=lambda t: t.label),
        page=page,
        per_page=PER_PAGE,
        total=total,
    )


def _changes_text(changes) -> str:
    """An event's changes on one line each, for the CSV export."""
    lines = []
    for c in changes:
        if c.before is not None and c.after is not None:
            lines.append(f"{c.field}{colon()}{c.before} → {c.after}")
        else:
            lines.append(f"{c.field}{colon()}{c.after if c.after is not None else c.before}")
    return "\n".join(lines)


@bp.get("/audit.csv")
@page("audit.read")
def audit_csv():
    """The event as stored (JSON before and after), then the same in words."""
    events = list(db.session.scalars(_audit_query().limit(100_000)))
    read = Reader.for_events(events)
    rows = [
        [
            "id",
            "time_utc+08:00",
            "actor",
            "action",
            "subject_type",
            "subject_id",
            "before",
            "after",
            "actor_name",
            "action_name",
            "subject_name",
            "changes",
        ]
    ]
    rows += [
        [
            e.id,
            iso_beijing(e.at),
            e.actor,
            e.action,
            e.subject_type,
            e.subject_id,
            e.before or "",
            e.after or "",
            read.actor(e.actor).label,
            read.action(e.action).label,
            read.subject(e.subject_type, e.subject_id).label,
            _changes_text(read.changes(e)),
        ]
        for e in events
    ]
    return _csv(rows, "audit-log.csv")


def _csv(rows, filename) -> Response:
    return csv_response(rows, filename)


# --- projects, issuances, prices -----------------------------------------------------------------


def _project_choices(form):
    from portal.catalog.models import PROJECT_STATUS_LABELS, PROJECT_TYPE_LABELS

    form.type.choices = [SelectChoice(k, str(v)) for k, v in PROJECT_TYPE_LABELS.items()]
    form.status.choices = [SelectChoice(k, str(v)) for k, v in PROJECT_STATUS_LABELS.items()]
    form.region_code.choices = [
        SelectChoice(r.code, localized(r, "name"))
        for r in db.session.scalars(select(Region).order_by(Region.id))
    ]


@bp.get("/projects")
@page("projects.read")
def projects():
    rows = db.session.execute(
        select(Project, func.count(Batch.id))
        .outerjoin(Batch, Batch.project_id == Project.id)
        .group_by(Project.id)
        .order_by(Project.code)
        .limit(500)
    ).all()
    return render_template("staff/projects.html", rows=rows)


@bp.route("/projects/new", methods=["GET", "POST"])
@bp.route("/projects/<code>/edit", methods=["GET", "POST"])
@page("projects.change")
@body_limit(1024 * 1024)  # a boundary of up to 200,000 characters, url-encoded (≤ 3 bytes each)
def edit_project(code=None):
    project = None
    if code is not None:
        project = _by_code_or_404(Project, code)
    form = ProjectForm(obj=project)
    if project is not None and request.method == "GET":
        form.region_code.data = project.region.code
    _project_choices(form)
    if form.validate_on_submit():
        values = {name: getattr(form, name).data for name in catalog.PROJECT_FIELDS}
        if project is not None:
            values["code"] = project.code
        try:
            saved = catalog.save_project(values, project=project, actor=f"user:{current_user.id}")
        except catalog.CatalogError as exc:
            flash(exc.message, "error")
            return render_template("staff/project_form.html", form=form, project=project), 400
        flash(_("Project %(code)s saved.", code=saved.code), "info")
        return redirect(url_for("staff.project", code=saved.code)), 303
    return render_template("staff/project_form.html", form=form, project=project), 400 if form.errors else 200


@bp.get("/projects/<code>")
@page("projects.read")
def project(code):
    page = catalog.find_project(code)
    if page is None:
        abort(404)
    return render_template("staff/project.html", page=page, project=page.project, issuance=IssuanceForm())


def _by_code_or_404(model, code: str):
    found = db.session.scalar(select(model).filter_by(code=code))
    if found is None:
        abort(404)
    return found


def _flash_errors(form) -> None:
    """A form posted from a page it does not render itself: its errors go back as messages."""
    for field, errors in form.errors.items():
        flash(f"{getattr(form, field).label.text}{colon()}{errors[0]}", "error")


@bp.post("/projects/<code>/issuances")
@page("projects.change")
def record_issuance(code):
    project = _by_code_or_404(Project, code)
    form = IssuanceForm()
    if not form.validate_on_submit():
        _flash_errors(form)
        return redirect(url_for("staff.project", code=code)), 303
    try:
        batch, created = catalog.submit_issuance(
            project,
            vintage_start=form.vintage_start.data,
            vintage_end=form.vintage_end.data,
            quantity=form.quantity.data,
            buffer_quantity=form.buffer_quantity.data or 0,
            issued_on=form.issued_on.data,
            registry_reference=form.registry_reference.data,
            registry_serial_start=form.registry_serial_start.data or "",
            registry_serial_end=form.registry_serial_end.data or "",
            price_per_t=form.price_per_t.data,
            actor=f"user:{current_user.id}",
        )
    except catalog.CatalogError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return redirect(url_for("staff.project", code=code)), 303
    if created:
        flash(
            _(
                "Batch %(code)s recorded: %(quantity)s t in the ledger.",
                code=batch.code,
                quantity=batch.quantity,
            ),
            "info",
        )
    else:
        flash(
            _("Batch %(code)s was already recorded exactly as submitted: nothing changed.", code=batch.code),
            "info",
        )
    return redirect(url_for("staff.project", code=code)), 303


@bp.post("/batches/<code>/listing")
@page("projects.change")
def set_listing(code):
    batch = _by_code_or_404(Batch, code)
    form = ListingForm()
    if not form.validate_on_submit():
        _flash_errors(form)
    else:
        try:
            catalog.set_listing(
                batch,
                price_per_t=form.price_per_t.data,
                active=form.is_active.data,
                actor=f"user:{current_user.id}",
            )
            flash(_("The listing of %(code)s is saved.", code=code), "info")
        except catalog.CatalogError as exc:
            flash(exc.message, "error")
    return redirect(url_for("staff.project", code=batch.project.code)), 303


@bp.get("/users")
@page("users.read")
def users():
    rows = list(db.session.scalars(select(User).order_by(User.created_at.desc()).limit(1000)))
    return render_template("staff/users.html", users=rows)


@bp.post("/users/<int:user_id>/active")
@page("users.change")
def set_user_active(user_id):
    user = db.session.get(User, user_id)
    if user is None:
        abort(404)
    if user.id == current_user.id:
        flash(_("You cannot deactivate yourself."), "error")
        return redirect(url_for("staff.users")), 303
    active = request.form.get("active") == "1"
    buyers.set_user_active(user, active, actor=f"user:{current_user.id}")
    flash(
        _("%(email)s is now active.", email=user.email)
        if active
        else _("%(email)s is now deactivated.", email=user.email),
        "info",
    )
    return redirect(url_for("staff.users")), 303


# --- checkout orders and certificates ---------------------------------------------------------


@bp.get("/orders")
@page("orders.read_all")
def orders():
    from portal.offsets.models import Order, OrderStatus

    status = request.args.get("status", "")
    query = select(Order).order_by(Order.id.desc())
    if status in {s.value for s in OrderStatus}:
        query = query.where(Order.status == status)
    else:
        status = ""
    page = _page()
    found = db.session.scalars(query.limit(PER_PAGE).offset((page - 1) * PER_PAGE)).all()
    return render_template(
        "staff/orders.html",
        orders=found,
        status=status,
        statuses=list(OrderStatus),
        page=page,
        per_page=PER_PAGE,
    )


@bp.get("/dashboard")
@page("dashboard.read")
def dashboard():
    from portal.contracts import services as contracts
    from portal.pipeline.models import STAGES
    from portal.pipeline.services import figures as pipeline_figures
    from portal.staff import dashboard as figures
    from portal.timeutil import beijing_today

    today = beijing_today()
    return render_template(
        "staff/dashboard.html",
        queues=figures.queues(today),
        inventory=figures.inventory(),
        over_time=figures.over_time(today),
        buyers=figures.top_buyers(),
        coverage=contracts.plan(),
        pipeline=pipeline_figures(),
        stages=STAGES,
    )


@bp.get("/outbox")
@page("mail.outbox_read")
def outbox():
    """Sent mail, for operators, in the demo only (see ``mail.outbox_page_enabled``)."""
    if not mail.outbox_page_enabled():
        abort(404)
    return render_template("staff/outbox.html", messages=mail.recent(), parts=mail.body_parts)
