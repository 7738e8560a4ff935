"""Every fixed vocabulary reads as words, never as a raw code: each enum's labels are written beside
it and name every member; the bilingual tables of the certificate PDF say what the pages say."""

import importlib
import inspect
from enum import StrEnum

import pytest
from flask_babel import force_locale

from portal.catalog import filters
from portal.core.labels import labels_for, look_up

MODELS = [
    "portal.buyers.models",
    "portal.catalog.models",
    "portal.certificates.models",
    "portal.contracts.models",
    "portal.ledger.models",
    "portal.offsets.models",
    "portal.pipeline.models",
    "portal.registry.models",
    "portal.webhooks.models",
    "portal.jobs.models",
]


class Colour(StrEnum):
    RED = "red"
    GREEN = "green"


def test_a_table_that_misses_a_member_is_refused():
    with pytest.raises(TypeError, match=r"missing \['green'\]"):
        labels_for(Colour, {"red": "Red"})


def test_a_table_that_names_no_member_is_refused():
    with pytest.raises(TypeError, match=r"unknown \['blue'\]"):
        labels_for(Colour, {"red": "Red", "green": "Green", "blue": "Blue"})


def test_a_look_up_gives_the_label_or_the_code_itself():
    table = labels_for(Colour, {"red": "Red", "green": "Green"})
    assert look_up(table)("red") == "Red"
    assert look_up(table)(Colour.GREEN) == "Green"
    assert look_up(table)("mauve") == "mauve"


def _vocabularies():
    for name in MODELS:
        module = importlib.import_module(name)
        tables = [value for value in vars(module).values() if isinstance(value, dict)]
        for enum in vars(module).values():
            if inspect.isclass(enum) and issubclass(enum, StrEnum) and enum.__module__ == name:
                yield enum, tables


@pytest.mark.parametrize("enum, tables", list(_vocabularies()), ids=lambda v: getattr(v, "__name__", ""))
def test_every_enum_of_the_models_has_its_labels_beside_it(enum, tables):
    assert any(set(table) == set(enum) for table in tables), f"no label table for {enum.__name__}"


def test_every_sort_of_the_catalog_has_a_label():
    assert set(filters.SORT_LABELS) == set(filters.SORTS)


@pytest.mark.parametrize(
    "pdf_table, labels",
    [
        ("PURPOSES", ("portal.certificates.models", "PURPOSE_LABELS")),
        ("PROJECT_TYPES", ("portal.catalog.models", "PROJECT_TYPE_LABELS")),
    ],
)
def test_the_certificate_pdf_names_things_as_the_pages_do(app, pdf_table, labels):
    from portal.certificates import pdf_sections

    table = getattr(importlib.import_module(labels[0]), labels[1])
    with app.test_request_context():
        for code, (zh, en) in getattr(pdf_sections, pdf_table).items():
            with force_locale("en"):
                assert str(table[code]) == en
            with force_locale("zh_Hans_CN"):
                assert str(table[code]) == zh
