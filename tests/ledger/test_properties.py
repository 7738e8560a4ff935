"""Property-based: random sequences of issue / transfer / retire / cancel keep every invariant.

A plain-Python model predicts each movement (which batches, how many tonnes, or which refusal)
from the stated allocation rule; after every step the database must agree with the model and
``verify_ledger`` must pass (blocks partition each batch, the journal replays to the blocks).
"""

import os

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from portal.extensions import db
from portal.ledger import services as ledger
from portal.ledger.errors import CapacityExceeded, InsufficientCredits, InvalidMovement, TerminalAccount
from portal.ledger.models import ALLOWED_MOVES, AccountKind
from portal.ledger.verify import verify_ledger
from tests import conftest, factories

MOVABLE = ["inventory", "buffer", "hold", "reserve", "holding:A", "holding:B"]
TERMINAL = ["retired", "cancelled"]
CAPACITY = {"hold": 120, "reserve": 400}


def _account(name):
    if name in ("inventory", "buffer", "retired", "cancelled"):
        return ledger.system_account(AccountKind(name))
    if name.startswith("holding:"):
        return ledger.open_account(AccountKind.HOLDING, name.split(":")[1])
    return ledger.open_account(AccountKind(name), f"{name}-1", capacity=CAPACITY[name])


def _kind(name):
    return AccountKind(name.split(":")[0])


