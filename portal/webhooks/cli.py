"""``flask webhooks deliver``."""

import click
from flask.cli import AppGroup

from portal.webhooks import services

webhooks_cli = AppGroup("webhooks", help="Webhooks to buyers.")


@webhooks_cli.command("deliver")
@click.option("--limit", default=50, show_default=True)
def deliver(limit):
    """Deliver the webhooks that are due now (the jobs worker does this every minute)."""
    counts = services.deliver_due(limit=limit)
    click.echo(f"{counts['delivered']} delivered, {counts['failed_attempts']} failed attempt(s)")
