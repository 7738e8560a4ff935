"""``flask ledger …``"""

import sys

import click
from flask.cli import AppGroup

from portal.extensions import db
from portal.ledger.verify import verify_ledger

ledger_cli = AppGroup("ledger", help="Inspect and check the credit ledger.")


@ledger_cli.command("verify")
@click.option("--max-problems", default=50, show_default=True, help="How many problems to print.")
def verify_command(max_problems):
    """Replay the journal and check every invariant; exit 1 if any fails."""
    report = verify_ledger()
    db.session.rollback()
    click.echo(
        f"checked {report.batches} batches ({report.serials} t), {report.blocks} blocks, "
        f"{report.entries} journal entries, {report.accounts} accounts; {report.retired} t retired"
    )
    if report.ok:
        click.echo("ledger OK: every invariant holds")
        return
    click.echo(f"LEDGER BROKEN: {len(report.problems)} problem(s)", err=True)
    for problem in report.problems[:max_problems]:
        click.echo(f"  - {problem}", err=True)
    if len(report.problems) > max_problems:
        click.echo(f"  … and {len(report.problems) - max_problems} more", err=True)
    sys.exit(1)
