"""Certificate pages: verification (by number, by PDF), the register, retiring from the holding,
and revocation by operators."""

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user
from wtforms.fields.choices import SelectChoice

from portal.access import may, page
from portal.buyers import services as buyers
from portal.certificates import register as register_
from portal.certificates import renditions, services, verification
from portal.certificates import state as certificate_state
from portal.certificates.forms import DeclareForm, RetireForm, RevokeForm
from portal.core import validators
from portal.core.confirm import ask, confirmed
from portal.core.guard import public
from portal.core.i18n import current_language, locale_name
from portal.core.limits import before_body, body_limit
from portal.core.spreadsheet import csv_response
from portal.core.visitors import sees_shared_pages
from portal.extensions import db
from portal.registry import instructions as registry

bp = Blueprint("certificates", __name__, template_folder="templates")

#: The largest PDF the verification form reads.
MAX_UPLOAD = verification.MAX_UPLOAD


def _client() -> str:
    return request.remote_addr or "unknown"


def _not_found(number: str, status: int = 404):
    """The verification form again, saying the number was not found (or that the client tried
    too many)."""
    db.session.commit()  # the failed look-up is counted even though the answer is an error
    if status == 429:
        message = _("Too many look-ups of unknown numbers from your address. Please wait a few minutes.")
    else:
        message = _(
            "No certificate has the number %(number)s. Check it against the certificate.", number=number
        )
    return render_template("certificates/verify.html", number=number, message=message), status


@bp.get("/verify")
@public
def verify():
    number = (request.args.get("number") or "").strip()
    if not number:
        return render_template("certificates/verify.html", number="", message=None)
    return _show(number)


def _sandbox_slot():
    """Before the upload is read: a sandbox slot for it, or the form again saying to retry."""
    if verification.take_slot():
        return None
    message = verification.PdfError("busy").message
    page = render_template("certificates/verify.html", number="", upload_error=message)
    return page, 503, {"Retry-After": "2"}


@bp.teardown_app_request
def _release_sandbox_slot(exc):
    verification.release_slot()


@bp.post("/verify")
@public
@body_limit(MAX_UPLOAD + 64 * 1024)  # the PDF and the form around it
@before_body(_sandbox_slot)
def verify_pdf():
    """Check a certificate PDF someone was sent: the whole file's signature, its embedded data
    and the register's record (``verification``)."""
    if not services.upload_allowed(_client()):
        db.session.commit()
        message = _("Too many PDFs checked from your address. Please wait a few minutes.")
        return render_template("certificates/verify.html", number="", upload_error=message), 429
    db.session.commit()
    upload = request.files.get("pdf")
    if upload is None or not upload.filename:
        return render_template(
            "certificates/verify.html", number="", upload_error=_("Choose a PDF file.")
        ), 400
    try:
        data = upload.stream.read(MAX_UPLOAD + 1)
    finally:
        upload.close()
    try:
        check = verification.check_upload(data)
    except verification.PdfError as exc:
        status = 413 if exc.code == "too_large" else exc.status  # as the API and every other too large body
        return render_template("certificates/verify.html", number="", upload_error=exc.message), status
    status = 400 if check.result in ("unreadable", "not_a_certificate") else 200
    return render_template("certificates/checked.html", check=check), status


@bp.get("/certificates/<number>")
@public
def show(number):
    return _show(number)


def page_cache():
    """Drawn certificate pages and JSON per worker, as bytes, keyed by their ETag (which names
    the certificate's changeable state, the language and the release: ``state``)."""
    from portal.catalog.cache import LRU

    return current_app.extensions.setdefault(
        "certificate_cache", LRU(current_app.config.get("CERTIFICATE_CACHE_SIZE", 1024))
    )


def _drawn(state: certificate_state.CertificateState) -> dict:
    """What the page's certificate part (``_certificate.html``, the rest is the site's frame)
    is drawn from."""
    certificate = state.certificate
    return {
        "number": certificate.number,
        "check": state.check,
        "log_entries": state.log_entries,
        "registry": registry.certificate_registry(certificate.id, certificate.number, state.instructions),
    }


def _anonymous() -> bool:
    """No one is signed in and nothing of the visitor's own shows (``core.visitors``): the visitor
    a QR code brings. A
    request with no cookie at all is one without loading a session or a user (only the session
    and the remember-me cookies sign a visitor in)."""
    if not request.cookies:
        return True
    return sees_shared_pages()


