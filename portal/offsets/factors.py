"""Emission factor sets: versioned JSON files in ``portal/offsets/factors/``, read-only at run time.

A set never changes once published: a corrected or updated factor is a new version (a new file),
so that every estimate can say exactly which figures it used. Values are decimal strings in the
file and :class:`~decimal.Decimal` here; a number written as a JSON float is refused.
"""

import json
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import cache
from pathlib import Path

from flask_babel import lazy_gettext as _l

from portal.core.i18n import current_language

FACTOR_DIR = Path(__file__).resolve().parent / "factors"
CURRENT_VERSION = "CFC-EF-2025.1"
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
    source: str
    #: Marked ⚠ in the reference data: shown as uncertain wherever the factor appears.
    uncertain: bool

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
    return FactorSet(version, str(data["published"]), bool(data["radiative_forcing"]), factors)


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
    if not (label.get("en") and label.get("zh")):
        raise FactorSetError(f"factor {key}: the label needs en and zh")
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
    return Factor(
        key=key,
        label_en=label["en"],
        label_zh=label["zh"],
        value=value,
        unit=entry["unit"],
        year=year,
        source=entry["source"],
        uncertain=entry["uncertain"],
    )


def current() -> FactorSet:
    return load(CURRENT_VERSION)
