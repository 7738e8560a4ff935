"""The draft and amendment form: a new draft, editing a draft, amending an active contract. The
form's fields become the dict ``services.parse_terms`` reads; every check is the service's."""

import secrets
from decimal import Decimal

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select
from wtforms.fields.choices import SelectChoice

from portal.access import page
from portal.buyers import uscc as uscc_rules
from portal.buyers.models import Organisation, OrgStatus
from portal.catalog.models import PROJECT_TYPE_LABELS, Region
from portal.contracts import services
from portal.contracts.forms import TRANCHE_ROWS, AmendForm, ContractForm
from portal.contracts.views_shared import _actor, _contract_or_404, _form_invalid, bp
from portal.core.errors import ServiceError
from portal.core.i18n import localized
from portal.core.idempotency import request_digest
from portal.extensions import db


def _choices(form: ContractForm) -> None:
    organisations = db.session.scalars(
        select(Organisation)
        .where(Organisation.status.in_((OrgStatus.APPROVED, OrgStatus.RESTRICTED)))
        .order_by(Organisation.name_zh)
        .limit(1000)
    )
    form.organisation.choices = [SelectChoice("", _("Choose an approved organisation"))] + [
        SelectChoice(o.uscc, f"{localized(o, 'name')} · {o.uscc}") for o in organisations
    ]
    form.project_types.choices = [SelectChoice(k, str(v)) for k, v in PROJECT_TYPE_LABELS.items()]
    form.counties.choices = [
        SelectChoice(r.code, localized(r, "name"))
        for r in db.session.scalars(select(Region).order_by(Region.id))
    ]


def _form_data(terms: dict) -> dict:
    """A form's initial data from terms as ``Terms.as_json`` writes them."""
    escalation = terms.get("escalation_pct_per_year") or ""
    rows = [{"due": t["due"], "quantity": str(t["quantity"])} for t in terms.get("tranches", [])]
    wanted = min(services.MAX_TRANCHES, max(TRANCHE_ROWS, len(rows) + 3))
    rows += [{"due": "", "quantity": ""}] * (wanted - len(rows))

    def text(value):
        return "" if value is None else str(value)

    return {
        "title": terms.get("title", ""),
        "start": terms.get("start", ""),
        "end": terms.get("end", ""),
        "price_per_t": terms.get("price_per_t", ""),
        "escalation_pct_per_year": "" if Decimal(escalation or 0) == 0 else escalation,
        "year_prices": "\n".join(f"{y}={p}" for y, p in sorted((terms.get("year_prices") or {}).items())),
        "standard": terms.get("standard", ""),
        "project_types": terms.get("project_types", []),
        "counties": terms.get("counties", []),
        "vintage_from": text(terms.get("vintage_from")),
        "vintage_to": text(terms.get("vintage_to")),
        "delivery": terms.get("delivery", "holding"),
        "beneficiary": terms.get("beneficiary", ""),
        "payment_days": text(terms.get("payment_days", 30)),
        "tranches": rows,
        "total_quantity": "",  # a cross-check typed by hand, not a copy of the sum
    }


def _year_prices(text: str) -> dict:
    """``2027=70.00`` lines as the mapping parse_terms checks (years and prices are its business)."""
    prices = {}
    for line in (text or "").splitlines():
        line = line.strip()
        if not line:
            continue
        year, sep, price = line.replace("：", ":").replace(":", "=").partition("=")
        if not sep or not year.strip() or not price.strip():
            raise services.ContractError(
                "invalid_year_prices",
                _("Write one price per line as YEAR=PRICE, for example 2027=70.00."),
                field="year_prices",
            )
        prices[year.strip()] = price.strip()
    return prices


