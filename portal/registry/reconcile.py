"""Reconciling the portal's ledger with a registry account statement, by serial range.

For every batch of the statement's registry whose registry numbering is known, the portal's
serials are compared with the blocks the statement shows (in registry units: portal serial n is
unit ``offset + n``). Four kinds of difference are reported, each as maximal serial ranges:

* ``portal_only``: live in the portal (for sale, in the buffer, held, reserved or in a buyer's
  holding) but not in the registry account at all;
* ``registry_only``: in the registry account but in no portal batch;
* ``retired_here_active_there``: retired in the portal, still active in the registry, and no
  pending instruction covers it (a pending one is the hand-off still under way, not a difference);
* ``retired_there_live_here``: retired or cancelled in the registry but live in the portal.

Serials **for sale** (the ledger's inventory) in ``portal_only`` or ``retired_there_live_here``
are withheld from sale when a statement is imported: moved, by serial, into the ledger's
``withheld`` account, which nothing sells from, until staff resolve the difference (release to
inventory, or cancel), audited. Batches are read and locked in the ledger's global allocation
order, so this single writer never deadlocks against sales.
"""

import hashlib
from collections import defaultdict
from dataclasses import dataclass

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from portal.audit import services as audit
from portal.catalog.models import Project
from portal.core.text import clean_text
from portal.extensions import db
from portal.ledger import ranges as ledger_ranges
from portal.ledger import services as ledger
from portal.ledger.models import ACCOUNT_KIND_LABELS, Account, AccountKind, Batch, Block
from portal.ledger.services import ALLOCATION_ORDER
from portal.registry import statements as statement_parser
from portal.registry.instructions import RegistryError
from portal.registry.models import (
    BlockStatus,
    InstructionStatus,
    Registry,
    RegistryInstruction,
    RegistryStatement,
    StatementBlock,
    Withholding,
    WithholdingStatus,
)
from portal.timeutil import utcnow

LIVE = {
    AccountKind.INVENTORY,
    AccountKind.BUFFER,
    AccountKind.HOLD,
    AccountKind.RESERVE,
    AccountKind.HOLDING,
    AccountKind.WITHHELD,
}


@dataclass(frozen=True)
class Difference:
    kind: str
    batch_code: str  #: empty for ``registry_only``
    series: str
    unit_first: int
    unit_last: int
    serial_start: int | None  #: portal serials, where in a batch
    serial_end: int | None
    #: Where the serials are in the portal (an account kind), or the registry's status.
    detail: str = ""
    withheld: bool = False

    @property
    def quantity(self) -> int:
        return self.unit_last - self.unit_first + 1


@dataclass
class Report:
    statement: RegistryStatement
    differences: list[Difference]
    batches: int
    withheld: int = 0

    def of_kind(self, kind: str) -> list[Difference]:
        return [d for d in self.differences if d.kind == kind]


KINDS = ("portal_only", "registry_only", "retired_here_active_there", "retired_there_live_here")
DIFFERENCE_LABELS = {
    "portal_only": _l("In the portal but not in the registry"),
    "registry_only": _l("In the registry but not in the portal"),
    "retired_here_active_there": _l("Retired in the portal but active in the registry"),
    "retired_there_live_here": _l("Retired or cancelled in the registry but not here"),
}
#: Where differing serials are: a ledger account, or the registry's own state.
PLACE_LABELS = {
    **ACCOUNT_KIND_LABELS,
    "active": _l("Active in the registry account"),
    "retired_pending": _l("Retired, instruction pending"),
}


def import_statement(data: bytes, *, registry: str, account: str, filename: str, actor: str) -> Report:
    """Read, keep and reconcile a statement; withhold from sale what the registry does not show.
    Refused whole (RegistryError naming the line or the reason) if the file is wrong."""
    if registry not in set(Registry):
        raise RegistryError(
            "invalid_registry", _("Choose the registry the statement is from."), field="registry"
        )
    account = clean_text(
        account,
        field="account",
        label=_("Account in the registry"),
        max_length=120,
        required=True,
        error=RegistryError,
    )
    # The file's name as the browser sent it is kept to show staff which file it was: text as
    # any other (NFC, nothing hidden, no NUL), its last 200 characters.
    filename = clean_text(
        (filename or "")[-200:],
        field="file",
        label=_("File name"),
        max_length=200,
        required=False,
        error=RegistryError,
    )
    parsed = statement_parser.parse(data, registry)
    statement = RegistryStatement(
        registry_name=registry,
        account=account,
        format=parsed.format,
        filename=filename,
        digest=hashlib.sha256(data).hexdigest(),
        rows=len(parsed.blocks),
        imported_by=actor[:120],
    )
    db.session.add(statement)
    db.session.flush()
    db.session.execute(
        StatementBlock.__table__.insert(),
        [
            {
                "statement_id": statement.id,
                "line": b.line,
                "series": b.series,
                "unit_first": b.first,
                "unit_last": b.last,
                "status": b.status,
            }
            for b in parsed.blocks
        ],
    )
    db.session.expire(statement, ["blocks"])
    report = reconcile(statement, withhold=True, actor=actor)
    audit.record(
        actor,
        "registry.statement",
        "registry_statement",
        statement.id,
        after={
            "registry": registry,
            "account": account,
            "format": parsed.format,
            "rows": len(parsed.blocks),
            "differences": {k: sum(d.quantity for d in report.of_kind(k)) for k in KINDS},
            "withheld": report.withheld,
        },
    )
    return report


