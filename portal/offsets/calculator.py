"""The footprint calculator: an event's or an office year's emissions from activity data.

``estimate(kind, inputs)`` reads the inputs strictly (every bad value is reported against its
field, all at once, in a :class:`CalculatorError`), multiplies each quantity by its factor from
the factor set (the current one, or the one the inputs name in ``factor_set``: an estimate made
with an older set is made again exactly) and returns an :class:`Estimate`.

Flights are counted by the distance of each flight, one way: from CFC-EF-2025.2 in the distance
bands of the factor set (up to 500 km, over 500 up to 3,700 km, over 3,700 km: the DESNZ
domestic, short-haul and long-haul factors), each a travel mode of its own. Sets before it had
"domestic", "short haul" and "long haul" flights, which read as a Chinese domestic flight being
"domestic" (a factor for flights under about 500 km); their fields stay for them.

All arithmetic is exact (:class:`~decimal.Decimal`, 50 significant digits); only the results are
rounded: each row and the total to kilograms (3 decimals of a tonne, half up), the tonnes to buy
up to the next whole tonne.

The same field names serve the web form (strings) and the JSON API (strings or numbers).
"""

import re
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal, localcontext

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from portal.core.errors import ServiceError
from portal.core.i18n import date_text
from portal.core.text import has_hidden_characters
from portal.offsets import factors as factor_sets
from portal.offsets.factors import Factor, FactorSet

KINDS = ("event", "office")
#: The grid choice and the factor it stands for.
GRIDS = {"national": "electricity_national", "inner_mongolia": "electricity_inner_mongolia"}
#: Travel other than flights; flights are the ``air_…`` factors of the factor set.
GROUND_MODES = ("rail", "coach", "car")

MAX_ATTENDEES = 1_000_000
MAX_EVENT_DAYS = 366
MAX_NAME = 100
#: Round trip at most once around the Earth.
MAX_ROUND_TRIP_KM = Decimal(40_000)
MAX_OCCUPANCY = Decimal(9)
MAX_PLACES = 6
FIRST_DATE, LAST_DATE = date(2000, 1, 1), date(2100, 12, 31)
FIRST_YEAR, LAST_YEAR = 2000, 2100

KILOGRAM = Decimal("0.001")
_NUMBER = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


@dataclass(frozen=True)
class Quantity:
    """A numeric field: whole or decimal, within [low, high]."""

    label: str
    low: Decimal
    high: Decimal
    whole: bool = False
    required: bool = False


def _q(label, high, low=0, whole=False, required=False) -> Quantity:
    return Quantity(label, Decimal(low), Decimal(high), whole, required)


#: Every numeric field, by name; the event's travel fields are generated per mode below.
QUANTITIES: dict[str, Quantity] = {
    "attendees": _q(_l("Attendees"), MAX_ATTENDEES, low=1, whole=True, required=True),
    "days": _q(_l("Event days"), MAX_EVENT_DAYS, low=1, whole=True),
    "year": _q(_l("Reporting year"), LAST_YEAR, low=FIRST_YEAR, whole=True, required=True),
    "car_occupancy": _q(_l("People per car"), MAX_OCCUPANCY, low=1),
    "hotel_room_nights": _q(_l("Hotel room-nights"), 10_000_000, whole=True),
    "meals_meat": _q(_l("Meals with meat"), 50_000_000, whole=True),
    "meals_vegetarian": _q(_l("Vegetarian meals"), 50_000_000, whole=True),
    "electricity_kwh": _q(_l("Electricity (kWh)"), 10_000_000_000),
    "heat_gj": _q(_l("District heat (GJ)"), 100_000_000),
    "natural_gas_m3": _q(_l("Natural gas (standard m³)"), 10_000_000_000),
    "gasoline_l": _q(_l("Gasoline (litres)"), 1_000_000_000),
    "diesel_l": _q(_l("Diesel (litres)"), 1_000_000_000),
}
#: Every travel mode of every factor set: the flights' distance bands (from CFC-EF-2025.2), the
#: flights of the sets before, and ground travel.
MODE_LABELS = {
    "air_upto_500km": _l("Flights of up to 500 km"),
    "air_500_3700km": _l("Flights of over 500 up to 3,700 km"),
    "air_over_3700km": _l("Flights of over 3,700 km"),
    "air_domestic": _l("Flights, domestic"),
    "air_short_haul": _l("Flights, short haul"),
    "air_long_haul": _l("Flights, long haul"),
    "rail": _l("High-speed rail"),
    "coach": _l("Coach"),
    "car": _l("Car"),
}
MAX_PASSENGER_KM = 10_000_000_000
for _mode in MODE_LABELS:
    QUANTITIES[f"{_mode}_pkm"] = _q(_l("Total passenger-km"), MAX_PASSENGER_KM)
    QUANTITIES[f"{_mode}_share"] = _q(_l("Share of attendees (%)"), 100)
    QUANTITIES[f"{_mode}_distance"] = _q(_l("Round trip per attendee (km)"), MAX_ROUND_TRIP_KM)

