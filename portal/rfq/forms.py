"""Request-for-quote forms. They only carry what was typed: every rule is checked by
:mod:`portal.rfq.reading`, whose refusals name the field at fault."""

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import FieldList, Form, FormField, SelectField, SelectMultipleField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.widgets import CheckboxInput, ListWidget

from portal.catalog.models import PROJECT_TYPE_LABELS
from portal.rfq.models import SCHEDULE_KIND_LABELS
from portal.rfq.reading import MAX_TRANCHES, MESSAGE_MAX, NOTES_MAX, STANDARDS

#: Schedule rows the form offers (empty rows are ignored).
TRANCHE_ROWS = 8


class MultiCheckboxField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class TrancheRow(Form):
    due = StringField(_l("Delivery date"), render_kw={"type": "date"})
    quantity = StringField(_l("Tonnes"), render_kw={"inputmode": "numeric"})


class RequestForm(FlaskForm):
    quantity = StringField(_l("Quantity (t)"), render_kw={"inputmode": "numeric", "required": True})
    standards = MultiCheckboxField(
        _l("Standards (none chosen: either)"),
        choices=[SelectChoice(s, s) for s in STANDARDS],
        validate_choice=False,
    )
    project_types = MultiCheckboxField(
        _l("Project types (none chosen: any)"),
        choices=[SelectChoice(k, v) for k, v in PROJECT_TYPE_LABELS.items()],
        validate_choice=False,
    )
    projects = StringField(
        _l("Projects you want (optional: codes, separated by commas)"), render_kw={"maxlength": 400}
    )
    vintage_from = StringField(_l("Vintage from (year, optional)"), render_kw={"inputmode": "numeric"})
    vintage_to = StringField(_l("Vintage to (year, optional)"), render_kw={"inputmode": "numeric"})
    schedule = SelectField(
        _l("Delivery"),
        choices=[SelectChoice(k, v) for k, v in SCHEDULE_KIND_LABELS.items()],
        validate_choice=False,
    )
    tranches = FieldList(FormField(TrancheRow), min_entries=TRANCHE_ROWS, max_entries=MAX_TRANCHES)
    price_expectation = StringField(
        _l("Price you expect per tonne (yuan, optional)"), render_kw={"inputmode": "decimal"}
    )
    contact_name = StringField(_l("Contact name"), render_kw={"maxlength": 100, "autocomplete": "name"})
    contact_email = StringField(
        _l("Contact e-mail"), render_kw={"maxlength": 254, "autocomplete": "email", "type": "email"}
    )
    contact_phone = StringField(
        _l("Contact phone (optional)"), render_kw={"maxlength": 40, "autocomplete": "tel"}
    )
    notes = TextAreaField(_l("Notes (optional)"), render_kw={"rows": 4, "maxlength": NOTES_MAX})


class MessageForm(FlaskForm):
    body = TextAreaField(_l("Message"), render_kw={"rows": 4, "maxlength": MESSAGE_MAX})


class DeclineForm(FlaskForm):
    reason = TextAreaField(_l("Reason (the buyer reads it)"), render_kw={"rows": 3, "maxlength": 500})


class AssignForm(FlaskForm):
    assigned_to = SelectField(_l("Salesperson"), validate_choice=False)


class ConvertForm(FlaskForm):
    price_per_t = StringField(_l("Price per tonne offered (yuan)"), render_kw={"inputmode": "decimal"})
