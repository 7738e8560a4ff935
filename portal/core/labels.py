"""How a fixed vocabulary reads to people: each enum's translated labels are written beside the
enum (in its package's ``models``) with :func:`labels_for`, which refuses a table that misses a
member or names one the enum does not have, so a new status cannot reach a page as a raw code.

Codes stay in the database, the API and the CSV exports; pages show the labels (with the code in a
``title`` where it helps). ``portal.template_globals`` gives templates their look-ups."""

from enum import StrEnum


def labels_for(vocabulary: type[StrEnum], table: dict) -> dict:
    """``table`` (member → translated label), checked to name every member of ``vocabulary`` and
    nothing else. Raises ``TypeError`` at import time otherwise."""
    missing = [member.value for member in vocabulary if member not in table]
    unknown = [key for key in table if key not in {member.value for member in vocabulary}]
    if missing or unknown:
        raise TypeError(f"labels of {vocabulary.__name__}: missing {missing}, unknown {unknown}")
    return {vocabulary(key): label for key, label in table.items()}


def look_up(table: dict):
    """A label look-up in ``table``: the label of a code, or the code itself when it has none."""
    return lambda code: table.get(code, code)
