"""Emission factor sets: versioned JSON files in ``portal/offsets/factors/``, read-only at run time.

A set never changes once published: a corrected or updated factor is a new version (a new file),
so that every estimate can say exactly which figures it used, and an estimate made with an older
set can still be made again with it. Values are decimal strings in the file and
:class:`~decimal.Decimal` here; a number written as a JSON float is refused.

Flight factors have keys starting with ``air_``. From CFC-EF-2025.2 each of them covers a band of
flight distances (one flight, one way), written ``"leg_km": {"over": "500", "up_to": "3700"}``:
a flight of more than ``over`` and at most ``up_to`` km (the first band starts at zero, the last
has no end). The bands must follow one another without a gap.
"""

import json
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import cache
from pathlib import Path

from flask_babel import lazy_gettext as _l

from portal.core.i18n import current_language
from portal.offsets import factor_sources

FACTOR_DIR = Path(__file__).resolve().parent / "factors"
CURRENT_VERSION = "CFC-EF-2025.2"
_VERSION = re.compile(r"^CFC-EF-\d{4}\.\d{1,3}$")
#: "kgCO2e/passenger-km": the mass, the gas and the activity it is counted per.
_UNIT = re.compile(r"^(kg|t)(CO2|CO2e)/([A-Za-z0-9-]+)$")
_VALUE = re.compile(r"^\d{1,6}(\.\d{1,8})?$")

#: The activities factors are counted per: the name of a quantity, and of one unit ("per …").
ACTIVITY_UNITS = {
    "kWh": (_l("kWh"), _l("kWh")),
    "GJ": (_l("GJ"), _l("GJ")),
    "Nm3": (_l("Nm³"), _l("Nm³")),
    "L": (_l("litres"), _l("litre")),
    "passenger-km": (_l("passenger-km"), _l("passenger-km")),
    "vehicle-km": (_l("vehicle-km"), _l("vehicle-km")),
    "room-night": (_l("room-nights"), _l("room-night")),
    "meal": (_l("meals"), _l("meal")),
}
_TONNES_PER = {"kg": Decimal("0.001"), "t": Decimal(1)}


class FactorSetError(ValueError):
    """A factor file that is missing or malformed (a defect in the repository, not user input)."""


@dataclass(frozen=True)
class Factor:
    key: str
    label_en: str
    label_zh: str
    #: In ``unit``: kg or t of CO2 (or CO2e) per activity unit.
    value: Decimal
    unit: str
    year: int
    #: Where the value comes from, as the set cites it and in Chinese (``factor_sources``).
    source_en: str
    source_zh: str
    #: Marked ⚠ in the reference data: shown as uncertain wherever the factor appears.
    uncertain: bool
    #: Flights: the distances of one flight (km) the factor is for, as (over, up to); None for
    #: no limit. None for other factors, and for the flights of sets before bands.
    leg_km: tuple[Decimal | None, Decimal | None] | None = None

    def covers(self, leg_km: Decimal) -> bool:
        """Whether a flight of ``leg_km`` km is in this factor's band."""
        over, up_to = self.leg_km or (None, None)
        return (over is None or leg_km > over) and (up_to is None or leg_km <= up_to)

    @property
    def activity_unit(self) -> str:
        return _UNIT.match(self.unit).group(3)

    @property
    def tonnes_per_unit(self) -> Decimal:
        """The factor in tonnes per activity unit, exact."""
        return self.value * _TONNES_PER[_UNIT.match(self.unit).group(1)]

    @property
    def label(self) -> str:
        return self.label_en if current_language() == "en" else self.label_zh

    @property
    def unit_label(self) -> str:
        """The unit for display: ``kgCO₂e/passenger-km`` (the activity in the current language)."""
        mass, gas, activity = _UNIT.match(self.unit).groups()
        return f"{mass}{gas.replace('CO2', 'CO₂')}/{ACTIVITY_UNITS[activity][1]}"

    @property
    def activity_label(self) -> str:
        """The activity unit's name for a quantity of it: "room-nights"."""
        return str(ACTIVITY_UNITS[self.activity_unit][0])


@dataclass(frozen=True)
class FactorSet:
    version: str
    published: str
    #: Flights counted with radiative forcing (the non-CO2 effects at altitude).
    radiative_forcing: bool
    factors: dict[str, Factor]

    def __getitem__(self, key: str) -> Factor:
        return self.factors[key]

    def __iter__(self):
        return iter(self.factors.values())

    @property
    def any_uncertain(self) -> bool:
        return any(f.uncertain for f in self)

    @property
    def flights(self) -> list[Factor]:
        """The flight factors, in the file's order (shortest band first)."""
        return [f for f in self if f.key.startswith("air_")]

    @property
    def banded(self) -> bool:
        """Whether flights are classified by distance band (from CFC-EF-2025.2)."""
        return any(f.leg_km for f in self.flights)

    def flight_band(self, leg_km: Decimal) -> Factor | None:
        """The flight factor for one flight of ``leg_km`` km (None in a set without bands)."""
        return next((f for f in self.flights if f.leg_km and f.covers(leg_km)), None)


