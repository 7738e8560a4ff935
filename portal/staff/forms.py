"""Back-office forms."""

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    DecimalField,
    IntegerField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

from portal.catalog.services import MAX_BOUNDARY_SIZE

REQUIRED = _l("This field is required.")


class ProjectForm(FlaskForm):
    code = StringField(_l("Project code"), validators=[DataRequired(REQUIRED), Length(max=32)])
    name_zh = StringField(_l("Name (Chinese)"), validators=[DataRequired(REQUIRED), Length(max=200)])
    name_en = StringField(_l("Name (English)"), validators=[Length(max=200)])
    description_zh = TextAreaField(_l("Description (Chinese)"), validators=[Length(max=5000)])
    description_en = TextAreaField(_l("Description (English)"), validators=[Length(max=5000)])
    standard = SelectField(_l("Standard"), choices=[SelectChoice("CCER", "CCER"), SelectChoice("VCS", "VCS")])
    type = SelectField(_l("Project type"), choices=[])
    methodology = StringField(_l("Methodology"), validators=[DataRequired(REQUIRED), Length(max=40)])
    region_code = SelectField(_l("County"), choices=[])
    area_ha = DecimalField(
        _l("Area (ha)"), places=2, validators=[InputRequired(REQUIRED), NumberRange(min=0.01, max=9999999999)]
    )
    crediting_start = DateField(_l("Crediting period starts"), validators=[InputRequired(REQUIRED)])
    crediting_end = DateField(_l("Crediting period ends"), validators=[InputRequired(REQUIRED)])
    status = SelectField(_l("Status"), choices=[])
    validation_body = StringField(_l("Validation body"), validators=[Length(max=200)])
    verification_body = StringField(_l("Verification body"), validators=[Length(max=200)])
    registry_id = StringField(_l("Registry id"), validators=[Length(max=64)])
    boundary_geojson = TextAreaField(
        _l("Boundary (GeoJSON, WGS84)"), validators=[Length(max=MAX_BOUNDARY_SIZE)]
    )


class IssuanceForm(FlaskForm):
    vintage_start = DateField(_l("Monitoring period starts"), validators=[InputRequired(REQUIRED)])
    vintage_end = DateField(_l("Monitoring period ends"), validators=[InputRequired(REQUIRED)])
    quantity = IntegerField(
        _l("Issued (t)"), validators=[InputRequired(REQUIRED), NumberRange(min=1, max=2**31 - 1)]
    )
    buffer_quantity = IntegerField(
        _l("To the buffer (t)"), default=0, validators=[Optional(), NumberRange(min=0, max=2**31 - 1)]
    )
    issued_on = DateField(_l("Issued on"), validators=[InputRequired(REQUIRED)])
    registry_reference = StringField(
        _l("Registry issuance reference"), validators=[DataRequired(REQUIRED), Length(max=120)]
    )
    registry_serial_start = StringField(
        _l("Registry serial of the first credit"), validators=[Length(max=120)]
    )
    registry_serial_end = StringField(_l("Registry serial of the last credit"), validators=[Length(max=120)])
    #: As typed: the catalog reads it (``catalog.parse_price``: ASCII digits, two decimals).
    price_per_t = StringField(
        _l("Price per tonne (yuan)"), validators=[Optional()], render_kw={"inputmode": "decimal"}
    )


class ListingForm(FlaskForm):
    price_per_t = StringField(
        _l("Price per tonne (yuan)"),
        validators=[InputRequired(REQUIRED)],
        render_kw={"inputmode": "decimal"},
    )
    is_active = BooleanField(_l("On sale"), default=True)
