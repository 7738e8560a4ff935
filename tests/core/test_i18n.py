"""Both catalogs complete, every message in the code translated, money formatted per locale."""

import sys
from decimal import Decimal
from pathlib import Path

from babel.messages.pofile import read_po
from flask_babel import refresh

from portal.core.i18n import yuan

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
import i18n  # noqa: E402


def test_no_untranslated_or_fuzzy_entries():
    assert [p for locale in i18n.LOCALES for p in i18n.problems(locale)] == []


def test_every_message_in_the_code_is_in_both_catalogs(tmp_path):
    pot = tmp_path / "messages.pot"
    i18n.extract(pot)
    with pot.open("rb") as f:
        wanted = {m.id if isinstance(m.id, str) else m.id[0] for m in read_po(f) if m.id}
    for locale in i18n.LOCALES:
        with i18n.catalog_path(locale).open("rb") as f:
            have = {m.id if isinstance(m.id, str) else m.id[0] for m in read_po(f) if m.id}
        assert wanted - have == set(), f"{locale}: run `python scripts/i18n.py update` and translate"


def test_yuan_per_locale(app):
    with app.test_request_context("/?lang=zh"):
        assert yuan(Decimal("68")) == "¥68.00"
    with app.test_request_context("/?lang=en"):
        refresh()
        assert yuan(Decimal("68.5")) == "CN¥68.50"