def _refuse_float(text):
    raise FactorSetError(f"factor values must be decimal strings, not JSON numbers: {text}")


@cache
def load(version: str = CURRENT_VERSION) -> FactorSet:
    """The factor set ``version``, checked whole: every factor has its unit, value, year and source."""
    if not _VERSION.match(version):
        raise FactorSetError(f"not a factor set version: {version!r}")
    path = FACTOR_DIR / f"{version}.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"), parse_float=_refuse_float)
    except FileNotFoundError:
        raise FactorSetError(f"no factor set {version}") from None
    if data.get("version") != version:
        raise FactorSetError(f"{path.name} says it is version {data.get('version')!r}")
    factors: dict[str, Factor] = {}
    for entry in data["factors"]:
        factor = _factor(entry)
        if factor.key in factors:
            raise FactorSetError(f"{version}: factor {factor.key} appears twice")
        factors[factor.key] = factor
    factor_set = FactorSet(version, str(data["published"]), bool(data["radiative_forcing"]), factors)
    _check_bands(factor_set)
    return factor_set


def _check_bands(factor_set: FactorSet) -> None:
    """Flight bands, if any: every flight has one, from zero on, each starting where the one
    before ends, the last without an end."""
    flights = factor_set.flights
    if not any(f.leg_km for f in flights):
        return
    edge = None
    for n, factor in enumerate(flights):
        if factor.leg_km is None:
            raise FactorSetError(f"{factor_set.version}: flight factor {factor.key} has no leg_km band")
        over, up_to = factor.leg_km
        if over != edge:
            raise FactorSetError(
                f"{factor_set.version}: the band of {factor.key} does not follow the one before"
            )
        if (up_to is None) != (n == len(flights) - 1) or (
            up_to is not None and over is not None and up_to <= over
        ):
            raise FactorSetError(f"{factor_set.version}: the band of {factor.key} is not a range")
        edge = up_to


def _factor(entry: dict) -> Factor:
    key = entry.get("key")
    missing = [
        name
        for name in ("key", "label", "unit", "value", "year", "source", "uncertain")
        if entry.get(name) in (None, "", {})
    ]
    if missing:
        raise FactorSetError(f"factor {key!r} lacks {', '.join(missing)}")
    label = entry["label"]
    if not (isinstance(label, dict) and label.get("en") and label.get("zh")):
        raise FactorSetError(f"factor {key}: the label needs en and zh")
    if not isinstance(entry["source"], str):
        raise FactorSetError(f"factor {key}: the source is a text")
    unit = _UNIT.match(entry["unit"])
    if unit is None or unit.group(3) not in ACTIVITY_UNITS:
        raise FactorSetError(f"factor {key}: unknown unit {entry['unit']!r}")
    if not (isinstance(entry["value"], str) and _VALUE.match(entry["value"])):
        raise FactorSetError(f"factor {key}: the value must be a decimal string")
    try:
        value = Decimal(entry["value"])
    except InvalidOperation:
        raise FactorSetError(f"factor {key}: bad value {entry['value']!r}") from None
    if value <= 0:
        raise FactorSetError(f"factor {key}: the value must be above zero")
    year = entry["year"]
    if not (isinstance(year, int) and not isinstance(year, bool) and 1990 <= year <= 2100):
        raise FactorSetError(f"factor {key}: bad year {year!r}")
    if not isinstance(entry["uncertain"], bool):
        raise FactorSetError(f"factor {key}: uncertain must be true or false")
    leg_km = _band(key, entry["leg_km"]) if "leg_km" in entry else None
    return Factor(
        key=key,
        label_en=label["en"],
        label_zh=label["zh"],
        value=value,
        unit=entry["unit"],
        year=year,
        source_en=entry["source"],
        source_zh=factor_sources.ZH.get(entry["source"], entry["source"]),
        uncertain=entry["uncertain"],
        leg_km=leg_km,
    )


def _band(key: str, band) -> tuple[Decimal | None, Decimal | None]:
    if not key.startswith("air_"):
        raise FactorSetError(f"factor {key}: only flights have a leg_km band")
    if not isinstance(band, dict) or not band or set(band) - {"over", "up_to"}:
        raise FactorSetError(f'factor {key}: leg_km is {{"over": km, "up_to": km}}')
    limits = []
    for name in ("over", "up_to"):
        value = band.get(name)
        if value is not None and not (isinstance(value, str) and _VALUE.match(value)):
            raise FactorSetError(f"factor {key}: leg_km {name} must be a decimal string")
        limits.append(None if value is None else Decimal(value))
    return limits[0], limits[1]


def current() -> FactorSet:
    return load(CURRENT_VERSION)


@cache
def versions() -> tuple[str, ...]:
    """Every published set, oldest first."""
    names = (path.stem for path in FACTOR_DIR.glob("CFC-EF-*.json"))
    found = [name for name in names if _VERSION.match(name)]
    return tuple(sorted(found, key=lambda v: tuple(int(part) for part in v[7:].split("."))))
