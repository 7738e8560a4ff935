"""The names every template can use: labels of the fixed vocabularies and the permission checks
that decide what a page offers. Registered once, from ``create_app``, so that neither the labels
nor the permission model needs to know of the other."""

from portal import access
from portal.buyers import policy
from portal.catalog import labels
from portal.core import mail


def _look_up(table: dict):
    """A template's label look-up in ``table``: the label of a code, or the code itself when the
    table has none."""
    return lambda code: table.get(code, code)


def register(app):
    """Put the labels' look-ups and the permission checks into every template's globals."""
    app.jinja_env.globals.update(
        project_type_label=_look_up(labels.PROJECT_TYPES),
        project_status_label=_look_up(labels.PROJECT_STATUSES),
        role_label=_look_up(labels.ROLES),
        org_status_label=labels.org_status_label,
        sector_label=_look_up(labels.SECTORS),
        standard_label=_look_up(labels.STANDARDS),
        purpose_label=_look_up(labels.PURPOSES),
        order_status_label=_look_up(labels.ORDER_STATUSES),
        order_note_label=_look_up(labels.ORDER_NOTES),
        entry_kind_label=_look_up(labels.ENTRY_KINDS),
        entry_kinds=labels.ENTRY_KINDS,
        audit_action_label=_look_up(labels.AUDIT_ACTIONS),
        sort_options=labels.SORTS,
        project_types=labels.PROJECT_TYPES,
        standards=labels.STANDARDS,
        registry_link=labels.registry_link,
        registry_label=_look_up(labels.REGISTRIES),
        registry_status_label=_look_up(labels.REGISTRY_STATUSES),
        instruction_kind_label=_look_up(labels.INSTRUCTION_KINDS),
        difference_label=_look_up(labels.DIFFERENCES),
        place_label=_look_up(labels.PLACES),
        may=access.may,
        outbox_page_enabled=mail.outbox_page_enabled,
        purchase_summary=policy.purchase_summary,
    )
