"""The demo's project pipeline: rights holders, joint development agreements, parcels and projects
at every stage in each of the 12 county-level units, with forecasts and a county reviewer.

**The parcels are illustrative.** No real parcel boundaries are available offline: each unit's
parcels are irregular polygons drawn on a grid of 1.5 km cells around a point near its seat
(``data.REGION_CENTRES``), one polygon inside each cell, so that they never overlap each other and
stay well inside the unit's coarse extent (``portal.pipeline.extents``); at a large scale a unit's
cells shrink as far as its extent and its neighbours' grids require (``grid``). They go through
the same checks as any parcel (validity, county extent, overlap)."""

import math
import random
from datetime import date, datetime, time, timedelta

from portal.catalog.models import Region
from portal.demo import data
from portal.pipeline import extents, services
from portal.pipeline.models import STAGES, Stage
from portal.timeutil import BEIJING, as_of

#: Parcels per county and per unit of scale; projects per county (whatever the scale).
PARCELS_PER_COUNTY = 8
PROJECTS_PER_COUNTY = 3
#: The grid the demo parcels are drawn on: a cell's side, in degrees of latitude (about 1.5 km).
CELL = 0.0135

HOLDERS = (
    ("{county}国有林场", "state_forest_farm", "forest"),
    ("{county}某嘎查村集体经济组织", "collective", "grassland"),
    ("{county}某农牧户联户", "household_contract", "cropland"),
)
BODIES = {
    Stage.VALIDATION: ("中环联合（北京）认证中心有限公司", "中国质量认证中心"),
    Stage.VERIFICATION: ("中国船级社质量认证有限公司", "广州赛宝认证中心服务有限公司"),
}
#: How far each demo project has come: the county's projects take these stages in turn.
REACHED = (
    Stage.ASSESSMENT,
    Stage.ASSESSMENT,
    Stage.DESIGN_DOCUMENT,
    Stage.VALIDATION,
    Stage.REGISTRATION,
    Stage.MONITORING,
    Stage.MONITORING_REPORT,
    Stage.VERIFICATION,
)


def grid(region_code: str, count: int) -> tuple[int, float, float, float]:
    """Where a unit's ``count`` demo parcels go: ``(cells per row, cell side in degrees of
    latitude, south edge, west edge)`` of a square-ish grid centred south-west of the unit's seat.
    Cells are ``CELL`` wide unless the grid would then reach past half-way to another unit's
    grid or out of the unit's extent (a small district at a large scale): then smaller, so that
    no two units' parcels meet and every parcel stays inside its unit."""
    lat, lon = _centre(region_code)
    per_row = math.ceil(math.sqrt(count))
    rows = math.ceil(count / per_row)
    scale = math.cos(math.radians(lat))  # degrees of longitude to degrees of latitude
    nearest = min(
        max(abs(lat - other_lat), abs(lon - other_lon) * scale)
        for other_lat, other_lon in (_centre(code) for code in data.REGION_CENTRES if code != region_code)
    )
    west, south, east, north = extents.extent_of(region_code)
    edge = min(lat - south, north - lat, (lon - west) * scale, (east - lon) * scale)
    half = min(nearest * 0.45, edge * 0.9)
    cell = min(CELL, 2 * half / per_row)
    return per_row, cell, lat - rows * cell / 2, lon - per_row * cell / 2 / scale


def _centre(region_code: str) -> tuple[float, float]:
    lat, lon = data.REGION_CENTRES[region_code]
    return lat - 0.06, lon - 0.06


def _polygon(rng: random.Random, lon: float, lat: float, cell: float = CELL) -> dict:
    """An irregular polygon inside the grid cell of side ``cell`` whose south-west corner is (lon, lat)."""
    width = cell / math.cos(math.radians(lat))
    centre = (lon + width / 2, lat + cell / 2)
    sides = rng.randint(7, 12)
    ring = []
    for i in range(sides):
        angle = 2 * math.pi * i / sides + rng.uniform(-0.15, 0.15)
        r = rng.uniform(0.28, 0.45)
        ring.append(
            [
                round(centre[0] + r * width * math.cos(angle), 6),
                round(centre[1] + r * cell * math.sin(angle), 6),
            ]
        )
    return {"type": "Polygon", "coordinates": [ring + [ring[0]]]}


