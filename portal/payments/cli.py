"""``flask payments deferred``."""

import click
from flask.cli import AppGroup

from portal.payments import services

payments_cli = AppGroup("payments", help="Stripe events and payments.")


@payments_cli.command("deferred")
def deferred():
    """Apply Stripe events that waited for their payment; bring those waiting over an hour to staff."""
    counts = services.apply_deferred()  # each committed on its own
    click.echo(
        f"applied {counts['applied']} deferred event(s); {counts['waiting']} still waiting, "
        f"{counts['reported']} reported to staff"
    )