class LedgerMachine(RuleBasedStateMachine):
    """One example = one fresh database; ``make_app`` is set by the test."""

    make_app = None

    @initialize(
        first_batches=st.lists(
            st.tuples(st.integers(1, 300), st.integers(2021, 2025), st.sampled_from([0, 0, 10, 20])),
            min_size=1,
            max_size=4,
        )
    )
    def fresh_database(self, first_batches):
        self.app = type(self).make_app()
        self.ctx = self.app.app_context()
        self.ctx.push()
        self.batches = []  # (sort key, code, quantity)
        self.model = {}  # account name -> {batch code: tonnes}
        self.project = factories.project()
        db.session.commit()
        for quantity, vintage, buffer_pct in first_batches:
            self.issue(quantity, vintage, buffer_pct)

    def teardown(self):
        if hasattr(self, "ctx"):
            db.session.remove()
            db.engine.dispose()
            self.ctx.pop()

    def _balance(self, name, codes=None):
        return sum(q for code, q in self.model.get(name, {}).items() if codes is None or code in codes)

    def _predict(self, name, quantity, codes):
        """The stated rule: oldest vintage first, then the earlier batch."""
        takes, remaining = {}, quantity
        for _key, code, _q in sorted(self.batches):
            if codes is not None and code not in codes:
                continue
            take = min(remaining, self.model.get(name, {}).get(code, 0))
            if take:
                takes[code] = take
                remaining -= take
        return takes, remaining

    @rule(
        quantity=st.integers(1, 300),
        vintage=st.integers(2021, 2025),
        buffer_pct=st.sampled_from([0, 0, 10, 20]),
    )
    def issue(self, quantity, vintage, buffer_pct):
        buffer = quantity * buffer_pct // 100
        batch = factories.batch(quantity=quantity, vintage=vintage, project_=self.project, buffer=buffer)
        db.session.commit()
        self.batches.append(((vintage, batch.id), batch.code, quantity))
        self.model.setdefault("inventory", {})[batch.code] = quantity - buffer
        if buffer:
            self.model.setdefault("buffer", {})[batch.code] = buffer

    @precondition(lambda self: self.batches)
    @rule(
        data=st.data(),
        quantity=st.one_of(st.integers(1, 30), st.integers(1, 350)),
        choose_batch=st.booleans(),
    )
    def move(self, data, quantity, choose_batch):
        # Mostly from accounts that hold something, to places the flows allow, so that most
        # moves succeed; sometimes from and to anywhere, to check the refusals.
        stocked = [name for name in MOVABLE if self._balance(name)]
        source = data.draw(
            st.sampled_from(stocked) if stocked and data.draw(st.integers(0, 4)) else st.sampled_from(MOVABLE)
        )
        allowed = [d for d in MOVABLE + TERMINAL if _kind(d) in ALLOWED_MOVES[_kind(source)]]
        dest = data.draw(
            st.sampled_from(allowed)
            if allowed and data.draw(st.integers(0, 4))
            else st.sampled_from(MOVABLE + TERMINAL)
        )
        if source == dest:
            return
        codes = (
            [data.draw(st.sampled_from([code for _k, code, _q in self.batches]))] if choose_batch else None
        )
        if _kind(dest) not in ALLOWED_MOVES[_kind(source)]:
            with pytest.raises(InvalidMovement):
                self._attempt(source, dest, quantity, codes)
            db.session.rollback()
            return
        takes, short = self._predict(source, quantity, codes)
        over_capacity = dest in CAPACITY and self._balance(dest) + quantity > CAPACITY[dest]
        try:
            movement = self._attempt(source, dest, quantity, codes)
        except CapacityExceeded:
            db.session.rollback()
            assert over_capacity
            return
        except InsufficientCredits as exc:
            db.session.rollback()
            assert not over_capacity and short > 0
            assert exc.params["available"] == quantity - short
            return
        db.session.commit()
        assert not over_capacity and short == 0
        moved = {}
        for r in movement.ranges:
            moved[r.batch_code] = moved.get(r.batch_code, 0) + r.quantity
        assert moved == takes
        for code, q in takes.items():
            self.model[source][code] -= q
            self.model.setdefault(dest, {}).setdefault(code, 0)
            self.model[dest][code] += q

    def _attempt(self, source, dest, quantity, codes):
        kwargs = {"source": _account(source), "batch_codes": codes, "reference": "prop"}
        if dest == "retired":
            return ledger.retire(quantity, **kwargs)
        if dest == "cancelled":
            return ledger.cancel(quantity, **kwargs)
        return ledger.transfer(quantity, destination=_account(dest), **kwargs)

    @precondition(lambda self: self.batches)
    @rule(dest=st.sampled_from(TERMINAL), quantity=st.integers(1, 5))
    def terminal_accounts_never_give_back(self, dest, quantity):
        with pytest.raises(TerminalAccount):
            ledger.transfer(quantity, source=_account(dest), destination=_account("inventory"))
        db.session.rollback()

    @invariant()
    def database_agrees_with_model(self):
        if not hasattr(self, "app"):
            return
        for name in MOVABLE + TERMINAL:
            account = _account(name)
            expected = {code: q for code, q in self.model.get(name, {}).items() if q}
            got = {}
            for block in ledger.blocks_of(account):
                got[block.batch.code] = got.get(block.batch.code, 0) + block.quantity
            assert got == expected, name
        db.session.rollback()

    @invariant()
    def ledger_verifies(self):
        if not hasattr(self, "app"):
            return
        report = verify_ledger()
        db.session.rollback()
        assert report.ok, report.problems
        assert report.serials == sum(q for _k, _c, q in self.batches)


EXAMPLES = int(os.environ.get("LEDGER_PROPERTY_EXAMPLES", "60"))


def _run(make_app, examples):
    LedgerMachine.make_app = staticmethod(make_app)
    run_state_machine_as_test(
        LedgerMachine,
        settings=settings(
            max_examples=examples,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        ),
    )


def test_random_movements_keep_every_invariant_sqlite(tmp_path, sqlite_template):
    counter = iter(range(10**6))

    def make_app():
        directory = tmp_path / f"ex{next(counter)}"
        directory.mkdir()
        return conftest._sqlite_app(directory, sqlite_template)

    _run(make_app, EXAMPLES)


@pytest.mark.postgres
def test_random_movements_keep_every_invariant_postgresql(request):
    url = request.getfixturevalue("postgres_url")
    _run(lambda: conftest._postgres_app(url), max(10, EXAMPLES // 3))
