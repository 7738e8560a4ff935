"""``flask ledger verify``: replay the journal and check every invariant of the ledger.

Checked, batch by batch (in chunks of 500 batches, so memory is bounded by a chunk, plus one
small tuple per journal entry touching a hold or reserve):

1. the blocks of a batch partition 1..quantity: no gap, no overlap, none outside;
2. blocks are in normal form: no two adjacent blocks of a batch in the same account;
3. the journal replays: an issue covers serials not yet issued, into inventory or the buffer
   (as much to the buffer as the batch records); every other entry moves a range
   that is, at that point, entirely in its source account; nothing leaves ``retired`` or
   ``cancelled``; retire entries go to ``retired``, cancel entries to ``cancelled``, transfers
   to neither (so a serial is retired at most once); and every move is one the flows allow
   (``ALLOWED_MOVES``: the buffer is never sold, a holding never re-stocked);
4. the replayed state equals the blocks, serial for serial;
5. no account with a capacity (holds, reserves) ever held more than it, at any point of the
   journal.
"""

from bisect import bisect_right
from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import func, select

from portal.extensions import db
from portal.ledger.models import (
    ALLOWED_MOVES,
    ISSUE_KINDS,
    Account,
    AccountKind,
    Batch,
    Block,
    EntryKind,
    LedgerEntry,
)

CHUNK = 500


@dataclass
class Report:
    batches: int = 0
    serials: int = 0
    blocks: int = 0
    entries: int = 0
    accounts: int = 0
    retired: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def problem(self, text: str) -> None:
        self.problems.append(text)


def verify_ledger() -> Report:
    """Check the whole ledger. On PostgreSQL, when called outside a transaction, everything is
    read in one REPEATABLE READ snapshot, so movements committing meanwhile cannot cause false
    alarms (SQLite's BEGIN IMMEDIATE already holds writers off)."""
    if db.engine.dialect.name == "postgresql" and not db.session().in_transaction():
        db.session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
    report = Report()
    accounts = {a.id: a for a in db.session.scalars(select(Account))}
    report.accounts = len(accounts)
    capacity_deltas: list[tuple[int, int, int]] = []  # (entry id, account id, +/- tonnes)

    last_id = 0
    while True:
        batches = db.session.execute(
            select(Batch.id, Batch.code, Batch.quantity, Batch.buffer_quantity)
            .where(Batch.id > last_id)
            .order_by(Batch.id)
            .limit(CHUNK)
        ).all()
        if not batches:
            break
        last_id = batches[-1].id
        ids = [b.id for b in batches]
        blocks = defaultdict(list)
        for row in db.session.execute(
            select(Block.batch_id, Block.serial_start, Block.serial_end, Block.account_id)
            .where(Block.batch_id.in_(ids))
            .order_by(Block.batch_id, Block.serial_start)
        ):
            blocks[row.batch_id].append((row.serial_start, row.serial_end, row.account_id))
        entries = defaultdict(list)
        for row in db.session.execute(
            select(
                LedgerEntry.id,
                LedgerEntry.batch_id,
                LedgerEntry.kind,
                LedgerEntry.serial_start,
                LedgerEntry.serial_end,
                LedgerEntry.quantity,
                LedgerEntry.from_account_id,
                LedgerEntry.to_account_id,
            )
            .where(LedgerEntry.batch_id.in_(ids))
            .order_by(LedgerEntry.batch_id, LedgerEntry.id)
        ):
            entries[row.batch_id].append(row)
        for batch in batches:
            report.batches += 1
            report.serials += batch.quantity
            report.blocks += len(blocks[batch.id])
            report.entries += len(entries[batch.id])
            _check_partition(report, batch, blocks[batch.id], accounts)
            replayed = _replay(report, batch, entries[batch.id], accounts, capacity_deltas)
            if replayed is not None and _normal(replayed) != _normal(blocks[batch.id]):
                report.problem(
                    f"batch {batch.code}: replaying the journal does not give the blocks "
                    f"(journal {_show(replayed, accounts)} / blocks {_show(blocks[batch.id], accounts)})"
                )
            report.retired += sum(
                e - s + 1
                for s, e, a in blocks[batch.id]
                if a in accounts and accounts[a].kind == AccountKind.RETIRED
            )

    _check_capacities(report, accounts, capacity_deltas)
    orphans = db.session.scalar(
        select(func.count()).select_from(LedgerEntry).where(~LedgerEntry.batch_id.in_(select(Batch.id)))
    )
    if orphans:
        report.problem(f"{orphans} journal entries name no existing batch")
    return report


def _check_partition(report, batch, blocks, accounts) -> None:
    expected = 1
    previous_account = None
    for start, end, account_id in blocks:
        if start > end:
            report.problem(f"batch {batch.code}: block {start}-{end} is reversed")
        if start > expected:
            report.problem(f"batch {batch.code}: serials {expected}-{start - 1} are in no block")
        elif start < expected:
            report.problem(f"batch {batch.code}: serials {start}-{min(end, expected - 1)} are in two blocks")
        elif account_id == previous_account:
            report.problem(
                f"batch {batch.code}: adjacent blocks at serial {start} in the same account are not merged"
            )
        if account_id not in accounts:
            report.problem(f"batch {batch.code}: block {start}-{end} is in unknown account {account_id}")
        expected = max(expected, end + 1)
        previous_account = account_id
    if not blocks:
        report.problem(f"batch {batch.code}: has no blocks (never issued?)")
    elif expected <= batch.quantity:
        report.problem(f"batch {batch.code}: serials {expected}-{batch.quantity} are in no block")
    elif expected > batch.quantity + 1:
        report.problem(
            f"batch {batch.code}: serials {batch.quantity + 1}-{expected - 1} lie beyond the batch"
        )


