"""The demo data set: Chifeng's 12 county-level units, projects across them, issued batches.

Deterministic: the same scale gives the same data, serial for serial. Quantities, prices and
bodies are realistic in size, but the projects are illustrative, not real registrations.
"""

import csv
import json
import math
import random
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

REGIONS_CSV = Path(__file__).with_name("chifeng-regions.csv")

#: Approximate seat of each unit (lat, lon), for drawing illustrative project boundaries.
REGION_CENTRES = {
    "hongshan": (42.27, 118.96),
    "yuanbaoshan": (42.04, 119.29),
    "songshan": (42.29, 118.60),
    "ningcheng": (41.60, 119.34),
    "linxi": (43.61, 118.05),
    "alukeerqin": (43.88, 120.06),
    "balinzuo": (43.98, 119.38),
    "balinyou": (43.53, 118.67),
    "keshiketeng": (43.26, 117.54),
    "wengniute": (42.94, 119.01),
    "kalaqin": (41.93, 118.71),
    "aohan": (42.29, 119.92),
}

VINTAGES = (2021, 2022, 2023, 2024, 2025)


@dataclass(frozen=True)
class ProjectTemplate:
    code: str
    region: str
    type: str
    name_zh: str
    name_en: str
    area_ha: int


PROJECTS = (
    ProjectTemplate(
        "AH-FOR-01",
        "aohan",
        "forestry",
        "敖汉旗人工造林碳汇项目",
        "Aohan Banner Afforestation Carbon Sink Project",
        12500,
    ),
    ProjectTemplate(
        "AH-FOR-02",
        "aohan",
        "forestry",
        "敖汉旗大黑山造林碳汇项目",
        "Aohan Daheishan Afforestation Project",
        6800,
    ),
    ProjectTemplate(
        "KS-FOR-01",
        "keshiketeng",
        "forestry",
        "克什克腾旗沙地造林碳汇项目",
        "Hexigten Sandland Afforestation Project",
        9400,
    ),
    ProjectTemplate(
        "WN-FOR-01",
        "wengniute",
        "forestry",
        "翁牛特旗科尔沁沙地造林碳汇项目",
        "Ongniud Horqin Sandland Afforestation Project",
        11200,
    ),
    ProjectTemplate(
        "KL-FOR-01",
        "kalaqin",
        "forestry",
        "喀喇沁旗山地造林碳汇项目",
        "Harqin Mountain Afforestation Project",
        5300,
    ),
    ProjectTemplate(
        "NC-FOR-01",
        "ningcheng",
        "forestry",
        "宁城县荒山造林碳汇项目",
        "Ningcheng Barren-Hill Afforestation Project",
        4700,
    ),
    ProjectTemplate(
        "BY-FOR-01",
        "balinyou",
        "forestry",
        "巴林右旗造林碳汇项目",
        "Bairin Right Afforestation Project",
        7600,
    ),
    ProjectTemplate(
        "LX-FOR-01", "linxi", "forestry", "林西县造林碳汇项目", "Linxi Afforestation Project", 3900
    ),
    ProjectTemplate(
        "AR-GRA-01",
        "alukeerqin",
        "grassland",
        "阿鲁科尔沁旗草原可持续管理碳汇项目",
        "Ar Horqin Sustainable Grassland Management Project",
        28000,
    ),
    ProjectTemplate(
        "KS-GRA-01",
        "keshiketeng",
        "grassland",
        "克什克腾旗贡格尔草原碳汇项目",
        "Hexigten Gongger Grassland Carbon Project",
        35000,
    ),
    ProjectTemplate(
        "BZ-GRA-01",
        "balinzuo",
        "grassland",
        "巴林左旗退化草原修复碳汇项目",
        "Bairin Left Degraded Grassland Restoration Project",
        19000,
    ),
    ProjectTemplate(
        "BY-GRA-01",
        "balinyou",
        "grassland",
        "巴林右旗草原轮牧碳汇项目",
        "Bairin Right Rotational Grazing Project",
        22000,
    ),
    ProjectTemplate(
        "KS-WET-01",
        "keshiketeng",
        "wetland",
        "克什克腾旗达里诺尔湿地保护碳汇项目",
        "Hexigten Dalinor Wetland Conservation Project",
        8200,
    ),
    ProjectTemplate(
        "WN-WET-01",
        "wengniute",
        "wetland",
        "翁牛特旗西拉木伦河湿地恢复项目",
        "Ongniud Xar Moron River Wetland Restoration Project",
        4100,
    ),
    ProjectTemplate(
        "NC-CRO-01",
        "ningcheng",
        "cropland",
        "宁城县保护性耕作碳汇项目",
        "Ningcheng Conservation Tillage Project",
        15000,
    ),
    ProjectTemplate(
        "SS-CRO-01",
        "songshan",
        "cropland",
        "松山区农田土壤固碳项目",
        "Songshan Cropland Soil Carbon Project",
        12000,
    ),
    ProjectTemplate(
        "AH-CRO-01",
        "aohan",
        "cropland",
        "敖汉旗旱作农业固碳项目",
        "Aohan Dryland Farming Soil Carbon Project",
        9800,
    ),
    ProjectTemplate(
        "YB-MAN-01",
        "yuanbaoshan",
        "manure",
        "元宝山区奶牛场粪污甲烷回收项目",
        "Yuanbaoshan Dairy Manure Methane Recovery Project",
        60,
    ),
    ProjectTemplate(
        "HS-MAN-01",
        "hongshan",
        "manure",
        "红山区规模养殖场粪污资源化项目",
        "Hongshan Livestock Manure Management Project",
        45,
    ),
    ProjectTemplate(
        "LX-MAN-01",
        "linxi",
        "manure",
        "林西县肉牛养殖粪污处理项目",
        "Linxi Beef Cattle Manure Treatment Project",
        38,
    ),
)

