"""Translated names for the catalog's fixed vocabularies."""

from flask_babel import lazy_gettext as _l

from portal.buyers.policy import purchase_summary, user_may

PROJECT_TYPES = {
    "forestry": _l("Forestry (afforestation)"),
    "grassland": _l("Grassland"),
    "wetland": _l("Wetland"),
    "cropland": _l("Cropland"),
    "manure": _l("Livestock manure"),
}
PROJECT_STATUSES = {
    "registered": _l("Registered"),
    "issuing": _l("Issuing"),
    "suspended": _l("Suspended"),
    "closed": _l("Closed"),
}
STANDARDS = {"CCER": _l("CCER (China)"), "VCS": _l("VCS (Verra)")}
ROLES = {
    "buyer": _l("Buyer"),
    "sales": _l("Sales staff"),
    "operator": _l("Operator"),
    "auditor": _l("Auditor"),
}
ORG_STATUSES = {
    "pending": _l("Pending approval"),
    "approved": _l("Approved"),
    "suspended": _l("Suspended"),
    "restricted": _l("Restricted"),
    "barred": _l("Barred"),
}
SECTORS = {
    "steel": _l("Steel"),
    "nonferrous": _l("Non-ferrous metals"),
    "building_materials": _l("Building materials"),
    "government": _l("Government body"),
    "public_institution": _l("Public institution"),
    "event_organiser": _l("Event organiser"),
    "other": _l("Other"),
}
PURPOSES = {
    "voluntary": _l("Voluntary offset"),
    "event": _l("Event neutralisation"),
    "compliance": _l("National ETS compliance offset"),
}
ORDER_STATUSES = {
    "awaiting_payment": _l("Awaiting payment"),
    "fulfilled": _l("Paid and retired"),
    "expired": _l("Expired"),
    "failed": _l("Payment failed"),
    "cancelled": _l("Cancelled"),
    "refunded": _l("Refunded"),
}
ORDER_NOTES = {
    "payment service unavailable": _l("The payment service was not available; nothing was charged."),
    "the hold expired before payment": _l("The hold expired before payment."),
    "the payment failed": _l("The payment failed; the credits were released."),
    "the amount paid does not match the order": _l(
        "The amount paid did not match the order; it was refunded."
    ),
    "paid after the order was cancelled": _l("Paid after the order was cancelled; the payment was refunded."),
    "paid after the hold was released, and the stock is gone": _l(
        "Paid after the hold was released, when the stock was gone; the payment was refunded."
    ),
    "paid after the hold was released, and the organisation may not buy it now": _l(
        "Paid after the hold was released, when the organisation could no longer buy it; the payment was refunded."
    ),
    "paid after the hold expired; held again, the amount paid shared over the new batches": _l(
        "Paid after the hold expired: the same quantity was held again and retired for the amount paid."
    ),
    "refunded in Stripe before fulfilment": _l("Refunded before the credits were retired."),
    "refunded by staff": _l("Refunded by the operator."),
    "cancelled by staff": _l("Cancelled by the operator."),
}
SORTS = {
    "vintage_desc": _l("Newest vintage first"),
    "vintage_asc": _l("Oldest vintage first"),
    "price_asc": _l("Price: low to high"),
    "price_desc": _l("Price: high to low"),
    "available_desc": _l("Most available first"),
    "project": _l("Project code"),
}


def register(app):
    app.jinja_env.globals.update(
        project_type_label=lambda t: PROJECT_TYPES.get(t, t),
        project_status_label=lambda s: PROJECT_STATUSES.get(s, s),
        role_label=lambda r: ROLES.get(r, r),
        org_status_label=lambda s: ORG_STATUSES.get(s, s),
        sector_label=lambda s: SECTORS.get(s, s),
        user_may=user_may,
        purchase_summary=purchase_summary,
        standard_label=lambda s: STANDARDS.get(s, s),
        purpose_label=lambda p: PURPOSES.get(p, p),
        order_status_label=lambda s: ORDER_STATUSES.get(s, s),
        order_note_label=lambda s: ORDER_NOTES.get(s, s),
        sort_options=SORTS,
        project_types=PROJECT_TYPES,
        standards=STANDARDS,
        registry_link=registry_link,
    )


def registry_link(project) -> tuple[str, str]:
    """(URL, link text) of the project's public registry record."""
    if project.standard == "VCS":
        number = project.registry_id.removeprefix("VCS")
        return (
            f"https://registry.verra.org/app/projectDetail/VCS/{number}",
            _l("Verra Registry, project %(id)s", id=project.registry_id),
        )
    return ("https://ccer.cets.org.cn/", _l("National CCER registry, project %(id)s", id=project.registry_id))
