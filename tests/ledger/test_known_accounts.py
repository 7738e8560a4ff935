"""A PostgreSQL worker remembers the system accounts and holdings it has seen committed
(``ledger.accounts._known``): looked up again, they cost no statement, and an account opened by
a transaction that rolled back is never remembered."""

import pytest
from sqlalchemy import func, select

from portal.extensions import db
from portal.ledger import services as ledger
from portal.ledger.models import Account, AccountKind
from portal.ledger.verify import verify_ledger
from tests import factories
from tests.sql import statements_of

pytestmark = pytest.mark.postgres


def test_a_committed_account_is_found_again_without_a_statement(pg_app):
    factories.batch(quantity=100, code="A-2021", vintage=2021)
    holding = ledger.open_account(AccountKind.HOLDING, "ORG-1")
    db.session.commit()
    first = ledger.system_account(AccountKind.INVENTORY), ledger.open_account(AccountKind.HOLDING, "ORG-1")
    db.session.commit()  # every object expired

    found = []
    sent = statements_of(
        lambda: found.extend(
            [ledger.system_account(AccountKind.INVENTORY), ledger.find_account(AccountKind.HOLDING, "ORG-1")]
        )
    )
    assert sent == []
    assert [(a.id, a.kind, a.ref, a.capacity) for a in found] == [
        (a.id, a.kind, a.ref, a.capacity) for a in first
    ]
    assert found[1].id == holding.id and found[1] in db.session and found[1].created_at is not None
    # The remembered accounts move credits as the ones read do.
    ledger.transfer(10, source=found[0], destination=found[1], reference="t")
    db.session.commit()
    assert ledger.balance(ledger.find_account(AccountKind.HOLDING, "ORG-1")) == 10
    assert verify_ledger().ok


def test_an_account_whose_opening_rolled_back_is_not_remembered(pg_app):
    opened = ledger.open_account(AccountKind.HOLDING, "ORG-2")
    assert opened.id is not None
    # Looked up again in the same, uncommitted transaction: found in the session, not remembered.
    assert ledger.find_account(AccountKind.HOLDING, "ORG-2") is opened
    db.session.rollback()
    with pytest.raises(ledger.UnknownAccount):
        ledger.find_account(AccountKind.HOLDING, "ORG-2")
    again = ledger.open_account(AccountKind.HOLDING, "ORG-2")
    db.session.commit()
    assert ledger.find_account(AccountKind.HOLDING, "ORG-2").id == again.id
    assert db.session.scalar(select(func.count()).select_from(Account).where(Account.ref == "ORG-2")) == 1


def test_accounts_with_a_capacity_are_always_read(pg_app):
    """A hold's or reserve's capacity can be raised by another worker: never remembered."""
    hold = ledger.open_account(AccountKind.HOLD, "order-1", capacity=5)
    db.session.commit()
    sent = statements_of(lambda: ledger.find_account(AccountKind.HOLD, "order-1"))
    assert len(sent) == 1
    ledger.raise_capacity(hold, 8)
    db.session.commit()
    assert ledger.find_account(AccountKind.HOLD, "order-1").capacity == 8
