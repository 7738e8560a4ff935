"""The footprint calculator: factor set, arithmetic, validation, the /estimate page and the API;
flights by distance band, and estimates made with an older factor set made again exactly."""

import hashlib
import json
import re
from decimal import Decimal
from html import escape, unescape
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portal import create_app
from portal.extensions import db
from portal.offsets import calculator, factor_sources, factors
from portal.offsets.calculator import CalculatorError

EVENT = {
    "name": "Chifeng Green Forum",
    "start_date": "2025-06-18",
    "end_date": "2025-06-20",
    "attendees": "200",
    "air_upto_500km_pkm": "1000",  # 1,000 × 0.27257 kg = 0.27257 t
    "air_500_3700km_share": "10",  # 10 % × 200 × 2,000 km = 40,000 pkm × 0.18287 kg = 7.3148 t
    "air_500_3700km_distance": "2000",  # two flights of 1,000 km
    "air_over_3700km_pkm": "5000",  # × 0.20011 kg = 1.00055 t
    "rail_share": "50",  # 50 % × 200 × 600 km = 60,000 pkm × 0.03048 kg = 1.8288 t
    "rail_distance": "600",
    "coach_pkm": "2000",  # × 0.02717 kg = 0.05434 t
    "car_pkm": "3000",  # ÷ 3 per car = 1,000 vehicle-km × 0.16691 kg = 0.16691 t
    "car_occupancy": "3",
    "hotel_room_nights": "150",  # × 53.5 kg = 8.025 t
    "meals_meat": "400",  # × 1.88 kg = 0.752 t
    "meals_vegetarian": "200",  # × 1.27 kg = 0.254 t
    "electricity_kwh": "10000",  # × 0.6479 kg (Inner Mongolia) = 6.479 t
    "grid": "inner_mongolia",
    "heat_gj": "12.5",  # × 0.11 t = 1.375 t
}
EVENT_ROWS = {
    "air_upto_500km": ("1000", "0.273"),
    "air_500_3700km": ("40000", "7.315"),
    "air_over_3700km": ("5000", "1.001"),
    "rail": ("60000", "1.829"),
    "coach": ("2000", "0.054"),
    "car": ("1000", "0.167"),
    "hotel": ("150", "8.025"),
    "meal_meat": ("400", "0.752"),
    "meal_vegetarian": ("200", "0.254"),
    "electricity_inner_mongolia": ("10000", "6.479"),
    "district_heat": ("12.5", "1.375"),
}
#: 0.27257 + 7.3148 + 1.00055 + 1.8288 + 0.05434 + 0.16691 + 8.025 + 0.752 + 0.254 + 6.479 + 1.375
EVENT_TOTAL = Decimal("27.523")  # 27.52297

OFFICE = {
    "year": "2024",
    "electricity_kwh": "100000",  # × 0.5306 kg = 53.06 t
    "grid": "national",
    "heat_gj": "500",  # × 0.11 t = 55 t
    "natural_gas_m3": "10000",  # × 2.165 kg = 21.65 t
    "gasoline_l": "1000",  # × 2.0844 kg = 2.0844 t
    "diesel_l": "1000",  # × 2.5128 kg = 2.5128 t
    "air_500_3700km_pkm": "10000",  # × 0.18287 kg = 1.8287 t
}
OFFICE_ROWS = {
    "electricity_national": "53.060",
    "district_heat": "55.000",
    "natural_gas": "21.650",
    "gasoline": "2.084",
    "diesel": "2.513",
    "air_500_3700km": "1.829",
}
OFFICE_TOTAL = Decimal("136.136")  # 136.1359

#: The factor set before flights were banded, and an event estimated with it (its old fields).
OLD_SET = "CFC-EF-2025.1"
OLD_EVENT = {
    **{k: v for k, v in EVENT.items() if not k.startswith("air_")},
    "air_domestic_pkm": "1000",
    "air_short_haul_share": "10",
    "air_short_haul_distance": "2000",
    "air_long_haul_pkm": "5000",
}
OLD_EVENT_ROWS = {
    **{k: v for k, v in EVENT_ROWS.items() if not k.startswith("air_")},
    "air_domestic": ("1000", "0.273"),
    "air_short_haul": ("40000", "7.315"),
    "air_long_haul": ("5000", "1.001"),
}
#: The flights of the current set, by distance band.
BANDS = ("air_upto_500km", "air_500_3700km", "air_over_3700km")
#: Published factor sets never change: a correction is a new version.
PUBLISHED = {
    "CFC-EF-2025.1": "35620ae9bcb878e15ac051a96a4336e3830b0e683fdcabba2888db108e536df3",
    "CFC-EF-2025.2": "f04862190c0c3c1ce4c1e9bd257425531c6c0fefbeb6ba2fa25af991ff2ce114",
}


@pytest.fixture
def en(app):
    with app.test_request_context("/?lang=en"):
        yield


def run(kind, **inputs):
    base = EVENT if kind == "event" else OFFICE
    return calculator.estimate(kind, {**base, **inputs})


def errors_of(kind, strict=False, **inputs) -> dict:
    base = EVENT if kind == "event" else OFFICE
    with pytest.raises(CalculatorError) as caught:
        calculator.estimate(kind, {**base, **inputs}, strict=strict)
    return caught.value.fields


# --- the factor set ------------------------------------------------------------------------------

REFERENCE_VALUES = {
    "electricity_national": "0.5306",
    "electricity_inner_mongolia": "0.6479",
    "district_heat": "0.11",
    "natural_gas": "2.165",
    "gasoline": "2.0844",
    "diesel": "2.5128",
    "air_upto_500km": "0.27257",
    "air_500_3700km": "0.18287",
    "air_over_3700km": "0.20011",
    "rail": "0.03048",
    "coach": "0.02717",
    "car": "0.16691",
    "hotel": "53.5",
    "meal_meat": "1.88",
    "meal_vegetarian": "1.27",
}


