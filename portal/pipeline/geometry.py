"""A parcel's boundary: GeoJSON read within bounds into a valid shapely geometry in WGS 84, its area
in hectares on an equal-area projection, the grid cells it covers and the county it must lie in.

Every refusal is a ``GeometryError`` saying what is wrong, in the reader's language.
"""

from __future__ import annotations

import json
import math
import threading
from typing import TYPE_CHECKING

from flask_babel import gettext as _

from portal.pipeline.errors import PipelineError

if TYPE_CHECKING:
    import numpy as np
    from pyproj import Transformer
    from shapely.geometry import MultiPolygon, Polygon

# numpy, shapely and pyproj (some 40 MB in each worker) are imported where a boundary is read:
# a worker that never reads one, as most serve only pages, never loads them.

#: More positions than any surveyed parcel needs; the limit the API states.
MAX_VERTICES = 100_000
#: Nesting of a GeoJSON Feature holding a MultiPolygon, with room to spare.
MAX_DEPTH = 10
#: The coordinate reference systems a GeoJSON ``crs`` member may name: WGS 84 longitude/latitude.
WGS84_NAMES = frozenset(
    {
        "urn:ogc:def:crs:ogc:1.3:crs84",
        "urn:ogc:def:crs:epsg::4326",
        "epsg:4326",
        "crs84",
        "wgs84",
    }
)
#: Lambert azimuthal equal-area, centred on Chifeng: areas are exact on it (the projection keeps
#: area everywhere; centring it here keeps shapes, and so the rounding, good too).
EQUAL_AREA = "+proj=laea +lat_0=43 +lon_0=119 +x_0=0 +y_0=0 +datum=WGS84 +units=m +no_defs"
#: Side of the grid cells whose numbers index the parcels (about 4 × 5.5 km in Chifeng).
CELL_DEGREES = 0.05
#: Side of the cells locked while a boundary is checked and stored (about 40 × 55 km): two
#: overlapping boundaries share at least one of them, so they are checked one after the other.
LOCK_DEGREES = 0.5
#: Hectares of overlap tolerated between two boundaries (100 m², a quarter of the smallest plot
#: CCER afforestation admits): surveys of neighbouring parcels never meet to the centimetre.
OVERLAP_TOLERANCE_HA = 0.01

_local = threading.local()


class GeometryError(PipelineError):
    """A boundary that cannot be used (400): not GeoJSON, not a polygon, empty, too large, not
    WGS 84, self-intersecting, or outside its county."""

    def __init__(self, code: str, message: str):
        super().__init__(code, message, 400, "boundary")


def _not_geojson() -> GeometryError:
    return GeometryError("invalid_geojson", _("The boundary must be a GeoJSON Polygon or MultiPolygon."))


def _geometry_object(value) -> dict:
    """The geometry member of ``value`` (GeoJSON text, or already parsed): a Polygon or a
    MultiPolygon, possibly inside a Feature; its ``crs``, if any, must be WGS 84."""
    if isinstance(value, str | bytes):
        from portal.core import jsontext

        try:
            value = jsontext.loads(value, max_bytes=8 * 1024 * 1024, max_depth=MAX_DEPTH)
        except jsontext.JsonRefused:
            raise _not_geojson() from None
    if not isinstance(value, dict):
        raise _not_geojson()
    crs = value.get("crs")
    if value.get("type") == "Feature":
        value = value.get("geometry")
        if not isinstance(value, dict):
            raise _not_geojson()
        crs = crs or value.get("crs")
    if crs is not None:
        properties = crs.get("properties") if isinstance(crs, dict) else None
        name = properties.get("name") if isinstance(properties, dict) else None
        if not isinstance(name, str) or name.strip().lower() not in WGS84_NAMES:
            raise GeometryError(
                "not_wgs84",
                _("The boundary must be in WGS 84 longitude and latitude (EPSG:4326), not another system."),
            )
    if value.get("type") not in ("Polygon", "MultiPolygon"):
        raise _not_geojson()
    return value


