"""``flask registry …``: the hand-off to the official registries from the command line."""

import csv
import sys
from pathlib import Path

import click
from flask.cli import AppGroup

from portal.extensions import db
from portal.registry import instructions, overdue, reconcile
from portal.registry import queue as listing
from portal.registry.models import InstructionStatus, Registry, RegistryStatement
from portal.registry.statements import MAX_BYTES

registry_cli = AppGroup(
    "registry", help="Registry instructions, confirmations, statements and reconciliation."
)


@registry_cli.command("export")
@click.option("--registry", type=click.Choice([r.value for r in Registry]), help="Only this registry.")
@click.option(
    "--status",
    type=click.Choice([s.value for s in InstructionStatus]),
    default="pending",
    show_default=True,
)
@click.option(
    "--output", type=click.Path(dir_okay=False, writable=True), help="File (CSV); standard output if unset."
)
def export_command(registry, status, output):
    """The instructions as CSV for the registry's forms (one row per serial range)."""
    target = open(output, "w", newline="", encoding="utf-8-sig") if output else sys.stdout  # noqa: SIM115
    try:
        writer = csv.writer(target)
        for row in listing.export_rows(status, registry):
            writer.writerow(row)
    finally:
        if output:
            target.close()
    db.session.rollback()


@registry_cli.command("confirm")
@click.argument("instruction_id", type=int)
@click.option("--reference", required=True, help="The registry's reference of the retirement.")
@click.option("--date", "when", required=True, help="The date of the registry's record (YYYY-MM-DD).")
@click.option(
    "--serial-start", required=True, help="Registry serial of the first credit (Verra: the block serial)."
)
@click.option("--serial-end", default="", help="Registry serial of the last credit (CCER).")
def confirm_command(instruction_id, reference, when, serial_start, serial_end):
    """Record the registry's confirmation of an instruction (signed, audited)."""
    found = instructions.find(instruction_id)
    if found is None:
        raise click.ClickException(f"there is no registry instruction {instruction_id}")
    try:
        instructions.confirm(
            found,
            reference=reference,
            registry_date=when,
            serial_start=serial_start,
            serial_end=serial_end,
            actor="cli",
        )
    except instructions.RegistryError as exc:
        db.session.rollback()
        raise click.ClickException(exc.message) from None
    db.session.commit()
    click.echo(f"instruction {instruction_id} confirmed: {reference} of {when}")


@registry_cli.command("import-statement")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--registry", type=click.Choice([r.value for r in Registry]), required=True)
@click.option("--account", required=True, help="The operator's account in the registry.")
def import_command(path, registry, account):
    """Import a registry account statement (CSV), reconcile it and withhold from sale what the
    registry does not show; prints the report."""
    file = Path(path)
    with file.open("rb") as f:
        data = f.read(MAX_BYTES + 1)
    try:
        report = reconcile.import_statement(
            data, registry=registry, account=account, filename=file.name, actor="cli"
        )
    except instructions.RegistryError as exc:
        db.session.rollback()
        raise click.ClickException(exc.message) from None
    db.session.commit()
    click.echo(f"statement {report.statement.id}: {report.statement.rows} blocks")
    _print(report)


@registry_cli.command("reconcile")
@click.option("--statement", "statement_id", type=int, help="The statement (default: the latest).")
def reconcile_command(statement_id):
    """Print the reconciliation of a statement with the ledger as it is now (changes nothing)."""
    statement = (
        db.session.get(RegistryStatement, statement_id) if statement_id else reconcile.latest_statement()
    )
    if statement is None:
        raise click.ClickException("no such statement")
    report = reconcile.reconcile(statement)
    db.session.rollback()
    _print(report)
    if report.differences:
        sys.exit(1)


def _print(report) -> None:
    for kind in reconcile.KINDS:
        found = report.of_kind(kind)
        click.echo(f"{kind}: {sum(d.quantity for d in found)} t in {len(found)} range(s)")
        for d in found[:50]:
            where = f"{d.batch_code} serials {d.serial_start}-{d.serial_end}, " if d.batch_code else ""
            mark = " [withheld]" if d.withheld else ""
            click.echo(f"  {where}{d.series} units {d.unit_first}-{d.unit_last} ({d.detail}){mark}")
    click.echo(f"withheld from sale now: {report.withheld} t")


@registry_cli.command("overdue")
def overdue_command():
    """Tell the operators, once, about instructions pending beyond the configured working days."""
    reported = overdue.report_overdue()
    db.session.commit()
    click.echo(f"{reported} instruction(s) reported")