def test_factor_file_is_complete():
    path = factors.FACTOR_DIR / f"{factors.CURRENT_VERSION}.json"
    raw = json.loads(path.read_text(encoding="utf-8"))
    assert raw["version"] == factors.CURRENT_VERSION == "CFC-EF-2025.2"
    for entry in raw["factors"]:
        for key in ("key", "unit", "value", "year", "source", "uncertain"):
            assert entry.get(key) not in (None, ""), (entry["key"], key)
        assert entry["label"]["en"] and entry["label"]["zh"]
        assert isinstance(entry["value"], str)  # a decimal string, never a JSON float
        assert isinstance(entry["uncertain"], bool)
    loaded = factors.load(factors.CURRENT_VERSION)
    assert {k: str(f.value) for k, f in loaded.factors.items()} == REFERENCE_VALUES
    assert all(isinstance(f.value, Decimal) for f in loaded)
    # Exactly what REFERENCE.md marks ⚠.
    assert {f.key for f in loaded if f.uncertain} == {
        "electricity_inner_mongolia",
        "meal_meat",
        "meal_vegetarian",
    }
    assert loaded.radiative_forcing  # the flight factors are DESNZ's "with RF" ones


def test_published_sets_never_change():
    assert factors.versions() == tuple(PUBLISHED)
    for version, digest in PUBLISHED.items():
        path = factors.FACTOR_DIR / f"{version}.json"
        assert hashlib.sha256(path.read_bytes()).hexdigest() == digest, f"{version} was edited"
    old, new = factors.load(OLD_SET), factors.current()
    # The new set changes the flights only: the same DESNZ values, now for distance bands.
    assert [f.key for f in old.flights] == ["air_domestic", "air_short_haul", "air_long_haul"]
    assert [f.key for f in new.flights] == list(BANDS)
    assert [f.value for f in old.flights] == [f.value for f in new.flights]
    assert {k: f for k, f in old.factors.items() if not k.startswith("air_")} == {
        k: f for k, f in new.factors.items() if not k.startswith("air_")
    }
    assert not old.banded and new.banded


def test_flight_labels_say_their_band_and_cite_desnz(app):
    new = factors.current()
    labels = {f.key: (f.label_en, f.label_zh) for f in new.flights}
    assert labels["air_upto_500km"] == (
        "Flights of up to 500 km (with radiative forcing)",
        "航班，单程 500 公里以内（含辐射强迫）",
    )
    assert "3,700" in labels["air_500_3700km"][0] and "3,700" in labels["air_500_3700km"][1]
    assert (
        "over 3,700 km" in labels["air_over_3700km"][0] and "超过 3,700 公里" in labels["air_over_3700km"][1]
    )
    for factor in new.flights:
        assert factor.source_en.startswith("UK DESNZ GHG conversion factors 2024") and factor.year == 2024
        assert factor.source_zh.startswith("英国能源安全与净零排放部（DESNZ）2024年温室气体换算因子")
        assert "domestic" not in factor.label_en.lower() and "国内" not in factor.label_zh


def test_every_factor_the_calculator_uses_exists():
    for version in factors.versions():
        factor_set = factors.load(version)
        used = {*calculator.GRIDS.values(), *calculator.travel_modes(factor_set)}
        used |= {
            "hotel",
            "meal_meat",
            "meal_vegetarian",
            "district_heat",
            "natural_gas",
            "gasoline",
            "diesel",
        }
        assert used <= set(factor_set.factors), version
        assert set(calculator.flight_modes(factor_set)) <= set(calculator.MODE_LABELS)


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"value": 0.5306}, "decimal strings"),
        ({"source": ""}, "lacks source"),
        ({"year": "2023"}, "bad year"),
        ({"unit": "kgCO2/furlong"}, "unknown unit"),
        ({"value": "-1"}, "decimal string"),
        ({"uncertain": "no"}, "uncertain"),
    ],
)
def test_malformed_factor_files_are_refused(tmp_path, monkeypatch, change, problem):
    entry = {
        "key": "electricity_national",
        "label": {"en": "Electricity", "zh": "电力"},
        "unit": "kgCO2/kWh",
        "value": "0.5306",
        "year": 2023,
        "source": "MEE/NBS",
        "uncertain": False,
        **change,
    }
    data = {
        "version": "CFC-EF-2099.1",
        "published": "2099-01-01",
        "radiative_forcing": True,
        "factors": [entry],
    }
    (tmp_path / "CFC-EF-2099.1.json").write_text(json.dumps(data))
    monkeypatch.setattr(factors, "FACTOR_DIR", tmp_path)
    factors.load.cache_clear()
    try:
        with pytest.raises(factors.FactorSetError, match=problem):
            factors.load("CFC-EF-2099.1")
    finally:
        factors.load.cache_clear()


def test_versions_are_names_not_paths():
    with pytest.raises(factors.FactorSetError):
        factors.load("../../etc/passwd")


def _flight(key, leg_km=None, value="0.2"):
    entry = {
        "key": key,
        "label": {"en": key, "zh": key},
        "unit": "kgCO2e/passenger-km",
        "value": value,
        "year": 2024,
        "source": "DESNZ",
        "uncertain": False,
    }
    if leg_km is not None:
        entry["leg_km"] = leg_km
    return entry


