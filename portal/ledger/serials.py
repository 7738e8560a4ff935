"""Registry serial numbers: reading the range a registry issued, and writing a portal serial in
the registry's own format.

Two formats, one per registry:

* **CCER** (the national registry): every credit has its own serial, a fixed prefix followed by
  the unit number, e.g. ``CN-CCER-14-2024001-2021-000123456``. An issuance is given as the
  serials of its first and last credit; both must share the prefix, and the unit numbers count
  the credits (last − first + 1).
* **Verra** (VCS): a block serial names the whole range,
  ``<issuance>-<first unit>-<last unit>-VCS-VCU-<program no.>-VER-<country>-<scope>-<project id>-<vintage start DDMMYYYY>-<vintage end DDMMYYYY>-<additional certification flag>``.
  An issuance is given as that one block serial (as the first serial, with the last one empty
  or the same). Verra numbers units across the whole registry.

A parsed range has a **series** — the namespace its unit numbers are unique in (the CCER
prefix; ``VCS-VCU`` for Verra) — so that overlapping issuances can be found with one indexed
query. Pure functions: nothing here touches the database.
"""

import re
from dataclasses import dataclass
from datetime import date

#: Unit numbers are kept in a 64-bit column.
MAX_UNIT = 2**63 - 1
VERRA_SERIES = "VCS-VCU"

_CCER = re.compile(r"(?P<prefix>[A-Z][A-Z0-9-]*?-)(?P<unit>[0-9]{1,18})")
_VERRA = re.compile(
    r"(?P<issuance>[0-9]{1,12})-(?P<first>[0-9]{1,18})-(?P<last>[0-9]{1,18})-VCS-VCU-(?P<program>[0-9]{1,6})"
    r"-VER-(?P<country>[A-Z]{2})-(?P<scope>[0-9]{1,3})-(?P<project>[0-9]{1,8})"
    r"-(?P<vstart>[0-9]{8})-(?P<vend>[0-9]{8})-(?P<flag>[01])"
)


class SerialError(ValueError):
    """A serial range the registry's format does not allow; ``reason`` is a stable code and
    ``params`` fill the message the caller translates."""

    def __init__(self, reason: str, **params):
        super().__init__(reason)
        self.reason = reason
        self.params = params


@dataclass(frozen=True)
class RegistryRange:
    """Units ``first``..``last`` of ``series``, as one registry issued them."""

    series: str
    first: int
    last: int
    #: Verra's block serial without the unit numbers (issuance id and the tail), to write
    #: serials of parts of the block; empty for CCER.
    issuance: str = ""
    tail: str = ""
    #: The vintage the serial states (Verra), for a check against the batch's.
    vintage_start: date | None = None
    vintage_end: date | None = None

    @property
    def count(self) -> int:
        return self.last - self.first + 1

    @property
    def offset(self) -> int:
        """Registry unit of portal serial n is ``offset + n``."""
        return self.first - 1


def registry_of(standard: str) -> str:
    """Which registry keeps a standard's credits: ``ccer`` (national) or ``verra``."""
    return "ccer" if standard == "CCER" else "verra"


def parse_range(standard: str, start: str, end: str) -> RegistryRange:
    """The range given by ``start`` and ``end`` in the format of ``standard``'s registry."""
    start, end = (start or "").strip(), (end or "").strip()
    if not start:
        raise SerialError("missing")
    if registry_of(standard) == "verra":
        return _parse_verra(start, end)
    return _parse_ccer(start, end)


def _parse_ccer(start: str, end: str) -> RegistryRange:
    if not end:
        raise SerialError("missing")
    first, last = _CCER.fullmatch(start), _CCER.fullmatch(end)
    for text, found in ((start, first), (end, last)):
        if found is None:
            raise SerialError("ccer_format", serial=text[:120])
    if first["prefix"] != last["prefix"]:
        raise SerialError("prefix", first=first["prefix"], last=last["prefix"])
    low, high = int(first["unit"]), int(last["unit"])
    if high < low:
        raise SerialError("reversed", first=low, last=high)
    return RegistryRange(first["prefix"].rstrip("-"), low, high)


def _parse_verra(start: str, end: str) -> RegistryRange:
    found = _VERRA.fullmatch(start)
    if found is None:
        raise SerialError("verra_format", serial=start[:120])
    if end and end != start:
        raise SerialError("verra_one_block")
    low, high = int(found["first"]), int(found["last"])
    if high < low:
        raise SerialError("reversed", first=low, last=high)
    try:
        vintage = (_ddmmyyyy(found["vstart"]), _ddmmyyyy(found["vend"]))
    except ValueError:
        raise SerialError("verra_format", serial=start[:120]) from None
    tail = start[found.end("last") + 1 :]
    return RegistryRange(VERRA_SERIES, low, high, found["issuance"], tail, *vintage)


def _ddmmyyyy(text: str) -> date:
    return date(int(text[4:]), int(text[2:4]), int(text[:2]))


def unit_serial(standard: str, series: str, unit: int, *, template: str = "") -> str:
    """Registry unit ``unit`` written as the registry writes one credit: the CCER prefix and
    the unit number (as wide as ``template``'s, the batch's first serial); for Verra the unit
    number alone (Verra writes ranges, see ``range_serial``)."""
    if registry_of(standard) == "verra":
        return str(unit)
    width = len(_CCER.fullmatch(template)["unit"]) if template and _CCER.fullmatch(template) else 0
    return f"{series}-{unit:0{width}d}"


def range_serial(standard: str, series: str, first: int, last: int, *, template: str = "") -> str:
    """A range of registry units in the registry's own notation: for Verra the block serial of
    exactly that range (issuance and tail from ``template``, the batch's block serial); for
    CCER the first and last serial joined by an en dash."""
    if registry_of(standard) == "verra":
        found = _VERRA.fullmatch(template or "")
        if found is None:
            return f"{first}-{last}"
        return f"{found['issuance']}-{first}-{last}-{template[found.end('last') + 1 :]}"
    return (
        f"{unit_serial(standard, series, first, template=template)}"
        f"–{unit_serial(standard, series, last, template=template)}"
    )
