"""No land enrolled twice: overlaps with real-shaped parcels in Chifeng's coordinates, the county
a parcel must lie in, and two overlapping parcels submitted at once."""

import pytest
from sqlalchemy import func, select

from portal.audit.models import AuditEvent
from portal.extensions import db
from portal.pipeline import services
from portal.pipeline.models import Parcel, ParcelCell
from tests.concurrency import race
from tests.pipeline.helpers import AOHAN, FOREST_COMPARTMENT, aohan, kalaqin, offset, polygon, rectangle


def enroll(
    boundary, county="aohan", holder="敖汉旗大黑山林场", land_type="forest", tenure="state_forest_farm"
):
    return services.enroll_parcel(
        county=county,
        land_type=land_type,
        tenure=tenure,
        rights_holder_name=holder,
        boundary=boundary,
        actor="t",
    )


def refused(boundary, code="parcel_overlap", **kwargs):
    before = db.session.scalar(select(func.count(Parcel.id)))
    with pytest.raises(services.PipelineError) as exc:
        enroll(boundary, **kwargs)
    db.session.rollback()
    assert exc.value.code == code, exc.value.message
    assert db.session.scalar(select(func.count(Parcel.id))) == before  # nothing stored
    return exc.value


@pytest.fixture
def compartment(app):
    aohan()
    kalaqin()
    parcel = enroll(FOREST_COMPARTMENT)
    db.session.commit()
    return parcel


def test_a_parcel_is_enrolled_with_its_area_cells_and_audit(compartment):
    assert compartment.code == f"AOHAN-{compartment.id:06d}"
    assert 60 < float(compartment.area_ha) < 80
    assert compartment.rights_holder.name == "敖汉旗大黑山林场"
    assert (
        db.session.scalar(select(func.count()).select_from(ParcelCell).filter_by(parcel_id=compartment.id))
        >= 1
    )
    assert (
        db.session.scalar(select(AuditEvent).filter_by(action="parcel.enroll")).subject_id == compartment.code
    )


#: The compartment's western and southern edges, as its survey drew them (metres from AOHAN).
WEST_EDGE = ((90, 600), (-30, 300), (0, 0))
SOUTH_EDGE = ((180, -40), (420, -20), (650, 30))


def test_a_neighbour_sharing_an_edge_is_accepted(compartment):
    # The village land to the west shares the compartment's western edge, vertex for vertex.
    shared = [offset(*AOHAN, e, n) for e, n in WEST_EDGE] + [
        offset(*AOHAN, -400, 0),
        offset(*AOHAN, -400, 600),
    ]
    neighbour = enroll(polygon(shared), holder="新惠镇某村集体", tenure="collective")
    assert neighbour.id != compartment.id


def _south_strip(into_m: float) -> dict:
    """Land south of the compartment whose northern edge runs ``into_m`` metres inside it."""
    edge = [offset(*AOHAN, e, n + into_m) for e, n in SOUTH_EDGE]
    return polygon(edge + [offset(*AOHAN, 650, -300), offset(*AOHAN, 180, -300)])


def test_a_sliver_beyond_the_tolerance_is_refused_naming_the_parcel_and_the_hectares(compartment):
    # 2 m into the compartment along about 470 m of its southern edge: about 0.09 ha.
    error = refused(_south_strip(2))
    assert [o.code for o in error.overlaps] == [compartment.code]
    assert error.overlaps[0].overlap_ha == pytest.approx(0.094, rel=0.05)
    assert compartment.code in error.message and "0.09" in error.message


def test_a_sliver_within_the_tolerance_is_accepted(compartment):
    # A surveying difference of 10 cm along the same edge: under 100 m².
    assert enroll(_south_strip(0.1), holder="另一户").id != compartment.id


def test_containing_either_way_is_refused(compartment):
    around = rectangle(*AOHAN, 3000, 3000, east_m=-1000, north_m=-1000)
    inside = rectangle(*AOHAN, 100, 100, east_m=400, north_m=300)
    outer = refused(around)
    assert outer.overlaps[0].overlap_ha == pytest.approx(float(compartment.area_ha), rel=1e-3)
    inner = refused(inside)
    assert inner.overlaps[0].overlap_ha == pytest.approx(1.0, rel=0.01)


