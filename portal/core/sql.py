"""Small SQL helpers shared by the models."""

from enum import Enum


def one_of(column: str, enum: type[Enum]) -> str:
    """The text of a CHECK constraint: ``column`` takes one of ``enum``'s values."""
    return f"{column} IN ({', '.join(repr(m.value) for m in enum)})"
