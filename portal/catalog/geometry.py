"""A project's boundary: GeoJSON parsed within bounds, and drawn as SVG paths for its page."""

import math
from dataclasses import dataclass

from flask_babel import gettext as _

from portal.core import jsontext


@dataclass
class BoundaryDrawing:
    """A project boundary projected into an SVG viewBox (0..width, 0..height)."""

    paths: list[str]
    width: int
    height: int
    scale_km: float  #: the length the scale bar stands for
    scale_px: float
    centre: tuple[float, float]  #: (lat, lon)


#: A boundary as typed into the project form (characters there, UTF-8 bytes when parsed: the
#: same for GeoJSON's ASCII), checked again when it is parsed.
MAX_BOUNDARY_SIZE = 200_000
#: A GeoJSON MultiPolygon nests 5 levels (object, polygons, rings, positions, numbers).
MAX_BOUNDARY_DEPTH = 8
#: Positions in all rings together, and rings in all polygons: more than a surveyed boundary
#: needs, little enough to draw on every project page.
MAX_BOUNDARY_POINTS = 20_000
MAX_BOUNDARY_RINGS = 1_000


class BoundaryError(ValueError):
    """A boundary that cannot be used; ``message`` is translated."""

    def __init__(self, message: str):
        self.message = message
        super().__init__(message)


def boundary_geometry(geojson: str) -> dict:
    """The GeoJSON text parsed within bounds (size, nesting): BoundaryError otherwise."""
    try:
        geometry = jsontext.loads(geojson, max_bytes=MAX_BOUNDARY_SIZE, max_depth=MAX_BOUNDARY_DEPTH)
    except jsontext.JsonRefused as exc:
        raise BoundaryError(exc.message) from None
    if not isinstance(geometry, dict):
        raise BoundaryError(_("The boundary must be a GeoJSON Polygon or MultiPolygon in WGS84."))
    return geometry


def boundary_rings(geojson: str) -> list[list[tuple[float, float]]]:
    """The rings of a GeoJSON Polygon or MultiPolygon as (lon, lat) pairs in WGS84; BoundaryError
    saying what is wrong otherwise (too large, nested too deeply, too many points, not a polygon,
    coordinates off the globe)."""
    geometry = boundary_geometry(geojson)
    invalid = BoundaryError(_("The boundary must be a GeoJSON Polygon or MultiPolygon in WGS84."))
    kind, coordinates = geometry.get("type"), geometry.get("coordinates")
    if kind == "Polygon":
        polygons = [coordinates]
    elif kind == "MultiPolygon":
        polygons = coordinates
    else:
        raise invalid
    if not isinstance(polygons, list) or not all(isinstance(p, list) for p in polygons):
        raise invalid
    raw_rings = [ring for polygon in polygons for ring in polygon]
    if not all(isinstance(ring, list) for ring in raw_rings):
        raise invalid
    if len(raw_rings) > MAX_BOUNDARY_RINGS or sum(map(len, raw_rings)) > MAX_BOUNDARY_POINTS:
        raise BoundaryError(
            _(
                "The boundary has too many points: at most %(points)s in at most %(rings)s rings.",
                points=MAX_BOUNDARY_POINTS,
                rings=MAX_BOUNDARY_RINGS,
            )
        )
    try:
        rings = [[(float(lon), float(lat)) for lon, lat, *_ in ring] for ring in raw_rings]
    except (TypeError, ValueError):
        raise invalid from None
    points = [p for ring in rings for p in ring]
    if not points or not all(-180 <= lon <= 180 and -90 <= lat <= 90 for lon, lat in points):
        raise invalid
    return rings


def boundary_drawing(geojson: str | None, width: int = 480, height: int = 320, margin: int = 24):
    """Polygons of a GeoJSON geometry as SVG path data, or None when there is nothing valid.

    Equirectangular projection around the centre latitude: faithful at project scale.
    """
    if not geojson:
        return None
    try:
        rings = boundary_rings(geojson)
    except BoundaryError:
        return None
    points = [p for ring in rings for p in ring]
    lons, lats = [p[0] for p in points], [p[1] for p in points]
    west, east, south, north = min(lons), max(lons), min(lats), max(lats)
    centre_lat = (south + north) / 2
    kx = 111.32 * math.cos(math.radians(centre_lat))  # km per degree of longitude
    ky = 110.57
    span_x = max((east - west) * kx, 1e-6)
    span_y = max((north - south) * ky, 1e-6)
    scale = min((width - 2 * margin) / span_x, (height - 2 * margin) / span_y)  # px per km
    off_x = (width - span_x * scale) / 2
    off_y = (height - span_y * scale) / 2

    def project(lon, lat):
        x = off_x + (lon - west) * kx * scale
        y = height - (off_y + (lat - south) * ky * scale)
        return f"{x:.1f},{y:.1f}"

    paths = [
        "M" + " L".join(project(lon, lat) for lon, lat in ring) + " Z" for ring in rings if len(ring) >= 3
    ]
    if not paths:
        return None
    nice = [0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100]
    target_km = span_x / 4
    scale_km = max([n for n in nice if n <= target_km] or [nice[0]])
    return BoundaryDrawing(
        paths,
        width,
        height,
        scale_km,
        scale_km * scale,
        (round(centre_lat, 4), round((west + east) / 2, 4)),
    )