def _replay(report, batch, entries, accounts, capacity_deltas):
    """The batch's blocks as the journal says they should be, or None if the journal is broken."""
    state: list[list[int]] = []  # sorted [start, end, account]
    for e in entries:
        where = f"batch {batch.code}: entry {e.id} ({e.kind} {e.serial_start}-{e.serial_end})"
        if (
            e.quantity != e.serial_end - e.serial_start + 1
            or e.serial_start < 1
            or e.serial_end > batch.quantity
        ):
            report.problem(f"{where} has an impossible range or quantity")
            return None
        target = accounts.get(e.to_account_id)
        if e.kind == EntryKind.ISSUE:
            if target is None or target.kind not in ISSUE_KINDS:
                report.problem(f"{where} issues credits into {target}, not inventory or buffer")
                return None
            if any(s <= e.serial_end and e.serial_start <= t for s, t, _ in state):
                report.problem(f"{where} issues serials that were already issued")
                return None
            state.append([e.serial_start, e.serial_end, e.to_account_id])
            state.sort()
        else:
            source = accounts.get(e.from_account_id)
            if source is None or target is None:
                report.problem(f"{where} names an unknown account")
                return None
            if source.is_terminal:
                report.problem(f"{where} moves credits out of {source}, which is final")
                return None
            if target.kind not in ALLOWED_MOVES[source.kind]:
                report.problem(f"{where} moves credits from {source} to {target}, which is not allowed")
                return None
            expected_kind = {
                AccountKind.RETIRED: EntryKind.RETIRE,
                AccountKind.CANCELLED: EntryKind.CANCEL,
            }.get(target.kind, EntryKind.TRANSFER)
            if e.kind != expected_kind:
                report.problem(f"{where} is a {e.kind} into {target}")
                return None
            if not _covered_by(state, e.serial_start, e.serial_end, e.from_account_id):
                report.problem(f"{where}: the range was not all in {source} at that point")
                return None
            state = _assign(state, e.serial_start, e.serial_end, e.to_account_id)
            if source.capacity is not None:
                capacity_deltas.append((e.id, source.id, -e.quantity))
        if target is not None and target.capacity is not None:
            capacity_deltas.append((e.id, target.id, e.quantity))
    issued_to_buffer = sum(
        e.quantity
        for e in entries
        if e.kind == EntryKind.ISSUE
        and accounts.get(e.to_account_id) is not None
        and accounts[e.to_account_id].kind == AccountKind.BUFFER
    )
    if issued_to_buffer != batch.buffer_quantity:
        report.problem(
            f"batch {batch.code}: {issued_to_buffer} t were issued to the buffer; "
            f"the batch records {batch.buffer_quantity} t"
        )
    return state


def _covered_by(state, start, end, account_id) -> bool:
    position = start
    i = max(bisect_right(state, [start, float("inf")]) - 1, 0)
    while i < len(state) and position <= end:
        s, t, a = state[i]
        if t >= position:
            if s > position or a != account_id:
                return False
            position = t + 1
        i += 1
    return position > end


def _assign(state, start, end, account_id):
    """``state`` with serials ``start``..``end`` (all held by one account: ``_covered_by``)
    given to ``account_id``, changed in place: the ranges they lie in are cut where they end,
    and the new range is merged with an adjacent range of the same account, as the ledger
    merges blocks. The state so stays about as long as the batch's blocks and an entry costs a
    search and a few ranges: rebuilding the whole state at every entry, never merged, made a
    batch retired a tonne at a time (24,000 entries) take minutes to replay."""
    lo = bisect_right(state, [start, float("inf")]) - 1
    if lo < 0 or state[lo][1] < start:
        lo += 1
    hi = lo
    while hi < len(state) and state[hi][0] <= end:
        hi += 1
    pieces = []
    if lo < hi and state[lo][0] < start:
        pieces.append([state[lo][0], start - 1, state[lo][2]])
    at = lo + len(pieces)  # where the new range goes
    pieces.append([start, end, account_id])
    if lo < hi and state[hi - 1][1] > end:
        pieces.append([end + 1, state[hi - 1][1], state[hi - 1][2]])
    state[lo:hi] = pieces
    if at + 1 < len(state) and state[at + 1][0] == end + 1 and state[at + 1][2] == account_id:
        state[at][1] = state[at + 1][1]
        del state[at + 1]
    if at > 0 and state[at - 1][1] == start - 1 and state[at - 1][2] == account_id:
        state[at - 1][1] = state[at][1]
        del state[at]
    return state


def _normal(ranges):
    merged: list[list[int]] = []
    for s, t, a in sorted(ranges):
        if merged and merged[-1][2] == a and merged[-1][1] + 1 == s:
            merged[-1][1] = t
        else:
            merged.append([s, t, a])
    return merged


def _show(ranges, accounts, limit=6):
    parts = [f"{s}-{t}@{accounts.get(a, a)}" for s, t, a in _normal(ranges)[:limit]]
    return ", ".join(parts) + (" …" if len(ranges) > limit else "")


def _check_capacities(report, accounts, deltas) -> None:
    running: dict[int, int] = defaultdict(int)
    peak: dict[int, int] = defaultdict(int)
    for _id, account_id, delta in sorted(deltas):
        running[account_id] += delta
        peak[account_id] = max(peak[account_id], running[account_id])
    for account_id, top in peak.items():
        account = accounts[account_id]
        if top > account.capacity:
            report.problem(f"{account} held {top} t at one point; its capacity is {account.capacity} t")
