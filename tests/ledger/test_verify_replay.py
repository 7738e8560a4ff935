"""``ledger verify``'s replay of a batch (``verify._assign``, ``_covered_by``) against the
simplest model there is: the owner of each serial. Whatever the moves, the replayed state says
serial for serial what the model says, stays sorted and merged as the ledger keeps its blocks,
and so stays as small as the batch's blocks however many entries it replays."""

from hypothesis import given, settings
from hypothesis import strategies as st

from portal.ledger.verify import _assign, _covered_by, _normal

SERIALS = 60
ACCOUNTS = 4


def _owners(state) -> list[int]:
    owners = []
    for start, end, account in state:
        owners += [account] * (end - start + 1)
    return owners


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(1, SERIALS), st.integers(0, SERIALS - 1), st.integers(0, ACCOUNTS - 1)),
        max_size=60,
    )
)
def test_the_replay_says_what_the_owners_say(moves):
    state = [[1, SERIALS, 0]]
    model = [0] * SERIALS
    for start, length, account in moves:
        end = min(start + length, SERIALS)
        held = set(model[start - 1 : end])
        covered = _covered_by(state, start, end, model[start - 1])
        assert covered == (len(held) == 1)
        if not covered:
            continue  # verify refuses such an entry; the ledger never writes one
        state = _assign(state, start, end, account)
        model[start - 1 : end] = [account] * (end - start + 1)
        assert _owners(state) == model
        assert state == _normal(state)  # sorted, contiguous, no two neighbours in one account
    assert [r[0] for r in state][0] == 1 and state[-1][1] == SERIALS


def test_a_batch_retired_a_tonne_at_a_time_stays_as_small_as_its_blocks():
    """Ten thousand retirements of one tonne each, lowest serials first, as an event's guests
    make them: the replayed state stays two ranges (retired, and what is left), as the blocks
    do, so each entry costs a search and not a pass over every entry before it."""
    state = [[1, 20_000, 0]]
    for serial in range(1, 10_001):
        assert _covered_by(state, serial, serial, 0)
        state = _assign(state, serial, serial, 1)
        assert len(state) == 2
    assert state == [[1, 10_000, 1], [10_001, 20_000, 0]]
