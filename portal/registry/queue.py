"""The staff queue: instructions grouped by registry and batch, and the export for the
registry's forms (CSV and XLSX, one row per serial range, in the registry's own notation)."""

from dataclasses import dataclass, field

from sqlalchemy import select

from portal.core.i18n import iso_beijing
from portal.extensions import db
from portal.ledger.models import Batch
from portal.registry import instructions
from portal.registry.models import InstructionStatus, RegistryInstruction

#: The most instructions the queue page shows at once (the export has no such limit).
PAGE_MAX = 500


@dataclass
class Group:
    registry: str
    batch: Batch
    items: list = field(default_factory=list)

    @property
    def quantity(self) -> int:
        return sum(i.quantity for i in self.items)


def _query(status: str | None, registry: str | None):
    query = select(RegistryInstruction).join(Batch, Batch.id == RegistryInstruction.batch_id)
    if status:
        query = query.where(RegistryInstruction.status == status)
    if registry:
        query = query.where(RegistryInstruction.registry_name == registry)
    return query.order_by(RegistryInstruction.registry_name, Batch.code, RegistryInstruction.id)


def groups(status: str | None, registry: str | None) -> tuple[list[Group], bool]:
    """Instructions by registry and batch (at most ``PAGE_MAX``), and whether there are more."""
    rows = list(db.session.scalars(_query(status, registry).limit(PAGE_MAX + 1)))
    out: list[Group] = []
    for instruction in rows[:PAGE_MAX]:
        if not out or (out[-1].registry, out[-1].batch.id) != (
            instruction.registry_name,
            instruction.batch_id,
        ):
            out.append(Group(instruction.registry_name, instruction.batch))
        out[-1].items.append(instruction)
    return out, len(rows) > PAGE_MAX


EXPORT_HEADER = [
    "instruction_id",
    "registry",
    "action",
    "project_registry_id",
    "project_name",
    "batch_code",
    "batch_registry_reference",
    "vintage_start",
    "vintage_end",
    "registry_serial_start",
    "registry_serial_end",
    "registry_serials",
    "quantity",
    "beneficiary",
    "purpose",
    "compliance_year",
    "certificate_number",
    "certificate_url",
    "retired_at_utc+08:00",
    "status",
]


def export_rows(status: str | None, registry: str | None):
    """The rows of the export: one per serial range of each instruction."""
    from portal.core.i18n import absolute_url

    yield EXPORT_HEADER
    for instruction in db.session.scalars(_query(status, registry).execution_options(yield_per=500)):
        batch = instruction.batch
        project = batch.project
        units = instructions.registry_units(instruction) or [(None, None)] * len(instruction.serial_ranges)
        written = instructions.registry_serials(instruction)
        for (start, end), (unit_first, unit_last), text in zip(
            instruction.serial_ranges, units, written, strict=True
        ):
            yield [
                instruction.id,
                instruction.registry_name,
                instruction.kind,
                project.registry_id,
                project.name_zh,
                batch.code,
                batch.registry_reference,
                batch.vintage_start,
                batch.vintage_end,
                _unit_text(batch, unit_first) if unit_first is not None else "",
                _unit_text(batch, unit_last) if unit_last is not None else "",
                text,
                end - start + 1,
                instruction.beneficiary,
                instruction.purpose,
                instruction.compliance_year or "",
                instruction.certificate_number,
                absolute_url("certificates.show", number=instruction.certificate_number),
                iso_beijing(instruction.created_at),
                instruction.status,
            ]


def _unit_text(batch: Batch, unit: int) -> str:
    from portal.ledger import serials

    return serials.unit_serial(
        batch.project.standard, batch.registry_series, unit, template=batch.registry_serial_start
    )


def pending_by_registry() -> dict[str, int]:
    from sqlalchemy import func

    return dict(
        db.session.execute(
            select(RegistryInstruction.registry_name, func.count())
            .where(RegistryInstruction.status == InstructionStatus.PENDING)
            .group_by(RegistryInstruction.registry_name)
        ).all()
    )