def _terms(form: ContractForm) -> dict:
    """What was typed, as the dict services.parse_terms reads; empty tranche rows are dropped."""

    def text(field):
        return (field.data or "").strip()

    rows = [
        {"due": text(row.form.due), "quantity": text(row.form.quantity)}
        for row in form.tranches
        if text(row.form.due) or text(row.form.quantity)
    ]
    return {
        "title": form.title.data or "",
        "start": text(form.start),
        "end": text(form.end),
        "price_per_t": text(form.price_per_t),
        "escalation_pct_per_year": text(form.escalation_pct_per_year),
        "year_prices": _year_prices(form.year_prices.data),
        "standard": form.standard.data or "",
        "project_types": list(form.project_types.data or []),
        "counties": list(form.counties.data or []),
        "vintage_from": text(form.vintage_from),
        "vintage_to": text(form.vintage_to),
        "delivery": form.delivery.data or "",
        "beneficiary": form.beneficiary.data or "",
        "payment_days": text(form.payment_days),
        "tranches": rows,
        "total_quantity": text(form.total_quantity) or None,
    }


def _form_page(form, *, contract=None, mode="new", error=None, status=200):
    if mode == "amend":
        heading = _("Amend contract %(number)s", number=contract.number)
    elif mode == "edit":
        heading = _("Edit draft %(number)s", number=contract.number)
    else:
        heading = _("New offtake contract")
    return (
        render_template(
            "contracts/form.html", form=form, contract=contract, mode=mode, error=error, heading=heading
        ),
        status,
    )


@bp.route("/staff/contracts/new", methods=["GET", "POST"])
@page("contracts.manage")
def new_contract():
    if request.method == "GET":
        form = ContractForm(data={"idempotency_key": secrets.token_urlsafe(16)})
        _choices(form)
        return _form_page(form)
    form = ContractForm()
    _choices(form)
    if not form.validate_on_submit():
        return _form_page(form, error=_form_invalid(form), status=400)
    code = (form.organisation.data or form.org_uscc.data or "").strip()
    organisation = (
        db.session.scalar(select(Organisation).filter_by(uscc=uscc_rules.normalise(code)))
        if code and len(code) <= 32
        else None
    )
    key = (form.idempotency_key.data or "").strip()[:100] or None
    try:
        data = _terms(form)
        contract, created = services.create_draft(
            organisation,
            data,
            owner=current_user,
            actor=_actor(),
            idempotency_key=f"web:{key}" if key else None,
            digest=request_digest({"org": code, **data}) if key else None,
        )
    except ServiceError as exc:
        db.session.rollback()
        return _form_page(form, error=exc, status=exc.status)
    if created:
        flash(_("Draft %(number)s is saved.", number=contract.number), "success")
    return redirect(url_for("contracts.staff_contract", number=contract.number)), 303


@bp.route("/staff/contracts/<number>/edit", methods=["GET", "POST"])
@page("contracts.manage")
def edit_contract(number):
    def save(contract, form):
        services.update_draft(contract, _terms(form), actor=_actor())
        return _("Draft %(number)s is saved.", number=contract.number)

    return _change_terms(number, "edit", ContractForm, services.check_editable, save)


@bp.route("/staff/contracts/<number>/amend", methods=["GET", "POST"])
@page("contracts.manage")
def amend_contract(number):
    def save(contract, form):
        services.amend(contract, _terms(form), form.reason.data, actor=_actor())
        return _("Contract %(number)s is amended: version %(v)s.", number=contract.number, v=contract.version)

    return _change_terms(number, "amend", AmendForm, services.check_amendable, save)


def _change_terms(number, mode, form_class, check, save):
    """The edit and amendment forms: prefilled with the terms in force, refused at once (with the
    service's own reason) when the contract's state does not allow the change."""
    contract = _contract_or_404(number)
    if request.method == "GET":
        form = form_class(data=_form_data(services.terms_of(contract).as_json()))
        _choices(form)
        try:
            check(contract)
        except ServiceError as exc:
            return _form_page(form, contract=contract, mode=mode, error=exc, status=exc.status)
        return _form_page(form, contract=contract, mode=mode)
    form = form_class()
    _choices(form)
    if not form.validate_on_submit():
        return _form_page(form, contract=contract, mode=mode, error=_form_invalid(form), status=400)
    try:
        message = save(contract, form)
    except ServiceError as exc:
        db.session.rollback()
        return _form_page(form, contract=contract, mode=mode, error=exc, status=exc.status)
    flash(message, "success")
    return redirect(url_for("contracts.staff_contract", number=contract.number)), 303
