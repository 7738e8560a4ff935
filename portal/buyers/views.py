"""Sign-in, sign-out and the account page."""

from urllib.parse import urlsplit

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_user, logout_user

from portal.access import home_page, may, page
from portal.buyers import services
from portal.buyers.forms import LoginForm, RegisterForm, ResetForm, ResetRequestForm
from portal.core.confirm import ask, confirmed
from portal.core.errors import ServiceError
from portal.core.guard import public
from portal.core.i18n import datetime_text
from portal.extensions import db, login_manager

bp = Blueprint("buyers", __name__, template_folder="templates")

login_manager.login_view = "buyers.login"
login_manager.session_protection = "strong"


@login_manager.user_loader
def load_user(user_id):
    # A suspended user, or a user of a suspended or barred organisation, loses the session at once.
    return services.user_for_session(user_id)


@login_manager.unauthorized_handler
def unauthorized():
    flash(_("Please sign in to see this page."), "error")
    return redirect(url_for("buyers.login", next=request.full_path))


def _safe_next(target: str | None, user) -> str:
    """A path on this site to return to after signing in, or else the user's own start page
    (``access.home_page``: the buyer's account, the sales team's contracts, …).

    Browsers ignore tabs and newlines in URLs and read a backslash as a slash, so "/\t/evil" or
    "/\\evil" would leave the site: any such character, and anything with a scheme or a host,
    sends the user to the start page instead."""
    if (
        target
        and target.startswith("/")
        and len(target) <= 2000
        and all(c.isprintable() and not c.isspace() and c != "\\" for c in target)
        and not urlsplit(target).netloc
        and not target.startswith("//")
    ):
        return target
    return url_for(home_page(user))


@bp.route("/login", methods=["GET", "POST"])
@public
def login():
    form = LoginForm()
    if form.validate_on_submit():
        try:
            user = services.sign_in(form.email.data, form.password.data, request.remote_addr or "")
        except services.SignInError as exc:
            db.session.commit()  # the failure is recorded even though the request fails
            flash(exc.message, "error")
            return render_template("buyers/login.html", form=form), exc.status
        login_user(user, remember=form.remember.data)
        return redirect(_safe_next(request.args.get("next"), user))
    return render_template("buyers/login.html", form=form), 400 if form.errors else 200


@bp.post("/logout")
@public
def logout():
    logout_user()
    flash(_("You have signed out."), "info")
    return redirect(url_for("catalog.index"))


@bp.route("/signup", methods=["GET", "POST"])
@public
def register():
    form = RegisterForm()
    if form.validate_on_submit():
        try:
            services.register(
                name_zh=form.name_zh.data,
                name_en=form.name_en.data or "",
                uscc=form.uscc.data,
                sector=form.sector.data,
                contact_name=form.contact_name.data,
                contact_phone=form.contact_phone.data,
                email=form.email.data,
                password=form.password.data,
                address=request.remote_addr or "",
            )
        except services.OrganisationError as exc:
            field = REGISTER_FIELDS.get(exc.code)
            if field is not None:
                getattr(form, field).errors.append(exc.message)
            else:
                flash(exc.message, "error")
            return render_template("buyers/register.html", form=form), 400
        except ServiceError as exc:
            flash(exc.message, "error")
            return render_template("buyers/register.html", form=form), exc.status
        # The same answer whether or not the address or the code is known here (see register).
        flash(
            _("Thank you. We have sent you an e-mail about your registration: please check your inbox."),
            "info",
        )
        return redirect(url_for("buyers.login"))
    return render_template("buyers/register.html", form=form), 400 if form.errors else 200


#: Which form field a registration refusal belongs to.
REGISTER_FIELDS = {
    "invalid_uscc": "uscc",
    "invalid_name": "name_zh",
    "invalid_sector": "sector",
    "invalid_email": "email",
    "weak_password": "password",
    "invalid_contact": "contact_name",
}


@bp.get("/confirm/<token>")
@public
def confirm(token):
    try:
        services.confirm_email(token)
    except services.OrganisationError as exc:
        flash(exc.message, "error")
        return render_template("buyers/message.html"), 400
    flash(_("Your e-mail address is confirmed. You can sign in now."), "info")
    return redirect(url_for("buyers.login"))


@bp.route("/reset", methods=["GET", "POST"])
@public
def request_reset():
    form = ResetRequestForm()
    if form.validate_on_submit():
        try:
            services.request_password_reset(form.email.data, request.remote_addr or "")
        except services.SignInError as exc:
            flash(exc.message, "error")
            return render_template("buyers/reset_request.html", form=form), exc.status
        # The same answer whether or not the address has an account.
        flash(_("If that address has an account, we have sent it a link to reset the password."), "info")
        return redirect(url_for("buyers.login"))
    return render_template("buyers/reset_request.html", form=form), 400 if form.errors else 200


