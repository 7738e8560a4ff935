"""``flask orders expire``."""

import click
from flask.cli import AppGroup

from portal.offsets import services

orders_cli = AppGroup("orders", help="Checkout orders.")


@orders_cli.command("expire")
def expire():
    """Release the holds of unpaid orders past their 30 minutes, and cancel their payments."""
    released = services.expire_due()  # each committed on its own
    for order in released:
        services.cancel_payment(order)
    click.echo(f"released {len(released)} expired hold(s)")