#: Labels of the fields that are not quantities, and of the checks across fields.
OTHER_LABELS = {
    "kind": _l("Kind of estimate"),
    "name": _l("Event name"),
    "start_date": _l("First day"),
    "end_date": _l("Last day"),
    "grid": _l("Electricity grid"),
    "travel_shares": _l("Shares of attendees"),
    "activities": _l("Quantities"),
    "factor_set": _l("Factor set"),
}


def field_label(name: str) -> str:
    """A field's name for people: "High-speed rail: Passenger-km"."""
    if name in OTHER_LABELS:
        return str(OTHER_LABELS[name])
    spec = QUANTITIES.get(name)
    if spec is None:
        return name
    mode, _sep, part = name.rpartition("_")
    if mode in MODE_LABELS and part in ("pkm", "share", "distance"):
        return _("%(mode)s: %(field)s", mode=MODE_LABELS[mode], field=spec.label)
    return str(spec.label)


def flight_modes(factor_set: FactorSet) -> tuple[str, ...]:
    """The set's flights, shortest first: its distance bands, or the older sets' three kinds."""
    return tuple(f.key for f in factor_set.flights)


def travel_modes(factor_set: FactorSet) -> tuple[str, ...]:
    return (*flight_modes(factor_set), *GROUND_MODES)


def fields(kind: str, factor_set: FactorSet) -> tuple[str, ...]:
    """The input fields of an estimate of ``kind`` with ``factor_set``."""
    if kind == "office":
        return (
            "year",
            "electricity_kwh",
            "grid",
            "heat_gj",
            "natural_gas_m3",
            "gasoline_l",
            "diesel_l",
            *(f"{m}_pkm" for m in flight_modes(factor_set)),
        )
    return (
        "name",
        "start_date",
        "end_date",
        "attendees",
        "days",
        *(f"{m}_{part}" for m in travel_modes(factor_set) for part in ("pkm", "share", "distance")),
        "car_occupancy",
        "hotel_room_nights",
        "meals_meat",
        "meals_vegetarian",
        "electricity_kwh",
        "grid",
        "heat_gj",
    )


#: The flight fields of every set: one that the chosen set does not have is an error, not ignored.
FLIGHT_FIELDS = frozenset(name for name in QUANTITIES if name.startswith("air_"))


def link_factor_set(inputs) -> FactorSet | None:
    """The factor set of an estimate's link (``/estimate?…``): the one it names in
    ``factor_set``, None when that is not a published set (the estimate then says so). Links
    made before they named their set are read with the newest set that has every flight field
    they use, so an old link shows the figures it showed; without flights, the current set."""
    if "factor_set" in inputs:
        named = inputs.get("factor_set")
        return factor_sets.load(named) if named in factor_sets.versions() else None
    used = {name for name in inputs if name in FLIGHT_FIELDS and _given(inputs, name)}
    for version in reversed(factor_sets.versions()):
        factor_set = factor_sets.load(version)
        if used <= {*fields("event", factor_set), *fields("office", factor_set)}:
            return factor_set
    return factor_sets.current()


class CalculatorError(ServiceError, ValueError):
    """Inputs that cannot be used. ``fields`` maps each field name to its translated message."""

    def __init__(self, fields: dict[str, str]):
        self.fields = fields
        super().__init__(
            "invalid_inputs", _("Some inputs cannot be used: %(fields)s.", fields=", ".join(fields))
        )


@dataclass(frozen=True)
class Row:
    """One line of the breakdown: a quantity of one activity times its factor."""

    item: str
    factor: Factor
    #: In the factor's activity unit (vehicle-km for cars), exact.
    quantity: Decimal
    #: Rounded to kilograms.
    tco2e: Decimal
    #: Cars only: the passenger-km and the people per car they were divided by.
    passenger_km: Decimal | None = None
    occupancy: Decimal | None = None

    @property
    def label(self) -> str:
        return self.factor.label

    @property
    def unit(self) -> str:
        return self.factor.activity_unit


