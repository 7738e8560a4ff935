"""``flask contracts reserve`` and ``flask contracts overdue``."""

import click
from flask.cli import AppGroup

from portal.contracts import services
from portal.extensions import db

contracts_cli = AppGroup("contracts", help="Offtake contracts.")


@contracts_cli.command("reserve")
def reserve():
    """Top up every active contract's reserve from matching listed stock, soonest due first."""
    got = services.reserve_all(actor="cli:contracts reserve")
    click.echo(f"reserved {sum(got.values())} t for {len(got)} contract(s)")


@contracts_cli.command("overdue")
def overdue():
    """Tell buyers and owners (once) about invoices past their due date."""
    told = services.notify_overdue(actor="cli:contracts overdue")
    db.session.commit()
    click.echo(f"{len(told)} overdue invoice(s) notified")