METHODOLOGY = {
    "forestry": ("CCER", "CCER-14-001-V01"),
    "grassland": ("VCS", "VM0032"),
    "wetland": ("VCS", "VM0036"),
    "cropland": ("VCS", "VM0042"),
    "manure": ("VCS", "AMS-III.D"),
}

#: Tonnes per hectare-year range (manure: per "hectare" of barns, a proxy for herd size).
YIELD = {
    "forestry": (1.5, 4.0),
    "grassland": (0.3, 0.9),
    "wetland": (0.8, 2.2),
    "cropland": (0.4, 1.1),
    "manure": (80, 220),
}
#: Share of each VCS AFOLU issuance that goes to the non-permanence buffer.
BUFFER_SHARE = {"grassland": (0.10, 0.20), "wetland": (0.12, 0.20), "cropland": (0.10, 0.15)}

VALIDATORS = ("中国质量认证中心 (CQC)", "中环联合（北京）认证中心 (CEC)", "中国船级社质量认证有限公司 (CCSC)")
VCS_VALIDATORS = ("SCS Global Services", "Aster Global Environmental Solutions", "TÜV NORD CERT")

ORGS = (
    ("赤峰钢铁集团有限公司", "Chifeng Iron & Steel Group Co., Ltd.", "steel", True, True),
    ("赤峰有色金属冶炼有限公司", "Chifeng Non-ferrous Smelting Co., Ltd.", "nonferrous", True, True),
    (
        "赤峰建材水泥股份有限公司",
        "Chifeng Cement Building Materials Co., Ltd.",
        "building_materials",
        True,
        False,
    ),
    (
        "赤峰市机关事务服务中心",
        "Chifeng Municipal Government Affairs Service Centre",
        "government",
        False,
        False,
    ),
    ("赤峰学院", "Chifeng University", "public_institution", False, False),
    (
        "赤峰国际马拉松组委会",
        "Chifeng International Marathon Organising Committee",
        "event_organiser",
        False,
        False,
    ),
)


def regions():
    with REGIONS_CSV.open(encoding="utf-8") as f:
        for row in csv.DictReader(f):
            code = row["pinyin"].lower().rsplit(" ", 1)[0].replace(" ", "")
            yield {
                "code": code,
                "name_zh": row["name_zh"],
                "name_en": row["name_en"],
                "pinyin": row["pinyin"],
                "kind": row["kind"],
            }


def uscc_for(n: int) -> str:
    from portal.buyers.uscc import check_character

    # 91 = enterprise, 150400 = Chifeng's division code, then a 9-character organisation code.
    body = f"91150400MA{n:07d}"
    return body + check_character(body)


def boundary(rng: random.Random, region: str, area_ha: float) -> str:
    """An irregular polygon of about the project's area, near its unit's seat (GeoJSON, WGS84)."""
    lat, lon = REGION_CENTRES[region]
    lat += rng.uniform(-0.25, 0.25)
    lon += rng.uniform(-0.3, 0.3)
    radius_km = math.sqrt(area_ha / 100 / math.pi)
    points = []
    sides = rng.randint(6, 10)
    for i in range(sides):
        angle = 2 * math.pi * i / sides + rng.uniform(-0.2, 0.2)
        r = radius_km * rng.uniform(0.7, 1.3)
        points.append(
            [
                round(lon + r * math.cos(angle) / (111.32 * math.cos(math.radians(lat))), 5),
                round(lat + r * math.sin(angle) / 110.57, 5),
            ]
        )
    points.append(points[0])
    return json.dumps({"type": "Polygon", "coordinates": [points]})


def price(rng: random.Random, standard: str) -> Decimal:
    low, high = (62, 90) if standard == "CCER" else (60, 80)
    return Decimal(rng.randint(low * 2, high * 2)) / 2  # whole or half yuan


def issued_on(rng: random.Random, vintage: int) -> date:
    month = rng.randint(5, 10)
    return date(vintage + 1, month, rng.randint(1, 28))


#: Events that neutralise their footprint (beneficiary, what the certificate says).
EVENTS = (
    ("赤峰国际马拉松组委会", "抵销2025赤峰国际马拉松（9月14日）的碳排放"),
    ("红山文化旅游节组委会", "抵销2025红山文化旅游节（7月18日–20日）的碳排放"),
    ("赤峰市生态环境局", "抵销2025年全市生态环境工作会议的碳排放"),
    ("内蒙古草原音乐节", "抵销2025草原音乐节（8月2日–3日）的碳排放"),
    ("赤峰学院", "抵销2025年毕业典礼的碳排放"),
    ("Chifeng Grassland Forum", "Neutralising the Chifeng Grassland Forum, 2025-06-10–11"),
)