@dataclass(frozen=True)
class Estimate:
    kind: str
    factor_set: FactorSet
    rows: list[Row]
    #: tCO2e, rounded to kilograms (from the exact sum, so rows may differ from it by rounding).
    total: Decimal
    #: Whole tonnes to buy: the total rounded up, at least one.
    purchase_tonnes: int
    #: The descriptive inputs, cleaned: name, start_date, end_date, attendees, days (event) or year (office).
    details: dict = field(default_factory=dict)

    @property
    def kg_per_attendee(self) -> Decimal | None:
        attendees = self.details.get("attendees")
        if not attendees:
            return None
        return (self.total * 1000 / attendees).quantize(Decimal("0.1"), ROUND_HALF_UP)


def estimate(kind: str, inputs, *, strict: bool = False, factor_set: FactorSet | None = None) -> Estimate:
    """The footprint of an ``event`` or an ``office`` year from ``inputs`` (a mapping of field
    names to strings, or to JSON values). Blank values mean "none". The factor set is
    ``factor_set``, else the one ``inputs`` names in ``factor_set``, else the current one. With
    ``strict``, a field that the kind does not have is an error too (the API: a misspelt field
    must not silently lower the estimate); a flight field of another factor set always is.
    Raises :class:`CalculatorError`."""
    if kind not in KINDS:
        raise CalculatorError({"kind": _("Choose %(choices)s.", choices=" / ".join(KINDS))})
    reader = _Reader(inputs)
    if factor_set is None:
        factor_set = reader.factor_set()
        if factor_set is None:
            raise CalculatorError(reader.errors)
    known = set(fields(kind, factor_set))
    either = known | set(fields("office" if kind == "event" else "event", factor_set))
    modes = ", ".join(flight_modes(factor_set))
    for name in inputs:
        if name in ("kind", "factor_set") or name in known:
            continue
        if name in FLIGHT_FIELDS and name not in either and _given(inputs, name):
            if factor_set.banded:
                reader.errors[name] = _(
                    "Factor set %(version)s counts flights by distance band: %(modes)s. This field "
                    "belongs to an earlier set; name that set in factor_set to use it.",
                    version=factor_set.version,
                    modes=modes,
                )
            else:
                reader.errors[name] = _(
                    "Factor set %(version)s has no such flight field; its flights are %(modes)s.",
                    version=factor_set.version,
                    modes=modes,
                )
        elif strict:
            reader.errors[name] = _("This field is not known for this kind of estimate.")
    builder = _Builder(factor_set)
    with localcontext() as ctx:
        ctx.prec = 50  # exact for every product and sum of inputs and factors in range
        details = _event(reader, builder) if kind == "event" else _office(reader, builder)
        if not reader.errors and not builder.rows:
            reader.errors["activities"] = _("Enter at least one quantity above zero.")
        if reader.errors:
            raise CalculatorError(reader.errors)
        total = sum((line.exact for line in builder.rows), Decimal(0)).quantize(KILOGRAM, ROUND_HALF_UP)
        rows = [
            Row(
                line.item,
                line.factor,
                line.quantity,
                line.exact.quantize(KILOGRAM, ROUND_HALF_UP),
                line.passenger_km,
                line.occupancy,
            )
            for line in builder.rows
        ]
    purchase = max(1, int(total.to_integral_value(rounding=ROUND_CEILING)))
    return Estimate(kind, factor_set, rows, total, purchase, details)


# --- the two kinds -------------------------------------------------------------------------------


def _event(reader: "_Reader", builder: "_Builder") -> dict:
    name = reader.text("name", MAX_NAME)
    start = reader.date("start_date")
    end = reader.date("end_date")
    attendees = reader.number("attendees")
    days = reader.number("days")
    span = None
    if start and end:
        span = (end - start).days + 1
        if span < 1:
            reader.errors["end_date"] = _("The end date cannot be before the start date.")
        elif span > MAX_EVENT_DAYS:
            reader.errors["end_date"] = _("An event can last at most %(days)s days.", days=MAX_EVENT_DAYS)
        elif days is not None and days > span:
            reader.errors["days"] = _("The dates leave room for at most %(days)s days.", days=span)
        elif days is None:
            days = Decimal(span)

    occupancy = reader.number("car_occupancy") or Decimal(1)
    shares = Decimal(0)
    for mode in travel_modes(builder.factor_set):
        shares += _travel(reader, builder, mode, attendees, occupancy)
    if shares > 100:
        reader.errors["travel_shares"] = _(
            "The shares of attendees add up to %(total)s%%; together they can be at most 100%%.",
            total=plain(shares),
        )

    builder.add("hotel", reader.number("hotel_room_nights"))
    builder.add("meal_meat", reader.number("meals_meat"))
    builder.add("meal_vegetarian", reader.number("meals_vegetarian"))
    _electricity(reader, builder)
    builder.add("district_heat", reader.number("heat_gj"))
    return {
        "name": name,
        "start_date": start,
        "end_date": end,
        "attendees": None if attendees is None else int(attendees),
        "days": None if days is None else int(days),
    }