def _show(number: str):
    """The certificate's page: one statement reads it with all that can change
    (``certificates.state``). Anonymous visitors (QR scans, verifiers) all see the same page in
    a language: it carries an ETag, is answered 304 when the client has it, and is kept drawn
    (``certificates.renditions``; a worker's cache for pages asked with a query)."""
    anonymous = _anonymous()
    language = locale_name()
    kind = renditions.kind_for("page", language) if anonymous else ""
    try:
        state = certificate_state.look_up(number, _client(), kind)
    except services.LookupRefused:
        return _not_found(number[:40], 429)
    if state is None:
        return _not_found(number[:40])
    certificate = state.certificate
    if certificate.number != number:  # typed in lower case, with spaces, or from the form
        return redirect(url_for("certificates.show", number=certificate.number), 301)
    if not anonymous:
        may_revoke = certificate.is_valid and may(current_user, "certificates.revoke")
        return render_template(
            "certificates/certificate.html", **_drawn(state), revoke_form=RevokeForm() if may_revoke else None
        )
    from portal.catalog.views import args_key

    etag = state.etag("page", language, request.path, args_key(), validators.release())

    def draw() -> bytes:
        return render_template("certificates/certificate.html", **_drawn(state)).encode()

    # The language is chosen by ?lang= and remembered in the session cookie.
    vary = ("Cookie", "Accept-Language")
    if kind:
        return validators.revalidated(
            etag, lambda: renditions.answer(state, kind, etag, draw), mimetype="text/html", vary=vary
        )
    return validators.revalidated(etag, draw, mimetype="text/html", vary=vary, cache=page_cache())


@bp.get("/certificates/<number>.pdf")
@public
def certificate_pdf(number):
    from portal.certificates import pdf

    try:
        found = services.look_up(number, _client())
    except services.LookupRefused:
        return _not_found(number[:40], 429)
    if found is None:
        return _not_found(number[:40])
    if found.number != number:
        return redirect(url_for("certificates.certificate_pdf", number=found.number), 301)
    certificate = services.row_of(found.id)
    try:
        data = pdf.render(
            payload=certificate.payload,
            signature=certificate.signature,
            key_id=certificate.key_id,
            verify_url=services.certificate_url(certificate),
            status=certificate.status,
            revoked_reason=certificate.revoked_reason,
            revoked_at=certificate.revoked_at.isoformat() if certificate.revoked_at else None,
            source=certificate.source,
        )
    except pdf.PdfError as exc:
        abort(503, exc.message)
    return Response(
        data,
        mimetype="application/pdf",
        headers={"Content-Disposition": f'inline; filename="{certificate.number}.pdf"'},
    )


@bp.post("/certificates/<number>/revoke")
@page("certificates.revoke")
def revoke(number):
    certificate = services.find(number)
    if certificate is None:
        abort(404)
    form = RevokeForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        if not confirmed():
            reason = services.check_revocation(certificate, form.reason.data)
            return ask(
                title=_("Revoke certificate %(number)s?", number=certificate.number),
                consequences=[
                    _(
                        "The certificate shows as revoked, with the reason and today's date, on its page, "
                        "in the public register and to anyone who checks its PDF."
                    ),
                    _("The credits stay retired: they do not come back to the holding or to sale."),
                ],
                facts=[
                    (_("Certificate"), certificate.number),
                    (_("Beneficiary"), certificate.beneficiary),
                    (_("Quantity retired"), _("%(n)s tCO2e", n=certificate.quantity)),
                    (_("Reason for revocation"), reason),
                ],
                button=_("Revoke the certificate"),
                back=url_for("certificates.show", number=certificate.number),
            )
        services.revoke(certificate, form.reason.data, actor=f"user:{current_user.id}")
    except services.RetirementError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return _show(certificate.number), exc.status
    flash(_("Certificate %(number)s is revoked.", number=certificate.number), "success")
    return redirect(url_for("certificates.show", number=certificate.number))


# --- the public register --------------------------------------------------------------------


@bp.get("/register")
@public
def register():
    filters = register_.RegisterFilters.parse(request.args)
    from portal.catalog import cache
    from portal.catalog import services as catalog

    by_project, by_county = cache.cached(("register-totals",), register_.totals)
    result = register_.search(filters)
    return render_template(
        "certificates/register.html",
        filters=filters,
        result=result,
        official=registry.registry_summaries([c.id for c in result.certificates]),
        by_project=by_project,
        by_county=by_county,
        counties=catalog.filter_options().counties,
    ), (400 if filters.errors else 200)


@bp.get("/register.csv")
@public
def register_csv():
    filters = register_.RegisterFilters.parse(request.args)
    if filters.errors:
        abort(400, "; ".join(filters.errors.values()))
    return csv_response(register_.csv_rows(filters), "retirement-register.csv")