def latest_statement(registry: str | None = None) -> RegistryStatement | None:
    query = select(RegistryStatement).order_by(RegistryStatement.id.desc()).limit(1)
    if registry:
        query = query.where(RegistryStatement.registry_name == registry)
    return db.session.scalar(query)


def reconcile(statement: RegistryStatement, *, withhold: bool = False, actor: str = "") -> Report:
    """The differences between ``statement`` and the ledger now; with ``withhold``, serials for
    sale that the registry does not show are withheld (see the module's docstring)."""
    shown: dict[str, list[tuple[int, int, str]]] = defaultdict(list)
    for b in statement.blocks:
        shown[b.series].append((b.unit_first, b.unit_last, b.status))
    for blocks in shown.values():
        blocks.sort()
    standards = ("CCER",) if statement.registry_name == Registry.CCER else ("VCS",)
    batches = list(
        db.session.scalars(
            select(Batch)
            .join(Project, Project.id == Batch.project_id)
            .where(
                Project.standard.in_(standards),
                Batch.registry_unit_offset.is_not(None),
                Batch.registry_series != "",
            )
            .order_by(*ALLOCATION_ORDER)
        )
    )
    report = Report(statement, [], len(batches))
    covered: dict[str, list[tuple[int, int]]] = defaultdict(list)
    withheld_account = ledger.system_account(AccountKind.WITHHELD) if withhold else None
    inventory = ledger.system_account(AccountKind.INVENTORY) if withhold else None
    for batch in batches:
        low, high = batch.registry_unit(1), batch.registry_unit(batch.quantity)
        covered[batch.registry_series].append((low, high))
        if withhold:
            ledger_ranges.lock_batch(batch)
        found = _batch_differences(batch, shown.get(batch.registry_series, []))
        for d in found:
            if (
                withhold
                and d.detail == AccountKind.INVENTORY
                and d.kind in ("portal_only", "retired_there_live_here")
            ):
                ledger_ranges.move_range(
                    batch,
                    d.serial_start,
                    d.serial_end,
                    source=inventory,
                    destination=withheld_account,
                    reference=f"registry-statement:{statement.id}",
                    actor=actor,
                )
                withholding = Withholding(
                    statement_id=statement.id,
                    batch_id=batch.id,
                    serial_start=d.serial_start,
                    serial_end=d.serial_end,
                    reason=d.kind,
                )
                db.session.add(withholding)
                db.session.flush()
                audit.record(
                    actor,
                    "registry.withhold",
                    "registry_withholding",
                    withholding.id,
                    after={
                        "batch": batch.code,
                        "serials": f"{d.serial_start}-{d.serial_end}",
                        "reason": d.kind,
                    },
                )
                report.withheld += d.quantity
                d = Difference(**{**d.__dict__, "withheld": True})
            report.differences.append(d)
    for series, blocks in shown.items():
        report.differences += _registry_only(series, blocks, sorted(covered.get(series, [])))
    return report


def _portal_segments(batch: Batch) -> list[tuple[int, int, str]]:
    """The batch's serials as (start, end, state): an account kind, or ``retired_pending``."""
    rows = db.session.execute(
        select(Block.serial_start, Block.serial_end, Account.kind)
        .join(Account, Account.id == Block.account_id)
        .where(Block.batch_id == batch.id)
        .order_by(Block.serial_start)
    ).all()
    pending = sorted(
        (s, e)
        for ranges in db.session.scalars(
            select(RegistryInstruction.ranges).where(
                RegistryInstruction.batch_id == batch.id,
                RegistryInstruction.status == InstructionStatus.PENDING,
            )
        )
        for s, e in (tuple(int(n) for n in part.split("-")) for part in ranges.split(","))
    )
    out: list[tuple[int, int, str]] = []
    for start, end, kind in rows:
        if kind != AccountKind.RETIRED:
            out.append((start, end, kind))
            continue
        position = start
        for s, e in pending:
            if e < position or s > end:
                continue
            if s > position:
                out.append((position, s - 1, kind))
            out.append((max(s, position), min(e, end), "retired_pending"))
            position = min(e, end) + 1
        if position <= end:
            out.append((position, end, kind))
    return out


