"""Shapes in Chifeng's coordinates and a small pipeline world for the tests."""

import json
from datetime import date

from pyproj import Geod

from portal.catalog.models import Region
from portal.extensions import db

#: Metres on the WGS 84 ellipsoid (pyproj's geodesics), so that shapes have the sizes they say.
GEOD = Geod(ellps="WGS84")


def offset(lon: float, lat: float, east_m: float, north_m: float) -> list[float]:
    """The position ``east_m`` metres east and then ``north_m`` metres north of (lon, lat)."""
    lon, lat, _back = GEOD.fwd(lon, lat, 90 if east_m >= 0 else 270, abs(east_m))
    lon, lat, _back = GEOD.fwd(lon, lat, 0 if north_m >= 0 else 180, abs(north_m))
    return [lon, lat]


def polygon(points) -> dict:
    ring = [list(p) for p in points]
    return {"type": "Polygon", "coordinates": [ring + [ring[0]]]}


def rectangle(lon, lat, width_m, height_m, east_m=0.0, north_m=0.0) -> dict:
    """A rectangle whose south-west corner is ``east_m``/``north_m`` metres from (lon, lat)."""
    return polygon(
        [
            offset(lon, lat, east_m, north_m),
            offset(lon, lat, east_m + width_m, north_m),
            offset(lon, lat, east_m + width_m, north_m + height_m),
            offset(lon, lat, east_m, north_m + height_m),
        ]
    )


#: A forest compartment near Aohan's seat (119.92 E, 42.29 N) as a survey would draw it: twelve
#: vertices, an irregular outline of about 1 × 0.8 km.
AOHAN = (119.92, 42.29)
FOREST_COMPARTMENT = polygon(
    [
        offset(*AOHAN, e, n)
        for e, n in (
            (0, 0),
            (180, -40),
            (420, -20),
            (650, 30),
            (900, 60),
            (1010, 250),
            (960, 520),
            (880, 760),
            (600, 820),
            (320, 790),
            (90, 600),
            (-30, 300),
        )
    ]
)


def region(code: str, name_zh: str, name_en: str) -> Region:
    found = db.session.query(Region).filter_by(code=code).one_or_none()
    if found is None:
        found = Region(code=code, name_zh=name_zh, name_en=name_en, pinyin=code, kind="banner")
        db.session.add(found)
        db.session.flush()
    return found


def aohan() -> Region:
    return region("aohan", "敖汉旗", "Aohan Banner")


def kalaqin() -> Region:
    return region("kalaqin", "喀喇沁旗", "Harqin Banner")


def geojson(shape: dict) -> str:
    return json.dumps(shape)


CREDITING = {"crediting_start": date(2024, 1, 1), "crediting_end": date(2053, 12, 31)}


def project_values(code="AH-PIPE-01", county="aohan", **extra) -> dict:
    return {
        "code": code,
        "name_zh": "敖汉旗造林碳汇项目",
        "name_en": "Aohan afforestation",
        "county": county,
        "standard": "CCER",
        "type": "forestry",
        "methodology": "CCER-14-001-V01",
        "reached_on": date(2025, 3, 1),
        "responsible_body": "赤峰市农投集团",
        **CREDITING,
        **extra,
    }


#: The smallest file the portal takes as a PDF (header and end marker).
PDF = b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