@pytest.mark.parametrize(
    ("entries", "problem"),
    [
        ([_flight("air_a", {"up_to": "500"}), _flight("air_b")], "has no leg_km band"),
        ([_flight("air_a", {"up_to": "500"}), _flight("air_b", {"over": "600"})], "does not follow"),
        (
            [_flight("air_a", {"over": "0", "up_to": "500"}), _flight("air_b", {"over": "500"})],
            "does not follow",
        ),
        (
            [_flight("air_a", {"up_to": "500"}), _flight("air_b", {"over": "500", "up_to": "900"})],
            "not a range",
        ),
        (
            [
                _flight("air_a", {"up_to": "500"}),
                _flight("air_b", {"over": "500", "up_to": "400"}),
                _flight("air_c", {"over": "400"}),
            ],
            "not a range",
        ),
        ([_flight("air_a", {"up_to": 500})], "decimal string"),
        ([_flight("air_a", {"below": "500"})], "leg_km is"),
        ([_flight("rail", {"up_to": "500"})], "only flights"),
    ],
)
def test_malformed_flight_bands_are_refused(tmp_path, monkeypatch, entries, problem):
    data = {
        "version": "CFC-EF-2099.1",
        "published": "2099-01-01",
        "radiative_forcing": True,
        "factors": entries,
    }
    (tmp_path / "CFC-EF-2099.1.json").write_text(json.dumps(data))
    monkeypatch.setattr(factors, "FACTOR_DIR", tmp_path)
    factors.load.cache_clear()
    try:
        with pytest.raises(factors.FactorSetError, match=problem):
            factors.load("CFC-EF-2099.1")
    finally:
        factors.load.cache_clear()


# --- flights by distance band ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("leg_km", "band"),
    [
        ("0.000001", "air_upto_500km"),
        ("380", "air_upto_500km"),  # Beijing–Chifeng
        ("500", "air_upto_500km"),
        ("500.000001", "air_500_3700km"),
        ("1400", "air_500_3700km"),  # Shanghai–Chifeng
        ("3700", "air_500_3700km"),
        ("3700.000001", "air_over_3700km"),
        ("20000", "air_over_3700km"),
    ],
)
def test_flight_band_boundaries(leg_km, band):
    assert factors.current().flight_band(Decimal(leg_km)).key == band
    assert factors.load(OLD_SET).flight_band(Decimal(leg_km)) is None  # the old set had no bands


@pytest.mark.parametrize(
    ("band", "factor", "tco2e"),
    [
        ("air_upto_500km", "0.27257", "2.726"),
        ("air_500_3700km", "0.18287", "1.829"),
        ("air_over_3700km", "0.20011", "2.001"),
    ],
)
def test_each_band_picks_its_factor(en, band, factor, tco2e):
    result = calculator.estimate("office", {"year": "2024", f"{band}_pkm": "10000"})
    (row,) = result.rows
    assert row.item == band and str(row.factor.value) == factor and str(row.tco2e) == tco2e
    assert result.factor_set.version == "CFC-EF-2025.2"
    # And in the event form, by a share of attendees and a round trip of two flights in the band.
    round_trip = {"air_upto_500km": "760", "air_500_3700km": "2800", "air_over_3700km": "16000"}[band]
    by_share = {**_event_head(), f"{band}_share": "10", f"{band}_distance": round_trip}
    (row,) = calculator.estimate("event", by_share).rows
    assert row.item == band and str(row.factor.value) == factor


def test_a_shanghai_trip_is_no_longer_counted_as_a_short_hop(en):
    """The defect: "航班，国内" was DESNZ's UK domestic factor (flights under about 500 km), 49 %
    above the short-haul one that fits a 1,400 km Chinese domestic flight."""
    trip = {
        **_event_head(),
        "attendees": "100",
        "air_500_3700km_share": "50",
        "air_500_3700km_distance": "2800",
    }
    (row,) = calculator.estimate("event", trip).rows
    assert row.factor.value == Decimal("0.18287") and row.tco2e == Decimal("25.602")  # 140,000 pkm
    # Entered as a flight of up to 500 km, it is refused and sent to its band.
    misfiled = {
        **_event_head(),
        "attendees": "100",
        "air_upto_500km_share": "50",
        "air_upto_500km_distance": "2800",
    }
    fields = errors_of("event", **{**_no_flights(), **misfiled})
    assert fields == {
        "air_upto_500km_distance": "A round trip of 2800 km is two flights of 1400 km each: enter it under "
        "“Flights of over 500 up to 3,700 km”. For trips with connections, give the total passenger-km instead."
    }
    # The old set still counts it as it did, with its "domestic" factor: 0.27257 × 140,000 pkm.
    old = {**_event_head(), "attendees": "100", "air_domestic_share": "50", "air_domestic_distance": "2800"}
    (row,) = calculator.estimate("event", old, factor_set=factors.load(OLD_SET)).rows
    assert row.factor.value == Decimal("0.27257") and row.tco2e == Decimal("38.160")


def _no_flights() -> dict:
    return {k: "" for k in EVENT if k.startswith("air_")}


@pytest.mark.parametrize(
    ("band", "round_trip", "fits"),
    [
        ("air_upto_500km", "1000", True),  # two flights of 500 km
        ("air_upto_500km", "1000.000002", False),
        ("air_500_3700km", "1000", False),
        ("air_500_3700km", "1000.000002", True),
        ("air_500_3700km", "7400", True),
        ("air_500_3700km", "7400.000002", False),
        ("air_over_3700km", "7400", False),
        ("air_over_3700km", "7400.000002", True),
        ("air_over_3700km", "40000", True),
    ],
)
def test_round_trip_boundaries(en, band, round_trip, fits):
    inputs = {**_event_head(), f"{band}_share": "10", f"{band}_distance": round_trip}
    if fits:
        assert [r.item for r in calculator.estimate("event", inputs).rows] == [band]
    else:
        assert set(errors_of("event", **{**_no_flights(), **inputs})) == {f"{band}_distance"}


# --- estimates made with an older factor set --------------------------------------------------------