def _travel(reader: "_Reader", builder: "_Builder", mode: str, attendees, occupancy) -> Decimal:
    """One travel mode, as total passenger-km or as a share of attendees × a round trip each.
    Returns the share it claims (0 when none)."""
    pkm = reader.number(f"{mode}_pkm")
    share = reader.number(f"{mode}_share")
    distance = reader.number(f"{mode}_distance")
    if pkm is not None and (share is not None or distance is not None):
        reader.errors[f"{mode}_pkm"] = _(
            "Give either the total passenger-km or a share of attendees with a distance, not both."
        )
        return share or Decimal(0)
    if share is not None and distance is None:
        if f"{mode}_distance" not in reader.errors:
            reader.errors[f"{mode}_distance"] = _("Enter the round-trip distance per attendee.")
        return share
    if distance is not None and share is None:
        if f"{mode}_share" not in reader.errors:
            reader.errors[f"{mode}_share"] = _("Enter the share of attendees who travel this way.")
        return Decimal(0)
    if share is not None:
        if not _in_band(reader, builder.factor_set, mode, distance):
            return share
        if attendees is None:  # already reported
            return share
        pkm = attendees * share / 100 * distance
    if pkm:
        if mode == "car":
            builder.add("car", pkm / occupancy, passenger_km=pkm, occupancy=occupancy)
        else:
            builder.add(mode, pkm)
    return share or Decimal(0)


def _in_band(reader: "_Reader", factor_set: FactorSet, mode: str, round_trip: Decimal) -> bool:
    """A round trip per attendee given for a band of flights is two flights of half its length,
    and they must be in that band (a trip with connections is given as passenger-km)."""
    factor = factor_set.factors.get(mode)
    if factor is None or not factor.leg_km or not round_trip:
        return True
    leg = round_trip / 2
    if factor.covers(leg):
        return True
    band = factor_set.flight_band(leg)
    reader.errors[f"{mode}_distance"] = _(
        "A round trip of %(km)s km is two flights of %(leg)s km each: enter it under “%(band)s”. "
        "For trips with connections, give the total passenger-km instead.",
        km=plain(round_trip),
        leg=plain(leg),
        band=MODE_LABELS[band.key],
    )
    return False


def _electricity(reader: "_Reader", builder: "_Builder") -> None:
    kwh = reader.number("electricity_kwh")
    grid = reader.choice("grid", GRIDS, default="national")
    if grid:
        builder.add(GRIDS[grid], kwh)


def _office(reader: "_Reader", builder: "_Builder") -> dict:
    year = reader.number("year")
    _electricity(reader, builder)
    builder.add("district_heat", reader.number("heat_gj"))
    builder.add("natural_gas", reader.number("natural_gas_m3"))
    builder.add("gasoline", reader.number("gasoline_l"))
    builder.add("diesel", reader.number("diesel_l"))
    for mode in flight_modes(builder.factor_set):
        builder.add(mode, reader.number(f"{mode}_pkm"))
    return {"year": None if year is None else int(year)}


# --- arithmetic ----------------------------------------------------------------------------------


@dataclass
class _Line:
    item: str
    factor: Factor
    quantity: Decimal
    exact: Decimal
    passenger_km: Decimal | None
    occupancy: Decimal | None


class _Builder:
    def __init__(self, factor_set: FactorSet):
        self.factor_set = factor_set
        self.rows: list[_Line] = []

    def add(self, key: str, quantity: Decimal | None, passenger_km=None, occupancy=None):
        if not quantity:  # not given, or zero: no line
            return
        factor = self.factor_set[key]
        self.rows.append(
            _Line(key, factor, quantity, quantity * factor.tonnes_per_unit, passenger_km, occupancy)
        )


def plain(value: Decimal) -> str:
    """A decimal without exponent or trailing zeros: 1E+2 → "100", 2.50 → "2.5"."""
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


# --- reading inputs ------------------------------------------------------------------------------


