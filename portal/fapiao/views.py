"""Fapiao pages: a buyer asks for a fapiao for a paid order or contract invoice and downloads
it; staff list the requests by status and issue (number, date, e-fapiao PDF), reject or void
them. Another organisation's order, invoice, request or PDF is a 404, as for orders."""

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from portal.access import may, owns, page
from portal.contracts import services as contracts
from portal.core.limits import body_limit
from portal.extensions import db
from portal.fapiao import services
from portal.fapiao.models import FAPIAO_KIND_LABELS, FAPIAO_STATUS_LABELS, FapiaoKind
from portal.offsets import services as orders
from portal.timeutil import beijing_today

bp = Blueprint("fapiao", __name__, template_folder="templates")

_DETAILS = ("title", "taxpayer_id", "address", "phone", "bank", "bank_account")


def _actor() -> str:
    return f"user:{current_user.id}"


def _own_subject(kind: str, ref: str):
    """The signed-in buyer's own paid-or-not order or signed contract's invoice; 404 otherwise
    (another organisation's, or none)."""
    subject = orders.find(ref) if kind == "order" else contracts.find_invoice(ref)
    if subject is None or not owns(current_user, subject):
        abort(404)
    return subject


def _subject_url(subject) -> str:
    if hasattr(subject, "public_id"):
        return url_for("offsets.order", public_id=subject.public_id)
    return url_for("contracts.buyer_invoice", number=subject.number)


def _form_page(kind, subject, error=None, status=200):
    org = current_user.organisation
    values = {
        "kind": FapiaoKind.NORMAL,
        "title": org.name_zh if org else "",
        "taxpayer_id": org.uscc if org else "",
    }
    if request.method == "POST":
        values = {name: request.form.get(name, "") for name in ("kind", *_DETAILS)}
    return (
        render_template(
            "fapiao/request.html",
            subject=subject,
            subject_kind=kind,
            subject_url=_subject_url(subject),
            values=values,
            kinds=FAPIAO_KIND_LABELS,
            error=error,
            may_request=services.may_request(subject),
            history=services.requests_for(subject),
        ),
        status,
    )


@bp.route("/account/orders/<ref>/fapiao", methods=["GET", "POST"], defaults={"kind": "order"})
@bp.route("/account/invoices/<ref>/fapiao", methods=["GET", "POST"], defaults={"kind": "invoice"})
@page("fapiao.request")
def ask(kind, ref):
    subject = _own_subject(kind, ref)
    if request.method == "GET":
        return _form_page(kind, subject)
    try:
        found = services.request_fapiao(
            subject,
            current_user.organisation,
            request.form.get("kind"),
            {name: request.form.get(name) for name in _DETAILS},
            actor=_actor(),
        )
    except services.FapiaoError as exc:
        db.session.rollback()
        return _form_page(kind, subject, exc, exc.status)
    db.session.commit()
    flash(_("Your fapiao request was sent. You can download the fapiao here once it is issued."), "success")
    return redirect(url_for("fapiao.show", public_id=found.public_id), 303)


@bp.get("/account/fapiao")
@page("fapiao.read_own")
def mine():
    return render_template("fapiao/mine.html", requests=services.organisation_list(current_user.organisation))


def _visible(public_id):
    found = services.find(public_id)
    if found is None or not may(current_user, "view", found):
        abort(404)
    return found


def _show_page(found, error=None, status=200):
    return render_template("fapiao/show.html", req=found, error=error, today=beijing_today()), status


@bp.get("/fapiao/<public_id>")
@page("fapiao.read_own", "fapiao.read_all")
def show(public_id):
    return _show_page(_visible(public_id))


@bp.get("/fapiao/<public_id>/fapiao.pdf")
@page("fapiao.read_own", "fapiao.read_all")
def pdf(public_id):
    found = _visible(public_id)
    if found.pdf_sha256 is None or (found.status != "issued" and not may(current_user, "fapiao.read_all")):
        abort(404)
    return Response(
        found.pdf_content,
        mimetype="application/pdf",
        headers={
            "Content-Disposition": f"attachment; filename=fapiao-{found.fapiao_number}.pdf",
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, no-store",
        },
    )


@bp.get("/staff/fapiao")
@page("fapiao.read_all")
def staff_list():
    status = request.args.get("status", "requested")
    if status not in FAPIAO_STATUS_LABELS and status != "all":
        status = "requested"
    return render_template(
        "fapiao/staff_list.html",
        requests=services.staff_list(None if status == "all" else status),
        status=status,
        statuses=FAPIAO_STATUS_LABELS,
    )


def _staff_action(public_id, act):
    found = services.find(public_id)
    if found is None:
        abort(404)
    try:
        act(found)
    except services.FapiaoError as exc:
        db.session.rollback()
        return _show_page(found, exc, exc.status)
    db.session.commit()
    return redirect(url_for("fapiao.show", public_id=public_id), 303)


@bp.post("/staff/fapiao/<public_id>/issue")
@body_limit(services.MAX_PDF_BYTES + 256 * 1024)
@page("fapiao.issue")
def issue(public_id):
    upload = request.files.get("pdf")
    data = upload.read(services.MAX_PDF_BYTES + 1) if upload else b""
    filename = upload.filename if upload else ""
    return _staff_action(
        public_id,
        lambda found: services.issue(
            found,
            request.form.get("fapiao_number"),
            request.form.get("issued_on"),
            data,
            filename,
            actor=_actor(),
        ),
    )


@bp.post("/staff/fapiao/<public_id>/reject")
@page("fapiao.issue")
def reject(public_id):
    return _staff_action(
        public_id, lambda found: services.reject(found, request.form.get("reason"), actor=_actor())
    )


@bp.post("/staff/fapiao/<public_id>/void")
@page("fapiao.issue")
def void(public_id):
    return _staff_action(
        public_id, lambda found: services.void(found, request.form.get("reason"), actor=_actor())
    )