@bp.route("/reset/<token>", methods=["GET", "POST"])
@public
def reset_password(token):
    form = ResetForm()
    if form.validate_on_submit():
        try:
            services.reset_password(token, form.password.data)
        except services.OrganisationError as exc:
            if exc.code == "weak_password":
                form.password.errors.append(exc.message)
            else:
                flash(exc.message, "error")
            return render_template("buyers/reset.html", form=form), 400
        flash(_("Your password has been changed. You can sign in now."), "info")
        return redirect(url_for("buyers.login"))
    return render_template("buyers/reset.html", form=form), 400 if form.errors else 200


@bp.get("/notices")
@public
def notices():
    """Public notice of the measures against participants (suspended, restricted or barred), as
    the city's plan requires, with the lifted and replaced ones as history."""
    return render_template(
        "buyers/notices.html", in_force=services.measures_in_force(), ended=services.ended_measures()
    )


#: How many of the latest orders and contracts the buyer's account page shows (each section links
#: to the whole list).
ACCOUNT_LATEST = 5


@bp.get("/account")
@page("account.read")
def account():
    """A buyer's holdings, latest orders and contracts (with invoices to pay); for staff, who they
    are and where their work is."""
    sections = {}
    if may(current_user, "holdings.read_own"):
        from portal.contracts import services as contracts
        from portal.contracts.models import CONTRACT_STATUS_LABELS, InvoiceStatus
        from portal.offsets import services as orders

        organisation = current_user.organisation
        sections["blocks"] = services.holding_blocks(organisation)
        if may(current_user, "orders.create"):
            sections["orders"] = orders.orders_of(organisation, limit=ACCOUNT_LATEST + 1)
        if may(current_user, "contracts.read_own"):
            sections["contracts"] = contracts.contracts_of(organisation)
            sections["invoices"] = [
                i
                for i in contracts.invoices_of(organisation=organisation)
                if i.status == InvoiceStatus.OPEN and may(current_user, "view", i)
            ]
            sections["contract_statuses"] = CONTRACT_STATUS_LABELS
            sections["today"] = contracts.beijing_today()
    return render_template(
        "buyers/account.html", latest=ACCOUNT_LATEST, home=home_page(current_user), **sections
    )


@bp.get("/account/keys")
@page("apikeys.manage")
def api_keys():
    return render_template("buyers/keys.html", keys=services.keys_of(current_user), new_key=None)


@bp.post("/account/keys")
@page("apikeys.manage")
def create_api_key():
    label = (request.form.get("label") or "").strip()[:120]
    try:
        if current_user.organisation is not None:
            _key, plaintext = services.create_api_key(
                organisation=current_user.organisation, label=label, actor=f"user:{current_user.id}"
            )
        else:
            _key, plaintext = services.create_api_key(
                user=current_user, label=label, actor=f"user:{current_user.id}"
            )
    except services.OrganisationError as exc:
        flash(exc.message, "error")
        return redirect(url_for("buyers.api_keys")), 303
    # Shown in this response only: never stored, never put in the session or a redirect.
    response = render_template("buyers/keys.html", keys=services.keys_of(current_user), new_key=plaintext)
    return response, 201, {"Cache-Control": "no-store"}


@bp.post("/account/keys/<prefix>/revoke")
@page("apikeys.manage")
def revoke_api_key(prefix):
    keys = {k.prefix: k for k in services.keys_of(current_user)}
    if prefix not in keys:
        abort(404)  # not this user's or organisation's key: as if it did not exist
    key = keys[prefix]
    if key.revoked_at is None and not confirmed():
        return ask(
            title=_("Revoke the API key %(prefix)s?", prefix=prefix),
            consequences=[
                _("Programs that use this key are refused from now on."),
                _("A revoked key cannot be made to work again: create a new key if you need one."),
            ],
            facts=[
                (_("Key"), f"cfk_{prefix}_…"),
                (_("Label"), key.label or "—"),
                (
                    _("Last used"),
                    datetime_text(key.last_used_at) if key.last_used_at else _("Never"),
                ),
            ],
            button=_("Revoke the key"),
            back=url_for("buyers.api_keys"),
        )
    services.revoke_api_key(prefix, actor=f"user:{current_user.id}")
    flash(_("The key %(prefix)s is revoked.", prefix=prefix), "info")
    return redirect(url_for("buyers.api_keys")), 303