def test_the_old_set_makes_an_old_estimate_again_exactly(en):
    old = factors.load(OLD_SET)
    result = calculator.estimate("event", OLD_EVENT, factor_set=old)
    assert {r.item: (calculator.plain(r.quantity), str(r.tco2e)) for r in result.rows} == OLD_EVENT_ROWS
    assert result.total == EVENT_TOTAL and result.purchase_tonnes == 28
    assert result.factor_set.version == OLD_SET
    labels = {r.item: r.label for r in result.rows}
    assert labels["air_domestic"] == "Flights, domestic (with radiative forcing)"  # as it was printed
    # Named in the inputs, as the API and the page's links do.
    again = calculator.estimate("event", {**OLD_EVENT, "factor_set": OLD_SET})
    assert again.total == EVENT_TOTAL and [r.tco2e for r in again.rows] == [r.tco2e for r in result.rows]
    office = calculator.estimate(
        "office",
        {
            **{k: v for k, v in OFFICE.items() if not k.startswith("air_")},
            "air_short_haul_pkm": "10000",
            "factor_set": OLD_SET,
        },
    )
    assert office.total == OFFICE_TOTAL


def test_each_set_knows_only_its_own_flight_fields(en):
    fields = errors_of("office", **{"air_domestic_pkm": "1000"})
    assert set(fields) == {"air_domestic_pkm"} and "distance band" in fields["air_domestic_pkm"]
    fields = errors_of("office", factor_set=OLD_SET)  # OFFICE has air_500_3700km_pkm
    assert set(fields) == {"air_500_3700km_pkm"} and "air_short_haul" in fields["air_500_3700km_pkm"]
    # An event's flight fields in an office estimate are ignored, as other event fields are.
    assert calculator.estimate("office", {**OFFICE, "air_upto_500km_share": "10"}).total == OFFICE_TOTAL


@pytest.mark.parametrize(
    "value", ["CFC-EF-1999.1", "../CFC-EF-2025.1", "cfc-ef-2025.1", 2025.1, ["CFC-EF-2025.1"]]
)
def test_an_unknown_factor_set_is_refused(en, value):
    fields = errors_of("office", factor_set=value)
    assert set(fields) == {"factor_set"}


# --- arithmetic ----------------------------------------------------------------------------------


def test_event_rows_against_hand_computed_values(en):
    result = run("event")
    assert {r.item: (calculator.plain(r.quantity), str(r.tco2e)) for r in result.rows} == EVENT_ROWS
    assert result.total == EVENT_TOTAL
    assert result.purchase_tonnes == 28
    assert result.factor_set.version == "CFC-EF-2025.2"
    car = next(r for r in result.rows if r.item == "car")
    assert car.passenger_km == 3000 and car.occupancy == 3 and car.unit == "vehicle-km"
    assert result.details["days"] == 3  # from the dates
    assert result.kg_per_attendee == Decimal("137.6")  # 27.523 t ÷ 200


def test_office_rows_against_hand_computed_values(en):
    result = run("office")
    assert {r.item: str(r.tco2e) for r in result.rows} == OFFICE_ROWS
    assert result.total == OFFICE_TOTAL
    assert result.purchase_tonnes == 137


def test_arithmetic_is_decimal_and_exact(en):
    # 1,000 pkm ÷ 3 per car: a repeating decimal, kept exact until the rounding.
    only_car = {"car_pkm": "1000", "car_occupancy": "3"}
    result = calculator.estimate("event", {**_event_head(), **only_car})
    (row,) = result.rows
    assert isinstance(row.tco2e, Decimal) and row.tco2e == Decimal("0.056")  # 55.6366… kg
    # 0.35 GJ × 0.11 t = 0.0385 t exactly, rounded half up; the float product is 0.03849999….
    result = calculator.estimate("office", {"year": "2024", "heat_gj": "0.35", "natural_gas_m3": "0"})
    assert result.total == Decimal("0.039")


def _event_head():
    return {k: EVENT[k] for k in ("name", "start_date", "end_date", "attendees")}


@pytest.mark.parametrize(
    ("heat_gj", "total", "tonnes"),
    [
        ("100", "11.000", 11),  # exactly whole: not rounded up further
        ("100.01", "11.001", 12),  # just over: up to the next tonne
        ("100.004", "11.000", 11),  # 11.00044 t: shown as 11.000, and 11 is what it says
        ("0.001", "0.000", 1),  # at least one tonne
        ("9.095", "1.000", 1),  # 1.00045 t rounds half up to 1.000
        ("9.0955", "1.001", 2),
    ],
)
def test_purchase_is_the_total_rounded_up(en, heat_gj, total, tonnes):
    result = calculator.estimate("office", {"year": "2024", "heat_gj": heat_gj})
    assert str(result.total) == total
    assert result.purchase_tonnes == tonnes


def test_grid_choice(en):
    national = calculator.estimate("office", {"year": "2024", "electricity_kwh": "1000"})
    assert national.rows[0].item == "electricity_national" and national.total == Decimal("0.531")
    mongolia = calculator.estimate(
        "office", {"year": "2024", "electricity_kwh": "1000", "grid": "inner_mongolia"}
    )
    assert mongolia.rows[0].item == "electricity_inner_mongolia" and mongolia.total == Decimal("0.648")


def test_share_of_attendees_and_json_numbers(en):
    # 25 % of 1,000 attendees × 1,200 km = 300,000 pkm by rail (JSON numbers arrive as Decimal).
    inputs = {**_event_head(), "attendees": Decimal(1000), "rail_share": Decimal("25"), "rail_distance": 1200}
    (row,) = calculator.estimate("event", inputs).rows
    assert row.quantity == 300000 and row.tco2e == Decimal("9.144")


def test_zero_rows_are_left_out(en):
    result = calculator.estimate(
        "office", {"year": "2024", "heat_gj": "10", "diesel_l": "0", "gasoline_l": ""}
    )
    assert [r.item for r in result.rows] == ["district_heat"]


# --- validation ----------------------------------------------------------------------------------

