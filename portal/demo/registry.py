"""The demo's registry hand-off: instructions older than a week and a half were confirmed by
the registry a few working days after the retirement (so the queue shows recent ones pending,
and a few overdue), each with a registry reference in the registry's style."""

import random
from datetime import datetime, timedelta

from sqlalchemy import select

from portal.extensions import db
from portal.ledger import serials
from portal.registry import instructions
from portal.registry.models import InstructionStatus, RegistryInstruction
from portal.timeutil import BEIJING, as_of

#: Instructions retired before ``now`` minus this are confirmed in the demo.
CONFIRMED_BEFORE = timedelta(days=10)


def hand_off(rng: random.Random, now: datetime) -> int:
    """Confirm the demo's older instructions, as the operator would have. Returns how many."""
    pending = db.session.scalars(
        select(RegistryInstruction)
        .where(
            RegistryInstruction.status == InstructionStatus.PENDING,
            RegistryInstruction.created_at < now - CONFIRMED_BEFORE,
        )
        .order_by(RegistryInstruction.id)
    ).all()
    for n, instruction in enumerate(pending, 1):
        moment = instruction.created_at + timedelta(days=rng.randint(2, 7), hours=rng.randint(0, 6))
        batch = instruction.batch
        units = instructions.registry_units(instruction)
        if units is None:
            continue
        first, last = units[0][0], units[-1][1]
        standard = batch.project.standard
        if serials.registry_of(standard) == "verra":
            start = serials.range_serial(
                standard, batch.registry_series, first, last, template=batch.registry_serial_start
            )
            end = ""
            reference = f"VCU-RET-{moment:%Y}-{100000 + n}"
        else:
            template = batch.registry_serial_start
            start = serials.unit_serial(standard, batch.registry_series, first, template=template)
            end = serials.unit_serial(standard, batch.registry_series, last, template=template)
            reference = f"ZX-{moment.astimezone(BEIJING):%Y%m%d}-{n:06d}"
        with as_of(moment):
            instructions.confirm(
                instruction,
                reference=reference,
                registry_date=moment.astimezone(BEIJING).date(),
                serial_start=start,
                serial_end=end,
                actor="demo",
            )
    return len(pending)
