"""A contract's preferences are one rule read two ways: ``admits`` (which contracts want a batch
just listed) and ``_matching`` (which batches a contract may take, as SQL). They must agree on
every combination, or a batch would be reserved for a contract that does not want it, or missed."""

import itertools

from sqlalchemy import select

from portal.contracts.models import Contract
from portal.contracts.reserve import _matching, admits
from portal.extensions import db
from portal.ledger.models import Batch
from tests import factories

STANDARDS = ("", "CCER", "VCS")
TYPES = ("", "forestry", "grassland", "forestry,grassland")
VINTAGES = (None, 2021, 2022, 2023)


def _batches():
    north, south = factories.region("pref-n"), factories.region("pref-s")
    found = []
    for standard, kind, where in itertools.product(
        ("CCER", "VCS"), ("forestry", "grassland"), (north, south)
    ):
        project = factories.project(standard=standard, type=kind, region_=where)
        found += [factories.batch(vintage=year, project_=project, issue=False) for year in (2021, 2023)]
    return found


def test_the_two_readings_of_a_contracts_preferences_agree_on_every_combination(app):
    batches = _batches()
    counties = ("", "pref-n", "pref-s", "pref-n,pref-s")
    compared = admitted = 0
    for standard, types, where, first, last in itertools.product(
        STANDARDS, TYPES, counties, VINTAGES, VINTAGES
    ):
        contract = Contract(
            standard=standard, project_types=types, counties=where, vintage_from=first, vintage_to=last
        )
        taken = set(db.session.scalars(select(Batch.id).where(_matching(contract))))
        for batch in batches:
            wanted = admits(contract, batch)
            assert wanted == (batch.id in taken), (standard, types, where, first, last, batch.code)
            compared += 1
            admitted += wanted
    assert compared == 3 * 4 * 4 * 4 * 4 * len(batches) and 0 < admitted < compared