NOT_NUMBERS = [
    "NaN",
    "nan",
    "Infinity",
    "-Infinity",
    "inf",
    "1e3",
    "1E+400",
    "١٢٣",  # Arabic-Indic digits: Decimal() would take them
    "１２３",  # full-width digits
    "²",
    "1_000",
    "0x10",
    "1,000",
    "12abc",
    "1.2.3",
    "9" * 60,
]


@pytest.mark.parametrize("value", NOT_NUMBERS)
def test_numbers_must_be_plain_decimals(en, value):
    assert set(errors_of("office", electricity_kwh=value)) == {"electricity_kwh"}


@pytest.mark.parametrize(
    ("kind", "inputs", "field"),
    [
        ("office", {"electricity_kwh": "-5"}, "electricity_kwh"),
        ("office", {"electricity_kwh": "0.1234567"}, "electricity_kwh"),
        ("office", {"electricity_kwh": "10000000001"}, "electricity_kwh"),
        ("office", {"year": "1999"}, "year"),
        ("office", {"year": "2024.5"}, "year"),
        ("office", {"year": ""}, "year"),
        ("office", {"grid": "north_china"}, "grid"),
        ("event", {"attendees": "0"}, "attendees"),
        ("event", {"attendees": "1000001"}, "attendees"),
        ("event", {"attendees": "12.5"}, "attendees"),
        ("event", {"attendees": ""}, "attendees"),
        ("event", {"days": "4"}, "days"),
        ("event", {"rail_share": "101"}, "rail_share"),
        ("event", {"rail_share": "-1"}, "rail_share"),
        ("event", {"rail_distance": "40001"}, "rail_distance"),
        ("event", {"car_occupancy": "0"}, "car_occupancy"),
        ("event", {"car_occupancy": "12"}, "car_occupancy"),
        ("event", {"hotel_room_nights": "1.5"}, "hotel_room_nights"),
        ("event", {"name": ""}, "name"),
        ("event", {"name": "x" * 101}, "name"),
        ("event", {"name": "Forum\x07"}, "name"),
        ("event", {"start_date": "2025/06/18"}, "start_date"),
        ("event", {"start_date": "20250618"}, "start_date"),
        ("event", {"start_date": "2025-W25-3"}, "start_date"),
        ("event", {"start_date": "２０２５-06-18"}, "start_date"),
        ("event", {"end_date": "2025-02-30"}, "end_date"),
        ("event", {"end_date": "2025-06-17"}, "end_date"),
        ("event", {"end_date": "2026-06-20"}, "end_date"),
        ("event", {"start_date": "1999-12-31"}, "start_date"),
        ("event", {"air_over_3700km_share": "10"}, "air_over_3700km_pkm"),  # both ways at once
        (
            "event",
            {"air_upto_500km_pkm": "", "air_upto_500km_share": "10", "air_upto_500km_distance": "2000"},
            "air_upto_500km_distance",
        ),
        ("office", {"air_domestic_pkm": "100"}, "air_domestic_pkm"),  # the old set's field
        ("office", {"factor_set": "CFC-EF-2024.9"}, "factor_set"),
        ("event", {"coach_pkm": "", "coach_share": "10"}, "coach_distance"),
        ("event", {"coach_pkm": "", "coach_distance": "300"}, "coach_share"),
        (  # 10 % + 50 % + 45 %
            "event",
            {"coach_pkm": "", "coach_share": "45", "coach_distance": "100"},
            "travel_shares",
        ),
    ],
)
def test_bad_inputs_name_their_field(en, kind, inputs, field):
    assert field in errors_of(kind, **inputs)


def test_shares_up_to_100_are_fine(en):
    result = run("event", coach_pkm="", coach_share="40", coach_distance="100")  # 10 + 50 + 40
    assert "coach" in {r.item for r in result.rows}


def test_nothing_to_count(en):
    assert errors_of("office", **{k: "" for k in OFFICE if k != "year"}) == {
        "activities": "Enter at least one quantity above zero."
    }


def test_every_error_at_once_with_messages(en):
    fields = errors_of("event", attendees="-1", end_date="2025-01-01", heat_gj="abc")
    assert set(fields) == {"attendees", "end_date", "heat_gj"}
    assert fields["attendees"] == "Enter a number that is not negative."
    assert fields["end_date"] == "The end date cannot be before the start date."


@pytest.mark.parametrize("value", [True, False, [1], {"a": 1}, 1.5])
def test_json_values_that_are_not_numbers(en, value):
    assert "heat_gj" in errors_of("office", heat_gj=value)


def test_strict_refuses_unknown_fields(en):
    assert errors_of("office", strict=True, electricity="100") == {
        "electricity": "This field is not known for this kind of estimate."
    }
    assert "attendees" in errors_of("office", strict=True, attendees="100")  # an event field


# --- the page ------------------------------------------------------------------------------------


def page_query(kind="event", **changes):
    base = EVENT if kind == "event" else OFFICE
    return urlencode({"kind": kind, "calculate": "1", **base, **changes})


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_empty_page_in_both_languages(client, lang):
    response = client.get(f"/estimate?lang={lang}")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert f'lang="{"en" if lang == "en" else "zh-CN"}"' in html
    assert "CFC-EF-2025.2" in html and 'name="factor_set" value="CFC-EF-2025.2"' in html
    assert ("High-speed rail" if lang == "en" else "高铁") in html  # the factor table, from the set
    assert ("Flights include radiative forcing" if lang == "en" else "辐射强迫") in html
    assert 'name="kind" value="event"' in html and 'id="result"' not in html
    # No inline script or style: the Content-Security-Policy would block them.
    assert "<script" not in html and " style=" not in html and "onclick" not in html
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]


