"""The checkout form."""

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, SelectField, StringField
from wtforms.fields.choices import SelectChoice

from portal.certificates.services import BENEFICIARY_MAX, DETAIL_MAX


class CheckoutForm(FlaskForm):
    # Validated by the offsets service, which gives the web and the API the same messages.
    quantity = StringField(_l("Tonnes to offset"), render_kw={"inputmode": "numeric"})
    batch_code = SelectField(_l("Credits"), validate_choice=False)
    beneficiary = StringField(
        _l("Beneficiary (named on the certificate)"), render_kw={"maxlength": BENEFICIARY_MAX}
    )
    purpose = SelectField(
        _l("Purpose"),
        choices=[
            SelectChoice("event", _l("Event neutralisation")),
            SelectChoice("voluntary", _l("Voluntary offset of a period's emissions")),
        ],
        validate_choice=False,
    )
    purpose_detail = StringField(
        _l("What is offset (printed on the certificate)"), render_kw={"maxlength": DETAIL_MAX}
    )
    estimate = HiddenField()


class GuestCheckoutForm(CheckoutForm):
    """Checkout without an account: who buys, then what the certificate says."""

    name = StringField(_l("Your name"), render_kw={"maxlength": 100, "autocomplete": "name"})
    email = StringField(
        _l("E-mail address (the order's link, the receipt and the certificate are sent here)"),
        render_kw={"maxlength": 254, "autocomplete": "email", "inputmode": "email"},
    )
    organisation_name = StringField(
        _l("Organisation (optional)"), render_kw={"maxlength": 200, "autocomplete": "organization"}
    )
    uscc = StringField(
        _l("Unified social credit code (optional)"),
        render_kw={"maxlength": 18, "autocapitalize": "characters"},
    )
    beneficiary = StringField(
        _l("Beneficiary (named on the certificate; if empty, the organisation or your name)"),
        render_kw={"maxlength": BENEFICIARY_MAX},
    )
