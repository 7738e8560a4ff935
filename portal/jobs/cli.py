"""``flask jobs worker|run|list``."""

import click
from flask import current_app
from flask.cli import AppGroup

from portal.jobs import engine
from portal.jobs.work import JOBS

jobs_cli = AppGroup("jobs", help="Background jobs.")


@jobs_cli.command("worker")
@click.option("--threads", default=2, show_default=True, help="Jobs run at once in this worker.")
@click.option("--no-periodic", is_flag=True, help="Run queued work only (another worker schedules).")
def worker(threads, no_periodic):
    """Run jobs until stopped (Ctrl-C or SIGINT finishes the running ones first)."""
    app = current_app._get_current_object()
    huey = engine.huey_of(app)
    click.echo(f"jobs worker on {type(huey).__name__}, {threads} thread(s)")
    huey.create_consumer(workers=threads, periodic=not no_periodic, worker_type="thread").run()


@jobs_cli.command("run")
@click.argument("name", type=click.Choice(sorted(JOBS)))
def run_one(name):
    """Run one job now, in this process (recorded like a worker's run)."""
    app = current_app._get_current_object()
    done = engine.run(app, name, slot=f"cli {engine._slot(engine.utcnow())} {engine.secrets.token_hex(3)}")
    click.echo(f"{name}: {done.status}: {done.outcome}")
    if done.status != "done":
        raise SystemExit(1)


@jobs_cli.command("list")
def list_jobs():
    """The jobs and how often each runs."""
    for name, job in JOBS.items():
        every = f"every {job.every_minutes} min" if job.every_minutes else "when asked"
        click.echo(f"{name:20} {every:16} {job.description}")
