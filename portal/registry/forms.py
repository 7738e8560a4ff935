"""Forms of the registry pages."""

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import DateField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, Length

REQUIRED = _l("This field is required.")


class ConfirmForm(FlaskForm):
    reference = StringField(_l("Registry reference"), validators=[DataRequired(REQUIRED), Length(max=120)])
    date = DateField(_l("Date of the registry's record"), validators=[InputRequired(REQUIRED)])
    serial_start = StringField(
        _l("Registry serial of the first credit (Verra: the block serial)"),
        validators=[DataRequired(REQUIRED), Length(max=120)],
    )
    serial_end = StringField(_l("Registry serial of the last credit"), validators=[Length(max=120)])


class RejectForm(FlaskForm):
    reason = TextAreaField(
        _l("Reason the registry gave"), validators=[DataRequired(REQUIRED), Length(max=500)]
    )


class StatementForm(FlaskForm):
    registry = SelectField(_l("Registry"), choices=[])
    account = StringField(_l("Account in the registry"), validators=[DataRequired(REQUIRED), Length(max=120)])
    file = FileField(_l("Statement (CSV, UTF-8)"))


class ResolveForm(FlaskForm):
    outcome = SelectField(_l("Outcome"), choices=[])
    note = TextAreaField(_l("What was found"), validators=[DataRequired(REQUIRED), Length(max=500)])