# --- a buyer's own -------------------------------------------------------------------------


@bp.route("/account/retire", methods=["GET", "POST"])
@page("holdings.retire")
def retire():
    organisation = current_user.organisation
    blocks = buyers.holding_blocks(organisation)
    form = RetireForm()
    held: dict[str, int] = {}
    for b in blocks:
        held[b.batch.code] = held.get(b.batch.code, 0) + b.quantity
    form.batch_code.choices = [SelectChoice("", _("Any batch (oldest vintage first)"))] + [
        SelectChoice(code, _("%(batch)s (%(n)s t held)", batch=code, n=n)) for code, n in held.items()
    ]
    if request.method == "GET":
        form.beneficiary.data = organisation.name_zh
        return render_template("certificates/retire.html", form=form, total=sum(held.values()), error=None)
    if not form.validate_on_submit():
        abort(400)
    try:
        if not confirmed():
            plan = services.check_retirement(
                organisation,
                form.quantity.data,
                beneficiary=form.beneficiary.data,
                purpose=form.purpose.data,
                purpose_detail=form.purpose_detail.data,
                batch_code=form.batch_code.data or None,
                compliance_year=form.compliance_year.data or None,
            )
            return _confirm_retirement(plan, sum(held.values()))
        certificate, _created = services.retire_from_holding(
            organisation,
            form.quantity.data,
            beneficiary=form.beneficiary.data,
            purpose=form.purpose.data,
            purpose_detail=form.purpose_detail.data,
            batch_code=form.batch_code.data or None,
            compliance_year=form.compliance_year.data or None,
            actor=f"user:{current_user.id}",
        )
    except services.RetirementError as exc:
        db.session.rollback()
        return render_template(
            "certificates/retire.html", form=form, total=sum(held.values()), error=exc
        ), exc.status
    flash(
        _(
            "%(n)s t retired. Certificate %(number)s is issued.",
            n=certificate.quantity,
            number=certificate.number,
        ),
        "success",
    )
    return redirect(url_for("certificates.show", number=certificate.number))


def _confirm_retirement(plan: services.RetirementPlan, total: int):
    from portal.certificates.models import PURPOSE_LABELS

    if plan.batch_codes is None:
        source = _("Any batch in your holding, oldest vintage first")
    else:
        source = ("、" if current_language() == "zh" else ", ").join(plan.batch_codes) or "—"
    facts = [
        (_("Tonnes to retire"), _("%(n)s t of the %(total)s t you hold", n=plan.quantity, total=total)),
        (_("Beneficiary"), plan.beneficiary),
        (_("Purpose"), str(PURPOSE_LABELS.get(plan.purpose, plan.purpose))),
    ]
    if plan.purpose_detail:
        facts.append((_("Period or event (printed on the certificate)"), plan.purpose_detail))
    if plan.compliance_year:
        facts.append((_("Compliance year"), str(plan.compliance_year)))
    facts.append((_("Batch"), source))
    return ask(
        title=_("Retire %(n)s t?", n=plan.quantity),
        consequences=[
            _(
                "%(n)s t leave your holding for good: retired credits can never be sold, moved or used again.",
                n=plan.quantity,
            ),
            _(
                "A signed certificate naming %(beneficiary)s is issued and listed in the public retirement register.",
                beneficiary=plan.beneficiary,
            ),
        ],
        facts=facts,
        button=_("Retire and issue the certificate"),
        back=url_for("certificates.retire"),
    )


@bp.get("/account/certificates")
@page("holdings.retire")
def mine():
    return render_template(
        "certificates/mine.html", certificates=services.certificates_of(current_user.organisation)
    )


@bp.route("/account/compliance", methods=["GET", "POST"])
@page("holdings.retire")
def compliance_page():
    from portal.certificates import compliance

    organisation = current_user.organisation
    error = None
    if request.method == "POST":
        if not DeclareForm().validate_on_submit():  # the CSRF token
            abort(400)
        try:
            compliance.declare(
                organisation,
                request.form.get("year", ""),
                request.form.get("allowances_t", ""),
                actor=f"user:{current_user.id}",
            )
        except compliance.ComplianceError as exc:
            db.session.rollback()
            error = exc
        else:
            flash(_("Your allowances due are recorded."), "success")
            return redirect(url_for("certificates.compliance_page"))
    return render_template(
        "certificates/compliance.html",
        positions=compliance.positions(organisation),
        ets=organisation.ets_entity,
        error=error,
        form=request.form,
        cap_percent=compliance.CAP_PERCENT,
    ), (error.status if error else 200)
