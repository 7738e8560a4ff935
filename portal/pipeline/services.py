"""The project pipeline, from land to issuance. Where each rule lives:

- ``parcels``: parcels, rights holders, joint development agreements; no land enrolled twice
  (the overlap check and its locking);
- ``geometry``: what a boundary must be (GeoJSON, WGS 84, valid, at most 100,000 vertices), its
  area in hectares (equal-area projection), its grid cells; ``extents``: each county's coarse box;
- ``documents``: uploaded PDFs, size-bounded, stored with their SHA-256;
- ``stages``: the stages in order, the county's review, the city's filing, registration linking the
  catalog project, issuance naming its batch;
- ``forecast``: the forecast of issuances and its revisions;
- ``queries``: what the county's and the operator's pages read.
"""

from portal.pipeline.documents import MAX_DOCUMENT_BYTES, store_pdf
from portal.pipeline.errors import Overlap, ParcelOverlap, PipelineError
from portal.pipeline.forecast import expected_by_vintage, forecast_in_force, revise, revisions
from portal.pipeline.geometry import GeometryError
from portal.pipeline.parcels import (
    change_boundary,
    create_agreement,
    enroll_parcel,
    find_overlaps,
    find_region,
    parcel_count,
    parcels,
    rights_holder,
    withdraw_parcel,
)
from portal.pipeline.queries import agreements, county_overview, figures, find_parcel, find_project, projects
from portal.pipeline.stages import (
    advance,
    boundary_geojson,
    create_project,
    is_approved,
    latest_review,
    next_stage,
    record_filing,
    review,
    review_digest,
    withdraw_project,
)

__all__ = [
    "MAX_DOCUMENT_BYTES",
    "GeometryError",
    "Overlap",
    "ParcelOverlap",
    "PipelineError",
    "advance",
    "agreements",
    "boundary_geojson",
    "change_boundary",
    "county_overview",
    "create_agreement",
    "create_project",
    "enroll_parcel",
    "expected_by_vintage",
    "figures",
    "find_overlaps",
    "find_parcel",
    "find_project",
    "find_region",
    "forecast_in_force",
    "is_approved",
    "latest_review",
    "next_stage",
    "parcel_count",
    "parcels",
    "projects",
    "record_filing",
    "review",
    "review_digest",
    "revise",
    "revisions",
    "rights_holder",
    "store_pdf",
    "withdraw_parcel",
    "withdraw_project",
]
