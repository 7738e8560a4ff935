"""Sign-in, registration and password-reset forms."""

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, PasswordField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, EqualTo, Length


class LoginForm(FlaskForm):
    email = EmailField(
        _l("E-mail"), validators=[DataRequired(_l("Enter your e-mail address.")), Length(max=254)]
    )
    password = PasswordField(
        _l("Password"), validators=[DataRequired(_l("Enter your password.")), Length(max=256)]
    )
    remember = BooleanField(_l("Keep me signed in on this device"))


SECTOR_CHOICES = [
    SelectChoice("steel", _l("Steel")),
    SelectChoice("nonferrous", _l("Non-ferrous metals")),
    SelectChoice("building_materials", _l("Building materials")),
    SelectChoice("government", _l("Government body")),
    SelectChoice("public_institution", _l("Public institution")),
    SelectChoice("event_organiser", _l("Event organiser")),
    SelectChoice("other", _l("Other")),
]


class RegisterForm(FlaskForm):
    name_zh = StringField(
        _l("Organisation name (Chinese)"), validators=[DataRequired(_l("Enter the name.")), Length(max=200)]
    )
    name_en = StringField(_l("Organisation name (English, optional)"), validators=[Length(max=200)])
    uscc = StringField(
        _l("Unified social credit code"), validators=[DataRequired(_l("Enter the code.")), Length(max=40)]
    )
    sector = SelectField(_l("Sector"), choices=SECTOR_CHOICES)
    contact_name = StringField(
        _l("Contact person"), validators=[DataRequired(_l("Enter a contact person.")), Length(max=100)]
    )
    contact_phone = StringField(
        _l("Contact telephone"), validators=[DataRequired(_l("Enter a telephone number.")), Length(max=40)]
    )
    email = EmailField(
        _l("E-mail"), validators=[DataRequired(_l("Enter your e-mail address.")), Length(max=254)]
    )
    password = PasswordField(
        _l("Password"), validators=[DataRequired(_l("Enter your password.")), Length(max=256)]
    )
    password_again = PasswordField(
        _l("Password again"), validators=[EqualTo("password", _l("The two passwords differ."))]
    )


class ResetRequestForm(FlaskForm):
    email = EmailField(
        _l("E-mail"), validators=[DataRequired(_l("Enter your e-mail address.")), Length(max=254)]
    )


class ResetForm(FlaskForm):
    password = PasswordField(
        _l("New password"), validators=[DataRequired(_l("Enter your password.")), Length(max=256)]
    )
    password_again = PasswordField(
        _l("Password again"), validators=[EqualTo("password", _l("The two passwords differ."))]
    )
