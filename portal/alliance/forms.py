"""The alliance's forms: applying, leaving, the operator's decision and the member terms. The
service checks every value (and says what is wrong); the forms carry the fields and the token."""

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice

from portal.alliance.models import DESCRIPTION_MAX, EMISSIONS_BAND_LABELS, PLEDGE_MAX, WEBSITE_MAX
from portal.buyers.forms import SECTOR_CHOICES


class ApplyForm(FlaskForm):
    sector = SelectField(_l("Sector"), choices=SECTOR_CHOICES, validate_choice=False)
    emissions_band = SelectField(
        _l("Annual emissions (scopes 1 and 2)"),
        choices=[SelectChoice(code.value, label) for code, label in EMISSIONS_BAND_LABELS.items()],
        validate_choice=False,
    )
    pledge = TextAreaField(
        _l("Your public pledge (at most %(n)s characters)", n=PLEDGE_MAX),
        render_kw={"maxlength": PLEDGE_MAX, "rows": 4},
    )
    description_zh = TextAreaField(
        _l("Short description in Chinese (optional, public)"),
        render_kw={"maxlength": DESCRIPTION_MAX, "rows": 3},
    )
    description_en = TextAreaField(
        _l("Short description in English (optional, public)"),
        render_kw={"maxlength": DESCRIPTION_MAX, "rows": 3},
    )
    website = StringField(
        _l("Website (optional, public)"), render_kw={"maxlength": WEBSITE_MAX, "placeholder": "https://"}
    )


class ReasonForm(FlaskForm):
    reason = TextAreaField(_l("Reason"), render_kw={"maxlength": 1000, "rows": 2})


class TermsForm(FlaskForm):
    discount_pct = StringField(
        _l("Member discount (percent off the listed price, 0 to 50)"), render_kw={"inputmode": "decimal"}
    )
    first_call_days = StringField(
        _l("Members' first call (days after a batch is listed when only members may buy it, 0 to 90)"),
        render_kw={"inputmode": "numeric"},
    )
