"""Contract forms, and the names of the contract vocabularies.

The forms only carry what was typed: every rule (dates within the term, tranches adding up,
prices above zero …) is checked by :mod:`portal.contracts.services`, which gives the web and the
API the same messages. Fields are named after the keys of ``services.parse_terms`` so that a
refusal's ``field`` points at the input at fault.
"""

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    FieldList,
    Form,
    FormField,
    HiddenField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice

from portal.certificates.services import BENEFICIARY_MAX
from portal.contracts.models import DELIVERY_MODE_LABELS
from portal.contracts.services import MAX_TRANCHES, TITLE_MAX

#: Tranche rows offered by the draft form (empty rows are ignored); an edit offers a few more
#: than the contract has.
TRANCHE_ROWS = 12


class TrancheRow(Form):
    """One row of the schedule (no CSRF token of its own: it is part of the contract form)."""

    due = StringField(_l("Due on"), render_kw={"type": "date"})
    quantity = StringField(_l("Tonnes"), render_kw={"inputmode": "numeric"})


class ContractForm(FlaskForm):
    organisation = SelectField(_l("Buyer organisation"), validate_choice=False)
    org_uscc = StringField(
        _l("…or its unified social credit code"), render_kw={"maxlength": 18, "autocomplete": "off"}
    )
    title = StringField(_l("Title"), render_kw={"maxlength": TITLE_MAX})
    start = StringField(_l("Term starts"), render_kw={"type": "date"})
    end = StringField(_l("Term ends"), render_kw={"type": "date"})
    price_per_t = StringField(
        _l("Price per tonne in the first year (yuan)"), render_kw={"inputmode": "decimal"}
    )
    escalation_pct_per_year = StringField(
        _l("Yearly escalation in per cent (optional)"), render_kw={"inputmode": "decimal"}
    )
    year_prices = TextAreaField(
        _l("Fixed prices for some years (optional, one per line: 2027=70.00)"), render_kw={"rows": 3}
    )
    standard = SelectField(
        _l("Standard"),
        choices=[SelectChoice("", _l("Either")), SelectChoice("CCER", "CCER"), SelectChoice("VCS", "VCS")],
        validate_choice=False,
    )
    project_types = SelectMultipleField(_l("Project types (none chosen: any)"), validate_choice=False)
    counties = SelectMultipleField(_l("Counties (none chosen: any)"), validate_choice=False)
    vintage_from = StringField(_l("Vintage from (year, optional)"), render_kw={"inputmode": "numeric"})
    vintage_to = StringField(_l("Vintage to (year, optional)"), render_kw={"inputmode": "numeric"})
    delivery = SelectField(
        _l("Delivery"),
        choices=[SelectChoice(k, v) for k, v in DELIVERY_MODE_LABELS.items()],
        validate_choice=False,
    )
    beneficiary = StringField(
        _l("Beneficiary on certificates (retired deliveries; the buyer when empty)"),
        render_kw={"maxlength": BENEFICIARY_MAX},
    )
    payment_days = StringField(_l("Payment terms (days)"), default="30", render_kw={"inputmode": "numeric"})
    tranches = FieldList(FormField(TrancheRow), min_entries=TRANCHE_ROWS, max_entries=MAX_TRANCHES)
    total_quantity = StringField(
        _l("Total (t, optional: checked against the tranches)"), render_kw={"inputmode": "numeric"}
    )
    #: A new draft's form carries a random key: submitted twice, it makes one draft.
    idempotency_key = HiddenField()


class AmendForm(ContractForm):
    reason = StringField(_l("Reason for the amendment"), render_kw={"maxlength": 500})


class DeliverForm(FlaskForm):
    tranche = SelectField(_l("Tranche"), validate_choice=False)
    #: Empty: what is left of the tranche.
    quantity = StringField(
        _l("Tonnes"), render_kw={"inputmode": "numeric", "placeholder": _l("All that is left")}
    )
    #: Empty: the contract's delivery mode; or this delivery's own (one tranche retired for an event).
    mode = SelectField(
        _l("Delivery"),
        choices=[
            SelectChoice("", _l("As the contract says")),
            SelectChoice("holding", _l("To the buyer's holding")),
            SelectChoice("retire", _l("Retired for the buyer, with a certificate")),
        ],
        validate_choice=False,
    )
    beneficiary = StringField(_l("Beneficiary (if retired)"), render_kw={"maxlength": 200})
    #: Submitted twice (a double click, a reload), the delivery happens once.
    idempotency_key = HiddenField()


class ReasonForm(FlaskForm):
    reason = StringField(_l("Reason"), render_kw={"maxlength": 500})


class PaymentForm(FlaskForm):
    amount = StringField(_l("Amount (yuan)"), render_kw={"inputmode": "decimal"})
    received_on = StringField(_l("Received on"), render_kw={"type": "date"})
    reference = StringField(_l("Bank reference"), render_kw={"maxlength": 200})