class _Reader:
    """Reads fields one by one, recording the first problem with each under its name."""

    def __init__(self, inputs):
        self.inputs = inputs
        self.errors: dict[str, str] = {}

    def _raw(self, name):
        """The value, or None when blank; non-scalar values are errors."""
        value = self.inputs.get(name)
        if isinstance(value, str):
            value = value.strip()
            return value or None
        if value is None:
            return None
        if isinstance(value, bool):
            self.errors[name] = _("Enter a number, not true or false.")
        elif isinstance(value, int | Decimal):
            return value
        else:
            self.errors[name] = _("Enter a single value.")
        return None

    def factor_set(self) -> FactorSet | None:
        """The set named in ``factor_set`` (one of the published versions), else the current
        one; None, with the error recorded, for a name that is not a published set."""
        value = self._raw("factor_set")
        if value is None:
            return None if "factor_set" in self.errors else factor_sets.current()
        published = factor_sets.versions()
        if value not in published:
            self.errors["factor_set"] = _("Choose %(choices)s.", choices=" / ".join(published))
            return None
        return factor_sets.load(value)

    def number(self, name: str) -> Decimal | None:
        spec = QUANTITIES[name]
        value = self._raw(name)
        if value is None:
            if spec.required and name not in self.errors:
                self.errors[name] = _("Enter a value.")
            return None
        number = self._decimal(name, value, spec)
        if number is None:
            return None
        if not spec.low <= number <= spec.high:
            self.errors[name] = self._range_message(spec)
            return None
        if spec.whole and number != number.to_integral_value():
            self.errors[name] = _("Enter a whole number, such as 250.")
            return None
        if number != number.quantize(Decimal(1).scaleb(-MAX_PLACES)):
            self.errors[name] = _("Use at most %(places)s decimal places.", places=MAX_PLACES)
            return None
        return number

    def _decimal(self, name: str, value, spec: Quantity) -> Decimal | None:
        if isinstance(value, int):  # from Python callers; JSON numbers arrive as Decimal
            value = Decimal(value) if abs(value) < 10**30 else Decimal("1E+30")
        if isinstance(value, Decimal):
            # JSON numbers: finite, and near enough to 1 for a plain decimal to exist.
            if not value.is_finite() or abs(value.adjusted()) > 20:
                self.errors[name] = self._range_message(spec)
                return None
            value = format(value, "f")
        negative = value.startswith("-")
        digits = value[1:] if negative else value
        # ASCII digits and one point only: Decimal() would also take "NaN", "1e999", "١٢" and "1_0".
        if len(digits) > 40 or not _NUMBER.fullmatch(digits):
            self.errors[name] = _("Enter a number, such as 1200 or 1200.5.")
            return None
        number = Decimal(digits)
        if negative and number:
            self.errors[name] = _("Enter a number that is not negative.")
            return None
        return number

    @staticmethod
    def _range_message(spec: Quantity) -> str:
        return _("Enter a number from %(low)s to %(high)s.", low=plain(spec.low), high=_grouped(spec.high))

    def date(self, name: str) -> date | None:
        value = self._raw(name)
        if value is None:
            if name not in self.errors:
                self.errors[name] = _("Enter a date.")
            return None
        if not isinstance(value, str) or not _DATE.fullmatch(value):
            self.errors[name] = _("Enter a date as YYYY-MM-DD, such as 2025-06-18.")
            return None
        try:
            day = date.fromisoformat(value)
        except ValueError:
            self.errors[name] = _("This date does not exist.")
            return None
        if not FIRST_DATE <= day <= LAST_DATE:
            self.errors[name] = _(
                "Enter a date from %(first)s to %(last)s.",
                first=date_text(FIRST_DATE),
                last=date_text(LAST_DATE),
            )
            return None
        return day

    def text(self, name: str, limit: int) -> str | None:
        value = self._raw(name)
        if value is None:
            if name not in self.errors:
                self.errors[name] = _("Enter a value.")
            return None
        if not isinstance(value, str):
            self.errors[name] = _("Enter text.")
            return None
        if len(value) > limit:
            self.errors[name] = _("Use at most %(limit)s characters.", limit=limit)
            return None
        if has_hidden_characters(value):
            self.errors[name] = _("Remove the control and direction-override characters.")
            return None
        return value

    def choice(self, name: str, allowed, default: str) -> str | None:
        value = self._raw(name)
        if value is None:
            return None if name in self.errors else default
        if value not in allowed:
            self.errors[name] = _("Choose %(choices)s.", choices=" / ".join(allowed))
            return None
        return value


def _given(inputs, name: str) -> bool:
    """Whether the field has a value (not blank, not None)."""
    value = inputs.get(name)
    return value is not None and not (isinstance(value, str) and not value.strip())


def _grouped(value: Decimal) -> str:
    """1000000 → "1,000,000" (the limits in messages, the same in both languages)."""
    return f"{int(value):,}" if value == value.to_integral_value() else plain(value)