def _batch_differences(batch: Batch, shown: list[tuple[int, int, str]]) -> list[Difference]:
    """Sweep the batch's serials against the registry's blocks (in portal serials)."""
    offset = batch.registry_unit_offset
    registry = [
        (max(a - offset, 1), min(b - offset, batch.quantity), status)
        for a, b, status in shown
        if b - offset >= 1 and a - offset <= batch.quantity
    ]
    out: list[Difference] = []
    for start, end, state in _portal_segments(batch):
        position = start
        pieces = [(s, e, st) for s, e, st in registry if e >= start and s <= end]
        for s, e, status in pieces:
            if s > position:
                _classify(out, batch, position, s - 1, state, None)
            _classify(out, batch, max(s, position), min(e, end), state, status)
            position = min(e, end) + 1
        if position <= end:
            _classify(out, batch, position, end, state, None)
    return out


def _classify(
    out: list[Difference], batch: Batch, start: int, end: int, state: str, status: str | None
) -> None:
    if state in LIVE and status is None:
        kind = "portal_only"
    elif state in LIVE and status in (BlockStatus.RETIRED, BlockStatus.CANCELLED):
        kind = "retired_there_live_here"
    elif state == AccountKind.RETIRED and status == BlockStatus.ACTIVE:
        kind = "retired_here_active_there"
    else:
        return
    detail = state
    previous = out[-1] if out else None
    if (
        previous is not None
        and previous.kind == kind
        and previous.detail == detail
        and previous.batch_code == batch.code
        and previous.serial_end + 1 == start
    ):
        out[-1] = Difference(
            kind,
            batch.code,
            batch.registry_series,
            previous.unit_first,
            batch.registry_unit(end),
            previous.serial_start,
            end,
            detail,
        )
        return
    out.append(
        Difference(
            kind,
            batch.code,
            batch.registry_series,
            batch.registry_unit(start),
            batch.registry_unit(end),
            start,
            end,
            detail,
        )
    )


def _registry_only(series: str, shown, batches: list[tuple[int, int]]) -> list[Difference]:
    """Registry units of ``series`` that no portal batch numbers."""
    out = []
    for first, last, status in shown:
        position = first
        for low, high in batches:
            if high < position or low > last:
                continue
            if low > position:
                out.append(Difference("registry_only", "", series, position, low - 1, None, None, status))
            position = max(position, high + 1)
        if position <= last:
            out.append(Difference("registry_only", "", series, position, last, None, None, status))
    return out


# --- resolving withheld serials ------------------------------------------------------------------


def open_withholdings(limit: int = 500) -> list[Withholding]:
    return list(
        db.session.scalars(
            select(Withholding)
            .where(Withholding.status == WithholdingStatus.WITHHELD)
            .order_by(Withholding.id)
            .limit(limit)
        )
    )


def resolve(withholding: Withholding, *, outcome: str, note, actor: str) -> Withholding:
    """Staff's resolution of withheld serials: ``released`` (the registry shows them after all:
    back to sale) or ``cancelled`` (the registry does not have them: cancelled in the ledger)."""
    from portal.core.text import clean_text

    note = clean_text(
        note, field="note", label=_("What was found"), max_length=500, required=True, error=RegistryError
    )
    if outcome not in (WithholdingStatus.RELEASED, WithholdingStatus.CANCELLED):
        raise RegistryError("invalid_outcome", _("Choose release to sale or cancellation."), field="outcome")
    db.session.execute(select(Withholding.id).where(Withholding.id == withholding.id).with_for_update())
    db.session.refresh(withholding)
    if withholding.status != WithholdingStatus.WITHHELD:
        raise RegistryError("already_resolved", _("These serials were already resolved."), status=409)
    destination = ledger.system_account(
        AccountKind.INVENTORY if outcome == WithholdingStatus.RELEASED else AccountKind.CANCELLED
    )
    ledger_ranges.move_range(
        withholding.batch,
        withholding.serial_start,
        withholding.serial_end,
        source=ledger.system_account(AccountKind.WITHHELD),
        destination=destination,
        reference=f"registry-withholding:{withholding.id}",
        actor=actor,
    )
    withholding.status = outcome
    withholding.resolved_at = utcnow()
    withholding.resolved_by = actor[:120]
    withholding.resolution_note = note
    db.session.flush()
    audit.record(
        actor,
        "registry.resolve",
        "registry_withholding",
        withholding.id,
        before={"status": WithholdingStatus.WITHHELD},
        after={
            "status": outcome,
            "batch": withholding.batch.code,
            "serials": f"{withholding.serial_start}-{withholding.serial_end}",
            "note": note,
        },
    )
    return withholding
