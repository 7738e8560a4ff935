"""Translated names for the portal's fixed vocabularies: every code→label table shown to people.

Codes stay in the database, the API and the CSV exports; pages show these labels (with the code
in a ``title`` where it helps). Contract vocabularies live beside the contract forms
(``portal.contracts.forms``); how audit events, ledger accounts and actors read in the back office
is built from these tables in ``portal.staff.readable``. Pages reach them through the template
globals registered in ``portal.template_globals``."""

from flask_babel import lazy_gettext as _l

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
CERTIFICATE_STATUSES = {"valid": _l("Valid"), "revoked": _l("Revoked")}
CERTIFICATE_SOURCES = {
    "holding": _l("From the organisation's holding"),
    "order": _l("From a paid checkout order"),
    "contract": _l("From an offtake contract delivery"),
}
#: Ledger journal entries.
ENTRY_KINDS = {
    "issue": _l("Issuance"),
    "transfer": _l("Transfer"),
    "retire": _l("Retirement"),
    "cancel": _l("Cancellation"),
}
#: Ledger accounts (an account of a kind with an owner reads "… of <owner>", see staff.readable).
ACCOUNT_KINDS = {
    "inventory": _l("Inventory for sale"),
    "buffer": _l("Buffer pool"),
    "hold": _l("Order hold"),
    "reserve": _l("Contract reserve"),
    "holding": _l("Buyer's holding"),
    "retired": _l("Retired"),
    "cancelled": _l("Cancelled"),
    "withheld": _l("Withheld (registry difference)"),
}
#: The official registries and the hand-off to them (``portal.registry``).
REGISTRIES = {"ccer": _l("National CCER registry"), "verra": _l("Verra registry")}
REGISTRY_STATUSES = {
    "pending": _l("Awaiting the registry"),
    "confirmed": _l("Confirmed by the registry"),
    "rejected": _l("Rejected by the registry"),
}
INSTRUCTION_KINDS = {
    "cancellation": _l("Cancellation for a voluntary claim"),
    "ets_offset": _l("Cancellation for the ETS offset procedure"),
    "retirement": _l("Retirement naming the beneficiary"),
}
DIFFERENCES = {
    "portal_only": _l("In the portal but not in the registry"),
    "registry_only": _l("In the registry but not in the portal"),
    "retired_here_active_there": _l("Retired in the portal but active in the registry"),
    "retired_there_live_here": _l("Retired or cancelled in the registry but not here"),
}
#: Where differing serials are, in a reconciliation: a ledger account, or the registry's status.
PLACES = {
    **ACCOUNT_KINDS,
    "active": _l("Active in the registry account"),
    "retired_pending": _l("Retired, instruction pending"),
}
#: Who did something, for the fixed actors (people and API keys are named, see staff.readable).
ACTORS = {
    "system": _l("System"),
    "stripe": _l("Stripe (payment events)"),
    "cli": _l("Command line"),
    "demo": _l("Demo data"),
    "self": _l("The user, signing up"),
    "migration": _l("Database migration"),
}
AUDIT_ACTIONS = {
    "organisation.create": _l("Organisation registered"),
    "organisation.approved": _l("Organisation approved"),
    "organisation.suspended": _l("Organisation suspended"),
    "organisation.restricted": _l("Organisation restricted"),
    "organisation.barred": _l("Organisation barred"),
    "compliance.declare": _l("Allowances due declared"),
    "user.create": _l("User created"),
    "user.confirm": _l("E-mail address confirmed"),
    "user.reset_password": _l("Password reset"),
    "user.activate": _l("User reactivated"),
    "user.deactivate": _l("User deactivated"),
    "apikey.create": _l("API key created"),
    "apikey.revoke": _l("API key revoked"),
    "project.create": _l("Project created"),
    "project.update": _l("Project changed"),
    "batch.issue": _l("Issuance recorded"),
    "listing.update": _l("Listing changed"),
    "certificate.issue": _l("Certificate issued"),
    "certificate.revoke": _l("Certificate revoked"),
    "order.create": _l("Order placed"),
    "order.fulfilled": _l("Order paid and retired"),
    "order.expired": _l("Order expired"),
    "order.failed": _l("Order payment failed"),
    "order.cancelled": _l("Order cancelled"),
    "order.refunded": _l("Order refunded"),
    "order.refunded_after_retirement": _l("Order refunded after retirement"),
    "payments.attention": _l("Payment matter for staff"),
    "revenue.rule": _l("Revenue-sharing rule added"),
    "contract.draft": _l("Contract drafted"),
    "contract.edit": _l("Draft contract changed"),
    "contract.delete": _l("Draft contract deleted"),
    "contract.sign": _l("Contract signed"),
    "contract.reserve": _l("Stock reserved for contract"),
    "contract.deliver": _l("Tranche delivered"),
    "contract.amend": _l("Contract amended"),
    "contract.terminate": _l("Contract terminated"),
    "contract.complete": _l("Contract completed"),
    "invoice.payment": _l("Invoice payment recorded"),
    "invoice.overdue": _l("Overdue invoice notice sent"),
    "registry.confirm": _l("Registry confirmation recorded"),
    "registry.reject": _l("Registry rejection recorded"),
    "registry.overdue": _l("Registry instructions overdue"),
    "registry.statement": _l("Registry statement imported"),
    "registry.withhold": _l("Serials withheld from sale"),
    "registry.resolve": _l("Withheld serials resolved"),
}
AUDIT_SUBJECTS = {
    "organisation": _l("Organisation"),
    "user": _l("User"),
    "apikey": _l("API key"),
    "project": _l("Project"),
    "batch": _l("Batch"),
    "certificate": _l("Certificate"),
    "order": _l("Order"),
    "payment": _l("Payment"),
    "sharing_rule": _l("Revenue-sharing rule"),
    "contract": _l("Contract"),
    "invoice": _l("Invoice"),
    "registry_instruction": _l("Registry instruction"),
    "registry_statement": _l("Registry statement"),
    "registry_withholding": _l("Withheld serials"),
}
#: The fields audit events record before and after a change.
AUDIT_FIELDS = {
    "status": _l("Status"),
    "reason": _l("Reason"),
    "order_limit_t": _l("Limit per order (t)"),
    "year_limit_t": _l("Limit per year (t)"),
    "name_zh": _l("Name (Chinese)"),
    "name_en": _l("Name (English)"),
    "sector": _l("Sector"),
    "alliance_member": _l("Alliance member"),
    "ets_entity": _l("National ETS entity"),
    "year": _l("Year"),
    "allowances_t": _l("Allowances due (t)"),
    "email": _l("E-mail"),
    "role": _l("Role"),
    "organisation": _l("Organisation"),
    "user": _l("User"),
    "label": _l("Label"),
    "revoked_at": _l("Revoked at"),
    "is_active": _l("Active"),
    "code": _l("Code"),
    "description_zh": _l("Description (Chinese)"),
    "description_en": _l("Description (English)"),
    "standard": _l("Standard"),
    "methodology": _l("Methodology"),
    "type": _l("Project type"),
    "region_code": _l("County"),
    "area_ha": _l("Area (ha)"),
    "crediting_start": _l("Crediting period starts"),
    "crediting_end": _l("Crediting period ends"),
    "validation_body": _l("Validation body"),
    "verification_body": _l("Verification body"),
    "registry_id": _l("Registry id"),
    "boundary_geojson": _l("Boundary (GeoJSON, WGS84)"),
    "quantity": _l("Tonnes"),
    "buffer": _l("To the buffer (t)"),
    "registry_reference": _l("Registry issuance reference"),
    "price_per_t": _l("Price per tonne"),
    "active": _l("On sale"),
    "source": _l("Source"),
    "source_ref": _l("Source reference"),
    "movement": _l("Ledger movement"),
    "amount": _l("Amount"),
    "released": _l("Released (t)"),
    "note": _l("Note"),
    "refunded_fen": _l("Refunded (fen)"),
    "certificate": _l("Certificate"),
    "subject": _l("Subject"),
    "body": _l("Message"),
    "effective_from": _l("Effective from"),
    "project_type": _l("Project type"),
    "city_pct": _l("City share (%)"),
    "county_pct": _l("County share (%)"),
    "title": _l("Title"),
    "start": _l("Term starts"),
    "end": _l("Term ends"),
    "total_quantity": _l("Total (t)"),
    "escalation_pct_per_year": _l("Yearly escalation (%)"),
    "year_prices": _l("Fixed prices by year"),
    "project_types": _l("Project types"),
    "counties": _l("Counties"),
    "vintage_from": _l("Vintage from"),
    "vintage_to": _l("Vintage to"),
    "delivery": _l("Delivery"),
    "beneficiary": _l("Beneficiary"),
    "payment_days": _l("Payment terms (days)"),
    "tranches": _l("Delivery schedule"),
    "version": _l("Version"),
    "total": _l("Total (t)"),
    "reserved": _l("Reserved (t)"),
    "batch": _l("Batch"),
    "tranche": _l("Tranche"),
    "mode": _l("Delivery"),
    "from_inventory": _l("Of which from inventory (t)"),
    "invoice": _l("Invoice"),
    "method": _l("Payment method"),
    "reference": _l("Reference"),
    "due_on": _l("Due on"),
    "reserve_change": _l("Reserve change (t)"),
    "number": _l("Number"),
}
SORTS = {
    "vintage_desc": _l("Newest vintage first"),
    "vintage_asc": _l("Oldest vintage first"),
    "price_asc": _l("Price: low to high"),
    "price_desc": _l("Price: high to low"),
    "available_desc": _l("Most available first"),
    "project": _l("Project code"),
}


def org_status_label(status: str) -> str:
    return str(ORG_STATUSES.get(status, status))


def registry_link(project) -> tuple[str, str]:
    """(URL, link text) of the project's public registry record."""
    if project.standard == "VCS":
        number = project.registry_id.removeprefix("VCS")
        return (
            f"https://registry.verra.org/app/projectDetail/VCS/{number}",
            _l("Verra Registry, project %(id)s", id=project.registry_id),
        )
    return ("https://ccer.cets.org.cn/", _l("National CCER registry, project %(id)s", id=project.registry_id))
