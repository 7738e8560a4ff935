"""The pipeline's refusals: each a ServiceError with a stable code and a translated message."""

from dataclasses import dataclass

from flask_babel import gettext as _

from portal.core.errors import ServiceError


class PipelineError(ServiceError):
    """A parcel, agreement, stage, review, filing or forecast the rules refuse: nothing changed."""


@dataclass(frozen=True)
class Overlap:
    parcel_id: int
    code: str
    overlap_ha: float


class ParcelOverlap(PipelineError):
    """A boundary that overlaps enrolled parcels beyond the tolerance (409), naming them."""

    def __init__(self, overlaps: list[Overlap]):
        self.overlaps = overlaps
        named = ", ".join(
            _("%(code)s (%(area)s ha)", code=o.code, area=f"{o.overlap_ha:,.4f}") for o in overlaps
        )
        super().__init__(
            "parcel_overlap",
            _("The boundary overlaps land already enrolled: %(parcels)s.", parcels=named),
            409,
            "boundary",
        )