def test_office_tab_without_javascript(client):
    html = client.get("/estimate?kind=office&lang=en").get_data(as_text=True)
    assert 'name="kind" value="office"' in html and 'name="natural_gas_m3"' in html
    assert 'name="attendees"' not in html
    assert '<a href="/estimate?kind=office" aria-current="page">' in html


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_event_result_page(client, lang):
    response = client.get(f"/estimate?lang={lang}&" + page_query())
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert 'id="result"' in html and "27.523" in html
    assert html.count('class="calc-bar"') == len(EVENT_ROWS)  # one bar per breakdown row
    assert "<svg" in html and 'class="calc-breakdown"' in html  # the chart and its text fallback
    assert "<script" not in html and " style=" not in html
    assert ("Hotel stays (China)" if lang == "en" else "酒店住宿（中国）") in html
    link = unescape(re.search(r'href="(/checkout\?[^"]+)"', html).group(1))
    query = parse_qs(urlsplit(link).query)
    assert query["quantity"] == ["28"] and query["estimate"] == ["CFC-EF-2025.2"]
    assert "Chifeng Green Forum" in query["purpose"][0]
    assert ("18 Jun 2025" if lang == "en" else "2025年6月18日") in query["purpose"][0]


def test_checkout_purpose_in_english(client):
    html = client.get("/estimate?lang=en&" + page_query()).get_data(as_text=True)
    link = unescape(re.search(r'href="(/checkout\?[^"]+)"', html).group(1))
    assert parse_qs(urlsplit(link).query)["purpose"] == [
        "Neutralising Chifeng Green Forum, 18 Jun 2025–20 Jun 2025"
    ]
    html = client.get("/estimate?lang=en&" + page_query("office")).get_data(as_text=True)
    link = unescape(re.search(r'href="(/checkout\?[^"]+)"', html).group(1))
    assert parse_qs(urlsplit(link).query) == {
        "quantity": ["137"],
        "purpose": ["Offsetting 2024 operational emissions"],
        "estimate": ["CFC-EF-2025.2"],
    }


def test_hostile_event_name_is_escaped(client):
    name = '<script>alert(1)</script>"&'
    html = client.get("/estimate?lang=en&" + page_query(name=name)).get_data(as_text=True)
    assert "<script>alert" not in html and "&lt;script&gt;" in html


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"attendees": "NaN"}, "attendees"),
        ({"attendees": "-4"}, "attendees"),
        ({"attendees": "2000000"}, "attendees"),
        ({"heat_gj": "1e400"}, "heat_gj"),
        ({"heat_gj": "١٢"}, "heat_gj"),
        ({"end_date": "2025-06-01"}, "end_date"),
        ({"start_date": "not a date"}, "start_date"),
        ({"rail_share": "150"}, "rail_share"),
        ({"coach_pkm": "", "coach_share": "60", "coach_distance": "10"}, "travel_shares"),
        ({"car_occupancy": "Infinity"}, "car_occupancy"),
        ({"grid": "<b>"}, "grid"),
        ({"name": ""}, "name"),
        ({"kind": "factory"}, "kind"),
    ],
)
def test_bad_input_shows_the_form_again_with_400(client, changes, field):
    response = client.get("/estimate?lang=en&" + page_query(**changes))
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert 'id="result"' not in html
    assert "needs attention" in html  # the summary at the top, linking to the field
    if field != "kind":
        assert f'id="error-{field}"' in html  # the message next to the field
        assert 'class="calc-form"' in html


def test_bad_input_keeps_what_was_typed(client):
    html = client.get("/estimate?lang=en&" + page_query(attendees="12x")).get_data(as_text=True)
    assert 'value="12x"' in html and 'aria-invalid="true"' in html
    assert 'value="Chifeng Green Forum"' in html


def test_nul_byte_is_refused(client):
    assert client.get("/estimate?" + page_query(name="a\x00b")).status_code == 400


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_page_asks_for_flights_by_distance_and_cites_the_factors(client, lang):
    for kind in ("event", "office"):
        html = client.get(f"/estimate?kind={kind}&lang={lang}").get_data(as_text=True)
        for band in BANDS:
            assert f'name="{band}_pkm"' in html
        assert 'name="air_domestic_pkm"' not in html
        if lang == "en":
            assert "Flights of up to 500 km" in html and "Flights of over 3,700 km" in html
            assert "Shanghai–Chifeng about 1,400 km" in html
        else:
            assert "航班，单程 500 公里以内" in html and "航班，单程超过 3,700 公里" in html
            assert "上海—赤峰约 1,400 公里" in html
        # Each flight factor with its value, source and year, where flights are entered.
        form = html[: html.index('id="method"')]
        for factor in factors.current().flights:
            source = factor.source_en if lang == "en" else factor.source_zh
            assert str(factor.value) in form and f"{escape(source)} (2024)" in form
        # The method's table cites them in the page's language too.
        method = html[html.index('id="method"') :]
        if lang == "zh":
            assert "UK DESNZ" not in method and "英国能源安全与净零排放部（DESNZ）" in method
        else:
            assert "英国能源安全" not in method and "UK DESNZ GHG conversion factors 2024" in method


def test_every_source_of_every_set_reads_in_chinese():
    """A set's sources are cited as it gives them; the Chinese pages show a Chinese rendering of
    each (``offsets.factor_sources``), which a new set must add."""
    for version in factors.versions():
        for factor in factors.load(version).factors.values():
            assert factor.source_en in factor_sources.ZH, (version, factor.key)
            assert factor.source_zh != factor.source_en


