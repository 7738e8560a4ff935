"""The retirement form (a buyer retiring from its holding) and the revocation form."""

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice

from portal.certificates.services import BENEFICIARY_MAX, DETAIL_MAX, REASON_MAX

PURPOSE_CHOICES = [
    SelectChoice("voluntary", _l("Voluntary offset of a period's emissions")),
    SelectChoice("event", _l("Event neutralisation")),
    SelectChoice("compliance", _l("National ETS compliance offset (CCER only)")),
]


class RetireForm(FlaskForm):
    # Validated by the certificates service, which gives the same messages to the web and the API.
    quantity = StringField(_l("Tonnes to retire"))
    beneficiary = StringField(_l("Beneficiary"), render_kw={"maxlength": BENEFICIARY_MAX})
    purpose = SelectField(_l("Purpose"), choices=PURPOSE_CHOICES, validate_choice=False)
    purpose_detail = StringField(
        _l("Period or event (printed on the certificate)"), render_kw={"maxlength": DETAIL_MAX}
    )
    batch_code = SelectField(_l("Batch"), validate_choice=False)
    compliance_year = StringField(
        _l("Compliance year (for a compliance offset)"), render_kw={"inputmode": "numeric"}
    )


class RevokeForm(FlaskForm):
    reason = TextAreaField(_l("Reason for revocation"), render_kw={"maxlength": REASON_MAX, "rows": 3})


class DeclareForm(FlaskForm):
    # Checked by the compliance service (same messages for every caller).
    year = StringField(_l("Compliance year"))
    allowances_t = StringField(_l("Allowances due (t)"))
