"""``flask demo load``"""

import logging
import time

import click
from flask.cli import AppGroup

from portal.demo import services
from portal.extensions import db

demo_cli = AppGroup("demo", help="The demo data set.")


@demo_cli.command("load")
@click.option(
    "--scale",
    default=1,
    show_default=True,
    type=click.IntRange(1, 1000),
    help="Multiply projects, batches and buyers (100 gives 10,000 batches).",
)
@click.option("--if-empty", is_flag=True, help="Do nothing when the database already has data.")
def load_command(scale, if_empty):
    """Load deterministic demo data into an empty database."""
    if not services.database_is_empty():
        if if_empty:
            click.echo("database has data; demo data not loaded")
            return
        raise click.ClickException("the database is not empty; demo data goes only into an empty one")
    started = time.perf_counter()
    # One log line per movement is right for production, noise for a bulk load.
    logging.getLogger("portal").setLevel(logging.WARNING)

    def progress(done, total):
        if total >= 10 and done % max(1, total // 10) == 0:
            click.echo(f"  {done}/{total} project sets")

    counts = services.load(scale, progress=progress)
    db.session.commit()
    if db.engine.dialect.name == "postgresql":
        # Fresh statistics, or the planner guesses badly on the tables it has just seen grow.
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("ANALYZE")
    click.echo(
        "demo sign-in (password "
        + services.DEMO_PASSWORD
        + "): "
        + ", ".join(email for email, _role, _org in services.DEMO_USERS)
    )
    click.echo(
        "county reviewers (same password): county-<unit code>@demo.local, e.g. county-aohan@demo.local"
    )
    click.echo(
        f"demo data loaded in {time.perf_counter() - started:.1f} s: "
        + ", ".join(f"{v} {k}" for k, v in counts.items())
    )