def test_the_same_boundary_twice_is_refused(compartment):
    error = refused(FOREST_COMPARTMENT)
    assert error.status == 409
    assert error.overlaps[0].overlap_ha == pytest.approx(float(compartment.area_ha), rel=1e-4)


def test_every_overlapped_parcel_is_named_largest_first(compartment):
    other = enroll(rectangle(*AOHAN, 300, 300, east_m=1500), holder="另一户")
    db.session.commit()
    error = refused(rectangle(*AOHAN, 1200, 300, east_m=600, north_m=100))
    assert {o.code for o in error.overlaps} == {compartment.code, other.code}
    assert error.overlaps[0].overlap_ha >= error.overlaps[1].overlap_ha


def test_a_withdrawn_parcel_no_longer_blocks_its_land(compartment):
    services.withdraw_parcel(compartment, reason="协议终止", actor="t")
    assert enroll(FOREST_COMPARTMENT, holder="新的权利人").id != compartment.id


def test_a_changed_boundary_is_checked_against_every_other_parcel(compartment):
    other = enroll(rectangle(*AOHAN, 300, 300, east_m=1500), holder="另一户")
    db.session.commit()
    with pytest.raises(services.ParcelOverlap):
        services.change_boundary(other, rectangle(*AOHAN, 300, 300, east_m=900), actor="t")
    db.session.rollback()
    moved = services.change_boundary(other, rectangle(*AOHAN, 300, 300, east_m=1600), actor="t")
    assert moved.min_lon > offset(*AOHAN, 1599, 0)[0]
    # Its own old outline does not count against it.
    services.change_boundary(compartment, FOREST_COMPARTMENT, actor="t")


def test_a_parcel_outside_its_county_is_refused(compartment):
    refused(rectangle(*AOHAN, 200, 200, east_m=5000), code="outside_county", county="kalaqin")
    refused(rectangle(116.0, 47.0, 200, 200), code="outside_county")


def test_unknown_vocabulary_and_county_are_refused(compartment):
    box = rectangle(*AOHAN, 100, 100, east_m=5000)
    refused(box, code="unknown_county", county="nowhere")
    refused(box, code="invalid_land_type", land_type="moon")
    refused(box, code="invalid_tenure", tenure="squatter")
    refused(box, code="invalid_rights_holder", holder=" ")


def test_a_multipolygon_parcel_overlapping_with_one_part_is_refused(compartment):
    far = rectangle(*AOHAN, 100, 100, east_m=8000)["coordinates"]
    near = rectangle(*AOHAN, 100, 100, east_m=400, north_m=300)["coordinates"]
    refused({"type": "MultiPolygon", "coordinates": [far, near]})


@pytest.mark.postgres
def test_two_overlapping_parcels_submitted_at_once_are_not_both_accepted(pg_app):
    aohan()
    db.session.commit()
    shapes = [rectangle(*AOHAN, 500, 500, east_m=20 * i) for i in range(6)]

    def submit(i):
        enroll(shapes[i], holder=f"户{i}")
        db.session.commit()
        return "enrolled"

    outcomes = race(pg_app, 6, submit, refused=services.PipelineError)
    assert outcomes.count("enrolled") == 1 and outcomes.count("parcel_overlap") == 5
    assert db.session.scalar(select(func.count(Parcel.id))) == 1


@pytest.mark.postgres
def test_apart_parcels_submitted_at_once_are_all_accepted(pg_app):
    aohan()
    db.session.commit()

    def submit(i):
        enroll(
            polygon([offset(*AOHAN, 600 * i + dx, dy) for dx, dy in ((0, 0), (500, 0), (250, 400))]),
            holder=f"户{i}",
        )
        db.session.commit()
        return "enrolled"

    assert race(pg_app, 6, submit, refused=services.PipelineError) == ["enrolled"] * 6