def load(rng: random.Random, scale: int, today: date, password: str) -> dict:
    """Parcels, agreements and projects in every county, and a county reviewer for each (signing
    in with ``password``); returns counts."""
    from sqlalchemy import select

    from portal.buyers import services as buyers
    from portal.extensions import db

    regions = list(db.session.scalars(select(Region).order_by(Region.id)))
    counts = {"parcels": 0, "agreements": 0, "pipeline_projects": 0}
    reviewers = {}
    for region in regions:
        reviewers[region.id] = buyers.create_user(
            email=f"county-{region.code}@demo.local",
            password=password,
            role="county",
            region=region,
            actor="demo",
        )
    for n, region in enumerate(regions):
        holders = []
        for k, (name, tenure, land_type) in enumerate(HOLDERS):
            holder = services.rights_holder(region, name.format(county=region.name_zh), actor="demo")
            agreement = services.create_agreement(
                holder,
                number=f"CFNT-{region.code.upper()}-{k + 1:03d}",
                signed_on=today - timedelta(days=rng.randint(200, 900)),
                term_years=rng.choice((30, 40, 50)),
                document=None,
                actor="demo",
            )
            holders.append((agreement, tenure, land_type))
            counts["agreements"] += 1
        count = PARCELS_PER_COUNTY * scale
        per_row, cell, lat0, lon0 = grid(region.code, count)
        parcels = []
        for i in range(count):
            agreement, tenure, land_type = holders[i % len(holders)]
            row, column = divmod(i, per_row)
            lat = lat0 + row * cell
            lon = lon0 + column * cell / math.cos(math.radians(lat))
            parcels.append(
                services.enroll_parcel(
                    county=region.code,
                    land_type=land_type,
                    tenure=tenure,
                    rights_holder_name=agreement.rights_holder.name,
                    boundary=_polygon(rng, lon, lat, cell),
                    agreement=agreement,
                    actor="demo",
                )
            )
            counts["parcels"] += 1
        forest = [p for p in parcels if p.land_type == "forest"]
        for j in range(PROJECTS_PER_COUNTY):
            reached = REACHED[(n + j * 5) % len(REACHED)]
            own = forest[j::PROJECTS_PER_COUNTY][:3] if forest else parcels[j::PROJECTS_PER_COUNTY][:3]
            _project(rng, region, j, own, reached, reviewers[region.id], today)
            counts["pipeline_projects"] += 1
    return counts


def _project(rng, region, j, parcels, reached: Stage, reviewer, today: date) -> None:
    code = f"CF-{region.code.upper()}-P{j + 1:02d}"
    start = date(today.year - rng.randint(0, 1), 1, 1)
    # Stages two months apart, the first about sixteen months ago; the filing follows the review.
    timeline = [today - timedelta(days=60 * (len(STAGES) - i) - (30 if i else 0)) for i in range(len(STAGES))]
    project = services.create_project(
        {
            "code": code,
            "name_zh": f"{region.name_zh}造林碳汇项目（{j + 1}期）",
            "name_en": f"{region.name_en} afforestation, phase {j + 1}",
            "county": region.code,
            "standard": "CCER",
            "type": "forestry",
            "methodology": "CCER-14-001-V01",
            "crediting_start": start,
            "crediting_end": date(start.year + 30, 12, 31),
            "reached_on": timeline[0],
            "responsible_body": "赤峰市农投集团",
        },
        [p.code for p in parcels],
        actor="demo",
    )
    hectares = sum(float(p.area_ha) for p in parcels)
    tonnes = int(hectares * rng.uniform(4, 7))  # young plantations: a few tonnes a hectare a year
    services.revise(
        project,
        [
            {"vintage": year, "expected_t": tonnes, "low_t": int(tonnes * 0.7), "high_t": int(tonnes * 1.25)}
            for year in range(start.year + 1, start.year + 6)
        ],
        note="可行性研究估算",
        actor="demo",
    )
    if reached == Stage.ASSESSMENT and j % 2 == 0:
        return  # waiting for the county's review
    with as_of(datetime.combine(timeline[0] + timedelta(days=10), time(10), BEIJING)):  # reviewed then
        services.review(
            project, decision="approved", comments="边界与权属核实无误", reviewer=reviewer, actor="demo"
        )
    if reached == Stage.ASSESSMENT:
        return
    services.record_filing(
        project,
        reference=f"赤林草碳备〔{today.year}〕{j + 10}号",
        filed_on=timeline[0] + timedelta(days=20),
        actor="demo",
    )
    for index, stage in enumerate(STAGES[1:], start=1):
        services.advance(
            project,
            stage,
            reached_on=timeline[index],
            responsible_body=rng.choice(BODIES[stage]) if stage in BODIES else "",
            reference=f"CCER-{region.code.upper()}-{j + 1:03d}" if stage == Stage.REGISTRATION else "",
            actor="demo",
        )
        if stage == reached:
            return