def test_an_old_link_shows_the_figures_it_showed(client):
    """A result link from before flights were banded names no set and uses the old fields."""
    old_link = urlencode({"kind": "event", "calculate": "1", **OLD_EVENT})
    response = client.get("/estimate?lang=en&" + old_link)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert 'id="result"' in html and "27.523" in html
    assert "Factor set CFC-EF-2025.1" in html and "Flights, domestic (with radiative forcing)" in html
    assert "as its link says" in html and "The current set is CFC-EF-2025.2" in html
    assert 'name="factor_set" value="CFC-EF-2025.1"' in html  # recalculating keeps its set
    link = unescape(re.search(r'href="(/checkout\?[^"]+)"', html).group(1))
    assert parse_qs(urlsplit(link).query)["estimate"] == [OLD_SET]
    # Named explicitly, the same.
    html = client.get(f"/estimate?lang=en&factor_set={OLD_SET}&" + old_link).get_data(as_text=True)
    assert "27.523" in html and "Factor set CFC-EF-2025.1" in html
    # An old field in a link that names the new set is refused, not left out.
    response = client.get("/estimate?lang=en&factor_set=CFC-EF-2025.2&" + old_link)
    assert response.status_code == 400 and "counts flights by distance band" in response.get_data(
        as_text=True
    )


def test_a_round_trip_in_the_wrong_band_is_shown_next_to_its_field(client):
    query = page_query(air_500_3700km_distance="7800")
    response = client.get("/estimate?lang=zh&" + query)
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert 'id="error-air_500_3700km_distance"' in html and "航班，单程超过 3,700 公里" in html


# --- the API -------------------------------------------------------------------------------------


def post(client, body, content_type="application/json", lang="en"):
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    return client.post(
        "/api/v1/estimates", data=data, content_type=content_type, headers={"Accept-Language": lang}
    )


def test_api_event(client):
    response = post(client, {"kind": "event", **EVENT})
    assert response.status_code == 200
    data = response.get_json()
    assert (
        data["tco2e"] == "27.523" and data["purchase_tonnes"] == 28 and data["factor_set"] == "CFC-EF-2025.2"
    )
    assert {row["item"]: (row["quantity"], row["tco2e"]) for row in data["breakdown"]} == EVENT_ROWS
    rail = next(row for row in data["breakdown"] if row["item"] == "rail")
    assert (
        rail["label"] == "High-speed rail" and rail["unit"] == "passenger-km" and rail["factor"] == "0.03048"
    )


def test_api_office_with_json_numbers(client):
    body = {"kind": "office", **{k: (v if k == "grid" else json.loads(v)) for k, v in OFFICE.items()}}
    data = post(client, body).get_json()
    assert data["tco2e"] == "136.136" and data["purchase_tonnes"] == 137
    assert {row["item"]: row["tco2e"] for row in data["breakdown"]} == OFFICE_ROWS


def test_api_numbers_never_become_floats(client):
    # 0.35 GJ × 0.11 t = 0.0385 t exactly: half up to 0.039 (as binary floats, 0.03849999… → 0.038).
    data = post(client, '{"kind": "office", "year": 2024, "heat_gj": 0.35}').get_json()
    assert data["tco2e"] == "0.039"


def test_api_labels_follow_accept_language(client):
    data = post(client, {"kind": "office", "year": 2024, "heat_gj": "1"}, lang="zh-CN,zh;q=0.9").get_json()
    assert data["breakdown"][0]["label"] == "外购热力（集中供热）"


@pytest.mark.parametrize(
    ("body", "content_type", "field"),
    [
        ("not json", "application/json", "body"),
        ('{"kind": "office", "year": 2024', "application/json", "body"),
        (b"\xff\xfe\x00{", "application/json", "body"),
        ('{"kind": "office"}', "text/plain", "body"),
        ("kind=office&year=2024", "application/x-www-form-urlencoded", "body"),
        ("[1, 2]", "application/json", "body"),
        ('"office"', "application/json", "body"),
        ("null", "application/json", "body"),
        ("42", "application/json", "body"),
        ("[" * 5000 + "]" * 5000, "application/json", "body"),
        ('{"kind": "factory"}', "application/json", "kind"),
        ('{"kind": ["office"]}', "application/json", "kind"),
        ('{"year": 2024}', "application/json", "kind"),
        ('{"kind": "office", "year": true, "heat_gj": 1}', "application/json", "year"),
        ('{"kind": "office", "year": 2024, "heat_gj": false}', "application/json", "heat_gj"),
        ('{"kind": "office", "year": 2024, "heat_gj": NaN}', "application/json", "heat_gj"),
        ('{"kind": "office", "year": 2024, "heat_gj": Infinity}', "application/json", "heat_gj"),
        ('{"kind": "office", "year": 2024, "heat_gj": -Infinity}', "application/json", "heat_gj"),
        ('{"kind": "office", "year": 2024, "heat_gj": 1e999999}', "application/json", "heat_gj"),
        ('{"kind": "office", "year": 2024, "heat_gj": 1e-999999}', "application/json", "heat_gj"),
        ('{"kind": "office", "year": 2024, "heat_gj": ' + "9" * 5000 + "}", "application/json", "heat_gj"),
        ('{"kind": "office", "year": 2024, "heat_gj": -3}', "application/json", "heat_gj"),
        ('{"kind": "office", "year": 2024, "heat_gj": "\u0661\u0662"}', "application/json", "heat_gj"),
        ('{"kind": "office", "year": 2024, "heat_gj": [1]}', "application/json", "heat_gj"),
        ('{"kind": "office", "year": 2024, "heat_gj": {"v": 1}}', "application/json", "heat_gj"),
        ('{"kind": "office", "year": 2024.5, "heat_gj": 1}', "application/json", "year"),
        ('{"kind": "office", "year": 2024, "heat": 1}', "application/json", "heat"),
        ('{"kind": "office", "year": 2024}', "application/json", "activities"),
        (
            '{"kind": "event", "name": "X", "start_date": "2025-06-02", "end_date": "2025-06-01"}',
            "application/json",
            "end_date",
        ),
    ],
)
def test_api_bad_input_is_400_naming_the_field(client, body, content_type, field):
    response = post(client, body, content_type)
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "invalid_estimate" and error["message"]
    assert field in error["fields"] and error["fields"][field]


