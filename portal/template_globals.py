"""The names every template can use: labels of the fixed vocabularies and the permission checks
that decide what a page offers. Registered once, from ``create_app``, so that neither the labels
nor the permission model needs to know of the other."""

from portal import access
from portal.buyers import policy
from portal.catalog import labels
from portal.core import mail


def register(app):
    """Put the labels' look-ups and the permission checks into every template's globals."""
    app.jinja_env.globals.update(
        project_type_label=lambda t: labels.PROJECT_TYPES.get(t, t),
        project_status_label=lambda s: labels.PROJECT_STATUSES.get(s, s),
        role_label=lambda r: labels.ROLES.get(r, r),
        org_status_label=labels.org_status_label,
        sector_label=lambda s: labels.SECTORS.get(s, s),
        may=access.may,
        outbox_page_enabled=mail.outbox_page_enabled,
        purchase_summary=policy.purchase_summary,
        standard_label=lambda s: labels.STANDARDS.get(s, s),
        purpose_label=lambda p: labels.PURPOSES.get(p, p),
        order_status_label=lambda s: labels.ORDER_STATUSES.get(s, s),
        order_note_label=lambda s: labels.ORDER_NOTES.get(s, s),
        entry_kind_label=lambda k: labels.ENTRY_KINDS.get(k, k),
        entry_kinds=labels.ENTRY_KINDS,
        audit_action_label=lambda a: labels.AUDIT_ACTIONS.get(a, a),
        sort_options=labels.SORTS,
        project_types=labels.PROJECT_TYPES,
        standards=labels.STANDARDS,
        registry_link=labels.registry_link,
    )
