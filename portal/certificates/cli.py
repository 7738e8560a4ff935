"""``flask certificates …``: keep certificates' public answers drawn ahead of visitors."""

import click
from flask.cli import AppGroup

from portal.certificates import renditions

certificates_cli = AppGroup("certificates", help="Retirement certificates.")


@certificates_cli.command("draw")
@click.option("--limit", default=1000, show_default=True, help="At most this many certificates per batch.")
@click.option("--all", "everything", is_flag=True, help="Repeat until none is left to draw.")
def draw_command(limit, everything):
    """Draw and keep the public page (both languages) and JSON of certificates lacking them as
    this release draws them, newest first (after a deployment; the jobs worker does this too)."""
    total, below = 0, None
    while True:
        drawn, below = renditions.draw_ahead(limit=limit, below=below)
        total += drawn
        if not everything or drawn < limit:
            break
    click.echo(f"drew {total} certificate(s) ahead")
