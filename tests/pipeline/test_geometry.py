"""Boundaries: what is refused, and areas on the equal-area projection against geodesic areas."""

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyproj import Geod
from shapely.geometry import shape as to_shape

from portal.pipeline import geometry
from portal.pipeline.geometry import GeometryError, parse_boundary
from tests.pipeline.helpers import AOHAN, FOREST_COMPARTMENT, offset, polygon, rectangle

GEOD = Geod(ellps="WGS84")


def geodesic_ha(shape) -> float:
    return abs(GEOD.geometry_area_perimeter(shape)[0]) / 10_000


def test_a_square_kilometre_in_chifeng_is_a_hundred_hectares(app):
    square = parse_boundary(rectangle(*AOHAN, 1000, 1000))
    assert geometry.area_ha(square) == pytest.approx(100, rel=0.005)


def test_a_surveyed_outline_measures_as_on_the_ellipsoid(app):
    compartment = parse_boundary(FOREST_COMPARTMENT)
    assert geometry.area_ha(compartment) == pytest.approx(geodesic_ha(compartment), rel=1e-4)


@settings(max_examples=60, deadline=None)
@given(
    lon=st.floats(116.5, 120.5),
    lat=st.floats(41.5, 45.0),
    width=st.floats(30, 20_000),
    height=st.floats(30, 20_000),
)
def test_equal_area_hectares_agree_with_geodesic_ones_anywhere_in_chifeng(lon, lat, width, height):
    parcel = parse_boundary(rectangle(lon, lat, width, height))
    assert geometry.area_ha(parcel) == pytest.approx(geodesic_ha(parcel), rel=5e-4)


def test_a_feature_and_a_multipolygon_are_read(app):
    one, two = rectangle(*AOHAN, 100, 100), rectangle(*AOHAN, 100, 100, east_m=500)
    multi = {"type": "MultiPolygon", "coordinates": [one["coordinates"], two["coordinates"]]}
    assert geometry.area_ha(parse_boundary(multi)) == pytest.approx(2, rel=0.01)
    feature = {"type": "Feature", "properties": {}, "geometry": one}
    assert parse_boundary(json.dumps(feature)).equals(to_shape(one))


def _bowtie():
    a, b = offset(*AOHAN, 0, 0), offset(*AOHAN, 500, 500)
    c, d = offset(*AOHAN, 500, 0), offset(*AOHAN, 0, 500)
    return polygon([a, b, c, d])


def _huge():
    ring = [offset(*AOHAN, 1000 * math.cos(t / 16000), 1000 * math.sin(t / 16000)) for t in range(100_001)]
    return {"type": "Polygon", "coordinates": [ring + [ring[0]]]}


BAD = {
    "self-intersecting": (_bowtie(), "invalid_geometry"),
    "empty": ({"type": "Polygon", "coordinates": []}, "empty_geometry"),
    "empty ring": ({"type": "Polygon", "coordinates": [[]]}, "empty_geometry"),
    "a line, not an area": (polygon([[119.90, 42.3], [119.91, 42.3], [119.92, 42.3]]), "empty_geometry"),
    "open ring": (
        {"type": "Polygon", "coordinates": [rectangle(*AOHAN, 10, 10)["coordinates"][0][:-1]]},
        "open_ring",
    ),
    "projected metres": (polygon([[500000, 4680000], [501000, 4680000], [501000, 4681000]]), "not_wgs84"),
    "named other CRS": (
        {**rectangle(*AOHAN, 10, 10), "crs": {"type": "name", "properties": {"name": "EPSG:3857"}}},
        "not_wgs84",
    ),
    # A ``crs`` whose properties are not an object names no system: not WGS 84 (was a 500).
    **{
        f"crs properties {name}": ({**rectangle(*AOHAN, 10, 10), "crs": {"properties": value}}, "not_wgs84")
        for name, value in (("null", None), ("text", "x"), ("list", [1]))
    },
    "crs properties in a feature's geometry": (
        {"type": "Feature", "crs": [], "geometry": {**rectangle(*AOHAN, 10, 10), "crs": {"properties": []}}},
        "not_wgs84",
    ),
    "a point": ({"type": "Point", "coordinates": list(AOHAN)}, "invalid_geojson"),
    "not JSON": ("POLYGON((119 42, 120 42, 120 43, 119 42))", "invalid_geojson"),
    "a list": ([1, 2, 3], "invalid_geojson"),
    "text coordinates": ({"type": "Polygon", "coordinates": [[["a", "b"]] * 4]}, "invalid_geojson"),
    "booleans": ({"type": "Polygon", "coordinates": [[[True, False]] * 4]}, "invalid_geojson"),
    "ragged": (
        {"type": "Polygon", "coordinates": [[[119.9, 42.3], [119.91], [119.9, 42.31], [119.9, 42.3]]]},
        "invalid_geojson",
    ),
    "infinite": ({"type": "Polygon", "coordinates": [[[1e400, 42.3]] * 4]}, "invalid_geojson"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_boundary_is_refused_saying_why(app, case):
    value, code = BAD[case]
    with pytest.raises(GeometryError) as refused:
        parse_boundary(value)
    assert refused.value.code == code and refused.value.message


def test_more_than_a_hundred_thousand_vertices_are_refused(app):
    with pytest.raises(GeometryError) as refused:
        parse_boundary(_huge())
    assert refused.value.code == "too_many_vertices"


def test_cells_of_two_overlapping_boxes_meet():
    a = parse_boundary(rectangle(*AOHAN, 3000, 3000))
    b = parse_boundary(rectangle(*AOHAN, 3000, 3000, east_m=2900, north_m=2900))
    assert set(geometry.cells(a.bounds)) & set(geometry.cells(b.bounds))
    assert set(geometry.lock_cells(a.bounds)) & set(geometry.lock_cells(b.bounds))
