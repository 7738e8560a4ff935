"""Retiring an order's hold with the ledger movement made last (``certificates.retiring``): the
certificate is written from the hold's blocks as read, and the movement refuses to retire
anything else; the batch is locked only from the movement to the commit."""

import pytest
from sqlalchemy import func, select, text

from portal.certificates import services as certificates
from portal.certificates.models import Certificate, Source
from portal.extensions import db
from portal.ledger import services as ledger
from portal.ledger.errors import InvalidMovement
from portal.ledger.models import AccountKind
from portal.ledger.verify import verify_ledger
from portal.offsets import services as orders
from tests import factories


@pytest.fixture
def held(any_app):
    steel, _cement = factories.steel_and_cement()
    old = factories.batch(quantity=100, code="OLD-2021", vintage=2021, price="60.00")
    new = factories.batch(quantity=100, code="NEW-2023", vintage=2023, price="60.00")
    db.session.commit()
    order, _ = orders.create_order(steel, 10, beneficiary="x", purpose="voluntary", actor="t")
    db.session.commit()
    return steel, order, old, new


def _retiring(steel, order):
    hold = ledger.find_account(AccountKind.HOLD, order.hold_ref)
    return hold, certificates.retiring(
        hold, steel, 10, beneficiary="鞍钢", purpose="voluntary", source=Source.ORDER, actor="t"
    )


def test_the_certificate_names_exactly_what_the_movement_retires(held):
    steel, order, old, _new = held
    hold, retiring = _retiring(steel, order)
    with retiring as certificate:
        assert ledger.balance(hold) == 10  # nothing retired yet
        named = [(b.batch_id, b.serial_start, b.serial_end) for b in certificate.blocks]
    db.session.commit()
    assert ledger.balance(hold) == 0
    assert named == [(old.id, 1, 10)]
    retired = ledger.system_account(AccountKind.RETIRED)
    assert ledger.balance(retired) == 10
    assert verify_ledger().ok


def test_a_hold_changed_meanwhile_is_refused_and_nothing_is_retired(held):
    """The hold now holds other serials (the same tonnes): the movement refuses, before writing,
    and the transaction with the certificate is rolled back."""
    steel, order, _old, new = held
    hold, retiring = _retiring(steel, order)
    inventory = ledger.system_account(AccountKind.INVENTORY)
    with pytest.raises(InvalidMovement) as refused, retiring:
        ledger.transfer(1, source=hold, destination=inventory, actor="t")
        ledger.transfer(1, source=inventory, destination=hold, batch_codes=[new.code], actor="t")
        assert ledger.balance(hold) == 10
    assert refused.value.params["reason"] == "changed"
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(Certificate)) == 0
    assert ledger.balance(hold) == 10
    assert verify_ledger().ok


def test_an_exception_in_the_block_retires_nothing(held):
    steel, order, _old, _new = held
    hold, retiring = _retiring(steel, order)
    with pytest.raises(RuntimeError), retiring:
        raise RuntimeError("the receipt failed")
    db.session.rollback()
    assert ledger.balance(hold) == 10
    assert db.session.scalar(select(func.count()).select_from(Certificate)) == 0


@pytest.mark.postgres
def test_on_postgresql_the_batch_is_locked_only_from_the_movement_to_the_commit(pg_app):
    steel, _cement = factories.steel_and_cement()
    old = factories.batch(quantity=100, code="OLD-2021", vintage=2021, price="60.00")
    db.session.commit()
    batch_id = old.id
    order, _ = orders.create_order(steel, 10, beneficiary="x", purpose="voluntary", actor="t")
    db.session.commit()
    hold, retiring = _retiring(steel, order)

    def free() -> bool:
        """Whether another transaction could lock the batch now (as another order's movement)."""
        with db.engine.connect() as other:
            try:
                other.execute(
                    text("SELECT id FROM batches WHERE id = :id FOR NO KEY UPDATE NOWAIT"), {"id": batch_id}
                )
                return True
            except Exception as exc:  # lock_not_available
                assert "could not obtain lock" in str(exc)
                return False
            finally:
                other.rollback()

    assert free()
    with retiring:
        db.session.flush()
        assert free()  # the certificate and its rows are written, the batch not yet locked
    assert not free()  # the movement holds it …
    db.session.commit()
    assert free()  # … until the commit
    assert ledger.balance(hold) == 0
    assert verify_ledger().ok


@pytest.mark.postgres
def test_a_fulfilment_and_a_holding_retirement_after_a_key_rotation_do_not_deadlock(
    pg_app, monkeypatch, tmp_path
):
    """A fulfilment signs before it locks its batch, a retirement from a holding after. The first
    signature with a new key publishes it: were its row left uncommitted in the fulfilment's
    transaction, the holding's retirement (the batch locked) would wait on it while the fulfilment
    waits for the batch. It is published in a transaction of its own."""
    import threading
    import time

    from portal.buyers import services as buyers
    from portal.buyers.models import Organisation
    from portal.certificates import signing
    from portal.offsets.fulfilment import _fulfil
    from portal.offsets.holds import _locked
    from portal.offsets.models import Order
    from portal.timeutil import utcnow

    steel, _ = factories.steel_and_cement()
    factories.batch(quantity=100, code="ROT-2021", vintage=2021)
    db.session.commit()
    order, _ = orders.create_order(steel, 10, beneficiary="x", purpose="voluntary", actor="t")
    db.session.commit()
    buyers.deliver_from_inventory(steel, 20)  # the same batch, serials after the hold's
    ledger.system_account(AccountKind.RETIRED)  # as in production: it exists already
    db.session.commit()
    order_id, org_id = order.id, steel.id
    # The key is rotated (to a file of this test's own: the instance folder's is shared by the
    # tests running alongside): the next signature publishes the new one.
    path = tmp_path / "signing-key.pem"
    pg_app.config["SIGNING_KEY_FILE"] = str(path)
    signing._create(path)

    published = threading.Event()
    publish = signing._publish

    def publish_then_wait(found):
        publish(found)
        if threading.current_thread().name == "fulfil":
            published.set()
            time.sleep(2)  # meanwhile the holding's retirement locks the batch

    monkeypatch.setattr(signing, "_publish", publish_then_wait)
    errors = {}

    def in_its_own_transaction(name, work):
        def run():
            with pg_app.app_context():
                try:
                    work()
                    db.session.commit()
                except Exception as exc:  # noqa: BLE001
                    errors[name] = exc
                    db.session.rollback()
                finally:
                    db.session.remove()

        return threading.Thread(target=run, name=name)

    def fulfil():
        locked = _locked(db.session.get(Order, order_id))
        locked.paid_at = utcnow()
        _fulfil(locked)

    def from_holding():
        published.wait(10)
        org = db.session.get(Organisation, org_id)
        certificates.retire_from_holding(org, 5, beneficiary="y", purpose="voluntary", actor="t")

    threads = [in_its_own_transaction("fulfil", fulfil), in_its_own_transaction("holding", from_holding)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == {}, {k: f"{type(v).__name__}: {str(v)[:300]}" for k, v in errors.items()}
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(Certificate)) == 2
    assert verify_ledger().ok