def _ring(raw, counted: list[int]) -> np.ndarray:
    import numpy as np

    if not isinstance(raw, list):
        raise _not_geojson()
    counted[0] += len(raw)
    if counted[0] > MAX_VERTICES:
        raise GeometryError(
            "too_many_vertices",
            _("The boundary has more than %(n)s vertices; simplify it first.", n=f"{MAX_VERTICES:,}"),
        )
    if len(raw) < 4:
        raise GeometryError("empty_geometry", _("Each ring of the boundary needs at least four positions."))
    try:
        points = np.array(raw)
    except ValueError:  # ragged positions
        raise _not_geojson() from None
    if points.ndim != 2 or points.shape[1] not in (2, 3) or points.dtype.kind not in "iuf":
        raise _not_geojson()
    points = points[:, :2].astype(float)
    if not np.isfinite(points).all():
        raise _not_geojson()
    lon, lat = points[:, 0], points[:, 1]
    if (np.abs(lon) > 180).any() or (np.abs(lat) > 90).any():
        raise GeometryError(
            "not_wgs84",
            _("The boundary's coordinates are not longitude and latitude in degrees (WGS 84)."),
        )
    if not np.array_equal(points[0], points[-1]):
        raise GeometryError("open_ring", _("Each ring of the boundary must end where it starts."))
    return points


def parse_boundary(value) -> Polygon | MultiPolygon:
    """``value`` (GeoJSON text or a parsed object) as a valid, non-empty shapely geometry in
    WGS 84 longitude/latitude; GeometryError otherwise."""
    import shapely
    from shapely.geometry import MultiPolygon, Polygon

    geometry = _geometry_object(value)
    coordinates = geometry.get("coordinates")
    if not isinstance(coordinates, list) or not coordinates:
        raise GeometryError("empty_geometry", _("The boundary is empty."))
    polygons = [coordinates] if geometry["type"] == "Polygon" else coordinates
    counted = [0]
    built = []
    for polygon in polygons:
        if not isinstance(polygon, list) or not polygon:
            raise GeometryError("empty_geometry", _("The boundary is empty."))
        rings = [_ring(raw, counted) for raw in polygon]
        built.append(Polygon(rings[0], rings[1:]))
    shape = built[0] if geometry["type"] == "Polygon" else MultiPolygon(built)
    if shape.is_empty or shape.area == 0:
        raise GeometryError("empty_geometry", _("The boundary is empty."))
    if not shape.is_valid:
        reason = shapely.is_valid_reason(shape)
        raise GeometryError(
            "invalid_geometry",
            _(
                "The boundary is not a valid polygon (%(reason)s): it crosses itself or its rings overlap.",
                reason=reason,
            ),
        )
    return shape


def _to_equal_area() -> Transformer:
    from pyproj import Transformer

    transformer = getattr(_local, "transformer", None)
    if transformer is None:  # a Transformer is not to be shared between threads
        transformer = _local.transformer = Transformer.from_crs("EPSG:4326", EQUAL_AREA, always_xy=True)
    return transformer


def area_ha(shape) -> float:
    """Area of a WGS 84 geometry in hectares, on the equal-area projection."""
    import numpy as np
    import shapely

    if shape.is_empty:
        return 0.0
    transformer = _to_equal_area()

    def project(coords):
        x, y = transformer.transform(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    return shapely.transform(shape, project).area / 10_000


def to_geojson(shape) -> str:
    """The geometry as compact GeoJSON text (what is stored and served)."""
    from shapely.geometry import mapping

    return json.dumps(mapping(shape), separators=(",", ":"))


def from_geojson(text: str):
    import shapely

    return shapely.from_geojson(text)


def _grid(bounds, degrees: float) -> list[int]:
    west, south, east, north = bounds
    x0, x1 = math.floor((west + 180) / degrees), math.floor((east + 180) / degrees)
    y0, y1 = math.floor((south + 90) / degrees), math.floor((north + 90) / degrees)
    return [x * 100_000 + y for x in range(x0, x1 + 1) for y in range(y0, y1 + 1)]


def cells(bounds) -> list[int]:
    """The index cells a bounding box (west, south, east, north) covers."""
    return _grid(bounds, CELL_DEGREES)


def lock_cells(bounds) -> list[int]:
    """The lock cells a bounding box covers, in ascending order (the one order every writer
    takes them in, so that two writers never wait for each other in a circle)."""
    return sorted(_grid(bounds, LOCK_DEGREES))
