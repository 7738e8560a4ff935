"""The alliance's pages: public (members and each member's profile), the buyer's own (apply,
leave) and the back office's (applications, decisions, member terms)."""

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user

from portal.access import page
from portal.alliance import offers, public, services
from portal.alliance.forms import ApplyForm, ReasonForm, TermsForm
from portal.alliance.models import Membership, MembershipStatus
from portal.core.guard import public as public_page
from portal.core.i18n import localized
from portal.extensions import db

bp = Blueprint("alliance", __name__, template_folder="templates")
# The catalog's cached pages are kept per kind of viewer (member prices, first call).
bp.record_once(lambda state: offers.register(state.app))


def _actor() -> str:
    return f"user:{current_user.id}"


# --- public ---------------------------------------------------------------------------------------


@bp.get("/alliance")
@public_page
def index():
    current, former, years = public.members()
    return render_template(
        "alliance/index.html", current=current, former=former, years=years[:5], terms=services.terms()
    )


@bp.get("/alliance/members/<int:organisation_id>")
@public_page
def member(organisation_id):
    entry = public.member(organisation_id) if organisation_id < 2**31 else None
    if entry is None:
        abort(404)
    return render_template("alliance/member.html", entry=entry)


# --- the buyer's own ------------------------------------------------------------------------------


def _account_page(form=None, reason_form=None, error=None, status=200):
    organisation = current_user.organisation
    if form is None:
        form = ApplyForm()
        form.sector.data = organisation.sector
    return (
        render_template(
            "alliance/account.html",
            organisation=organisation,
            open_row=services.current(organisation),
            history=services.history(organisation),
            form=form,
            reason_form=reason_form or ReasonForm(),
            error=error,
        ),
        status,
    )


@bp.get("/account/alliance")
@page("alliance.apply")
def account():
    return _account_page()


@bp.post("/account/alliance/apply")
@page("alliance.apply")
def apply():
    form = ApplyForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        services.apply(
            current_user.organisation,
            sector=form.sector.data,
            emissions_band=form.emissions_band.data,
            pledge=form.pledge.data,
            description_zh=form.description_zh.data,
            description_en=form.description_en.data,
            website=form.website.data,
            actor=_actor(),
        )
    except services.AllianceError as exc:
        db.session.rollback()
        return _account_page(form=form, error=exc, status=exc.status)
    db.session.commit()
    flash(_("Your application to join the alliance was sent. The operator will decide on it."), "success")
    return redirect(url_for("alliance.account")), 303


@bp.post("/account/alliance/leave")
@page("alliance.apply")
def leave():
    form = ReasonForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        services.leave(current_user.organisation, actor=_actor(), reason=form.reason.data)
    except services.AllianceError as exc:
        db.session.rollback()
        return _account_page(reason_form=form, error=exc, status=exc.status)
    db.session.commit()
    flash(_("Your organisation has left the alliance. It is listed as a former member."), "success")
    return redirect(url_for("alliance.account")), 303


# --- the back office ------------------------------------------------------------------------------


def _staff_page(terms_form=None, error=None, status=200):
    from sqlalchemy import select

    rows = list(
        db.session.scalars(
            select(Membership)
            .order_by((Membership.status == MembershipStatus.PENDING).desc(), Membership.applied_at.desc())
            .limit(500)
        )
    )
    if terms_form is None:
        terms = services.terms()
        terms_form = TermsForm(
            discount_pct=str(terms.discount_pct), first_call_days=str(terms.first_call_days)
        )
    return (
        render_template(
            "alliance/staff.html",
            pending=[r for r in rows if r.status == MembershipStatus.PENDING],
            members=[r for r in rows if r.status == MembershipStatus.MEMBER],
            decided=[r for r in rows if r.status in (MembershipStatus.DECLINED, MembershipStatus.LEFT)],
            terms_form=terms_form,
            reason_form=ReasonForm(),
            error=error,
        ),
        status,
    )


@bp.get("/staff/alliance")
@page("alliance.read")
def staff():
    return _staff_page()


def _decision(membership_id, decide, done_message):
    form = ReasonForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        membership = services.find(membership_id)
        decide(membership, actor=_actor(), reason=form.reason.data)
    except services.AllianceError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return redirect(url_for("alliance.staff")), 303
    db.session.commit()
    flash(done_message(localized(membership.organisation, "name")), "success")
    return redirect(url_for("alliance.staff")), 303


@bp.post("/staff/alliance/<int:membership_id>/approve")
@page("alliance.decide")
def approve(membership_id):
    return _decision(
        membership_id,
        services.approve,
        lambda name: _("%(name)s is now a member of the alliance.", name=name),
    )


@bp.post("/staff/alliance/<int:membership_id>/decline")
@page("alliance.decide")
def decline(membership_id):
    return _decision(
        membership_id,
        services.decline,
        lambda name: _("The application of %(name)s was declined.", name=name),
    )


@bp.post("/staff/alliance/<int:membership_id>/remove")
@page("alliance.decide")
def remove(membership_id):
    def remove_member(membership, *, actor, reason):
        if membership.status != MembershipStatus.MEMBER:
            raise services.AllianceError(
                "not_member", _("This organisation is not a member of the alliance."), 409
            )
        services.leave(membership.organisation, actor=actor, reason=reason)

    return _decision(
        membership_id,
        remove_member,
        lambda name: _("%(name)s is no longer a member of the alliance.", name=name),
    )


@bp.post("/staff/alliance/terms")
@page("alliance.decide")
def terms():
    form = TermsForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        services.set_terms(form.discount_pct.data, form.first_call_days.data, actor=_actor())
    except services.AllianceError as exc:
        db.session.rollback()
        return _staff_page(terms_form=form, error=exc, status=exc.status)
    db.session.commit()
    flash(_("The alliance members' terms were saved."), "success")
    return redirect(url_for("alliance.staff")), 303
