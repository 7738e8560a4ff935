"""Where each county-level unit lies, coarsely: a bounding box (west, south, east, north; WGS 84
degrees) drawn generously around the unit on the published maps of Chifeng. A parcel whose
boundary leaves its unit's box is refused as outside its county.

No official boundaries are available offline, so these boxes are deliberately coarse: they catch
a parcel filed under the wrong county or far outside Chifeng, not one a few hundred metres over a
county line (neighbouring boxes overlap). Replace them with the units' surveyed boundaries when the
natural resources bureau supplies them. A unit not listed (a test's) is held to Chifeng's box.
"""

#: Chifeng as a whole (about 116.2–121.0 E, 41.3–45.4 N), with a margin.
CITY = (116.0, 41.2, 121.1, 45.5)

COUNTY_EXTENTS = {
    "hongshan": (118.55, 42.05, 119.35, 42.55),
    "yuanbaoshan": (118.95, 41.85, 119.95, 42.55),
    "songshan": (117.85, 42.05, 119.35, 43.05),
    "ningcheng": (118.35, 41.25, 119.65, 41.95),
    "linxi": (117.45, 43.15, 118.85, 44.05),
    "alukeerqin": (118.95, 43.15, 121.05, 45.45),
    "balinzuo": (118.75, 43.45, 120.05, 44.95),
    "balinyou": (118.15, 43.15, 119.55, 44.55),
    "keshiketeng": (116.15, 42.65, 118.35, 44.05),
    "wengniute": (117.75, 42.25, 120.55, 43.45),
    "kalaqin": (118.15, 41.55, 119.35, 42.35),
    "aohan": (119.45, 41.65, 120.95, 42.95),
}


def extent_of(region_code: str) -> tuple[float, float, float, float]:
    return COUNTY_EXTENTS.get(region_code, CITY)


def within(bounds, region_code: str) -> bool:
    """Whether a bounding box (west, south, east, north) lies inside the unit's extent."""
    west, south, east, north = extent_of(region_code)
    return west <= bounds[0] and south <= bounds[1] and bounds[2] <= east and bounds[3] <= north