def test_api_takes_flights_by_band(client):
    body = {"kind": "office", "year": 2024}
    body |= {"air_upto_500km_pkm": 1000, "air_500_3700km_pkm": "2000", "air_over_3700km_pkm": 3000}
    data = post(client, body).get_json()
    assert data["factor_set"] == "CFC-EF-2025.2"
    rows = {row["item"]: (row["factor"], row["tco2e"], row["label"]) for row in data["breakdown"]}
    assert rows == {
        "air_upto_500km": ("0.27257", "0.273", "Flights of up to 500 km (with radiative forcing)"),
        "air_500_3700km": ("0.18287", "0.366", "Flights of over 500 up to 3,700 km (with radiative forcing)"),
        "air_over_3700km": ("0.20011", "0.600", "Flights of over 3,700 km (with radiative forcing)"),
    }
    event = {"kind": "event", **{k: v for k, v in EVENT.items()}}
    data = post(client, event).get_json()
    assert data["tco2e"] == "27.523"


def test_api_makes_an_old_estimate_again_with_its_set(client):
    data = post(client, {"kind": "event", "factor_set": OLD_SET, **OLD_EVENT}).get_json()
    assert data["factor_set"] == OLD_SET and data["tco2e"] == "27.523" and data["purchase_tonnes"] == 28
    assert {row["item"]: (row["quantity"], row["tco2e"]) for row in data["breakdown"]} == OLD_EVENT_ROWS


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "office", "year": 2024, "air_domestic_pkm": 1000}, "air_domestic_pkm"),
        ({"kind": "office", "year": 2024, "air_upto_500km_pkm": -1}, "air_upto_500km_pkm"),
        ({"kind": "office", "year": 2024, "air_upto_500km_pkm": "lots"}, "air_upto_500km_pkm"),
        ({"kind": "office", "year": 2024, "air_upto_500km_share": 10}, "air_upto_500km_share"),
        ({"kind": "office", "year": 2024, "heat_gj": 1, "factor_set": "CFC-EF-1999.1"}, "factor_set"),
        ({"kind": "office", "year": 2024, "heat_gj": 1, "factor_set": 2025.2}, "factor_set"),
        ({"kind": "office", "year": 2024, "heat_gj": 1, "factor_set": ["CFC-EF-2025.2"]}, "factor_set"),
        (
            {"kind": "office", "year": 2024, "air_upto_500km_pkm": 1, "factor_set": OLD_SET},
            "air_upto_500km_pkm",
        ),
        (
            {
                **{"kind": "event"},
                **_event_head(),
                "air_upto_500km_share": 5,
                "air_upto_500km_distance": 1400,
            },
            "air_upto_500km_distance",
        ),
        (
            {
                **{"kind": "event"},
                **_event_head(),
                "air_over_3700km_share": 5,
                "air_over_3700km_distance": 3000,
            },
            "air_over_3700km_distance",
        ),
    ],
)
def test_api_refuses_bad_flight_fields_naming_them(client, body, field):
    response = post(client, body)
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "invalid_estimate" and error["fields"][field]


def test_api_body_size_is_limited(client):
    response = post(client, {"kind": "office", "year": 2024, "padding": "x" * 20_000})
    assert response.status_code == 413
    assert response.get_json()["error"]["code"] == "request_too_large"


def test_api_is_csrf_exempt(tmp_path):
    app = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": f"sqlite:///{tmp_path}/portal.db",
            "INSTANCE_PATH": str(tmp_path),
            "SECRET_KEY": "test-secret",
            "WTF_CSRF_ENABLED": True,
            "LOG_LEVEL": "WARNING",
        }
    )
    with app.app_context():  # the public API counts calls per address (the rate limit's table)
        db.create_all()
    response = app.test_client().post(
        "/api/v1/estimates", json={"kind": "office", "year": 2024, "heat_gj": 1}
    )
    assert response.status_code == 200, response.get_data(as_text=True)


def test_api_get_is_not_allowed(client):
    response = client.get("/api/v1/estimates")
    assert response.status_code == 405 and response.get_json()["error"]


# --- nothing crashes -----------------------------------------------------------------------------

#: Every field of every kind with every factor set.
ANY_FIELDS = sorted(
    {
        name
        for v in factors.versions()
        for kind in calculator.KINDS
        for name in calculator.fields(kind, factors.load(v))
    }
)
_any_text = st.text(max_size=30) | st.sampled_from(NOT_NUMBERS + ["", "0", "1", "-0", "100", "2025-06-18"])
_any_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.decimals(allow_nan=False)
    | st.floats()
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=5,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    kind=st.sampled_from(["event", "office", "x"]),
    values=st.dictionaries(st.sampled_from(ANY_FIELDS), _any_text),
)
def test_web_never_fails_on_any_text(client, kind, values):
    values = {k: v.replace("\x00", "") for k, v in values.items()}
    response = client.get("/estimate?" + urlencode({"kind": kind, "calculate": "1", **values}))
    assert response.status_code in (200, 400)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    kind=st.sampled_from(["event", "office"]),
    values=st.dictionaries(st.sampled_from(ANY_FIELDS), _any_json),
)
def test_api_never_fails_on_any_json(client, kind, values):
    body = json.dumps({"kind": kind, **values}, default=str)
    response = post(client, body)
    assert response.status_code in (200, 400)
    if response.status_code == 400:
        assert response.get_json()["error"]["fields"]


def test_the_method_gives_the_factor_sets_date_as_the_language_writes_dates(app, client):
    import re

    zh = client.get("/estimate?lang=zh").get_data(as_text=True)
    en = client.get("/estimate?lang=en").get_data(as_text=True)
    assert re.search(r"发布于 \d{4}年\d{1,2}月\d{1,2}日", zh) and re.search(
        r"published \d{1,2}\xa0[A-Z][a-z]{2}\xa0\d{4}", en
    )
    assert not re.search(r"(发布于|published) \d{4}-\d{2}-\d{2}", zh + en)
