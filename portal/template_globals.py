"""The names every template can use: the look-ups of the fixed vocabularies' labels (each table
lives beside its enum) and the permission checks that decide what a page offers. Registered once,
from ``create_app``, so that neither the labels nor the permission model needs to know of the
other."""

from portal import access
from portal.alliance import offers as alliance_offers
from portal.alliance.models import EMISSIONS_BAND_LABELS, MEMBERSHIP_STATUS_LABELS
from portal.audit.labels import AUDIT_ACTIONS
from portal.buyers import policy
from portal.buyers.models import ROLE_LABELS, SECTOR_LABELS, org_status_label
from portal.catalog.filters import SORT_LABELS
from portal.catalog.models import (
    PROJECT_STATUS_LABELS,
    PROJECT_TYPE_LABELS,
    STANDARD_LABELS,
    registry_link,
)
from portal.certificates.models import PURPOSE_LABELS
from portal.core import mail
from portal.core.labels import look_up
from portal.core.seller import seller
from portal.fapiao import services as fapiao_services
from portal.fapiao.models import FAPIAO_KIND_LABELS, FAPIAO_STATUS_LABELS
from portal.ledger.models import ENTRY_KIND_LABELS
from portal.offsets import basket
from portal.offsets.models import ORDER_NOTE_LABELS, ORDER_STATUS_LABELS, PAYMENT_METHOD_LABELS
from portal.offsets.transfers import transfer_offered
from portal.pipeline.models import (
    LAND_TYPE_LABELS,
    PARCEL_STATUS_LABELS,
    PROJECT_STATE_LABELS,
    REVIEW_DECISION_LABELS,
    STAGE_LABELS,
    TENURE_LABELS,
)
from portal.registry.models import INSTRUCTION_KIND_LABELS, REGISTRY_LABELS, REGISTRY_STATUS_LABELS
from portal.registry.reconcile import DIFFERENCE_LABELS, PLACE_LABELS
from portal.rfq.services import request_for_contract


def register(app):
    """Put the labels' look-ups and the permission checks into every template's globals."""
    app.jinja_env.globals.update(
        order_size=lambda: len(basket.saved()),
        project_type_label=look_up(PROJECT_TYPE_LABELS),
        project_status_label=look_up(PROJECT_STATUS_LABELS),
        role_label=look_up(ROLE_LABELS),
        org_status_label=org_status_label,
        sector_label=look_up(SECTOR_LABELS),
        standard_label=look_up(STANDARD_LABELS),
        purpose_label=look_up(PURPOSE_LABELS),
        order_status_label=look_up(ORDER_STATUS_LABELS),
        order_note_label=look_up(ORDER_NOTE_LABELS),
        payment_method_label=look_up(PAYMENT_METHOD_LABELS),
        entry_kind_label=look_up(ENTRY_KIND_LABELS),
        entry_kinds=ENTRY_KIND_LABELS,
        audit_action_label=look_up(AUDIT_ACTIONS),
        sort_options=SORT_LABELS,
        project_types=PROJECT_TYPE_LABELS,
        standards=STANDARD_LABELS,
        registry_link=registry_link,
        registry_label=look_up(REGISTRY_LABELS),
        registry_status_label=look_up(REGISTRY_STATUS_LABELS),
        instruction_kind_label=look_up(INSTRUCTION_KIND_LABELS),
        difference_label=look_up(DIFFERENCE_LABELS),
        place_label=look_up(PLACE_LABELS),
        may=access.may,
        quote_request_for=request_for_contract,
        outbox_page_enabled=mail.outbox_page_enabled,
        purchase_summary=policy.purchase_summary,
        stage_label=look_up(STAGE_LABELS),
        land_type_label=look_up(LAND_TYPE_LABELS),
        tenure_label=look_up(TENURE_LABELS),
        parcel_status_label=look_up(PARCEL_STATUS_LABELS),
        pipeline_state_label=look_up(PROJECT_STATE_LABELS),
        review_decision_label=look_up(REVIEW_DECISION_LABELS),
        seller=seller,
        transfer_offered=transfer_offered,
        fapiao_requests=fapiao_services.requests_for,
        fapiao_kind_label=look_up(FAPIAO_KIND_LABELS),
        fapiao_status_label=look_up(FAPIAO_STATUS_LABELS),
        alliance_offer=alliance_offers.offer,
        emissions_band_label=look_up(EMISSIONS_BAND_LABELS),
        membership_status_label=look_up(MEMBERSHIP_STATUS_LABELS),
    )
