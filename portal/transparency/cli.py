"""``flask log …``: sign tree heads, append what predates the log, verify it."""

import sys

import click
from flask.cli import AppGroup
from sqlalchemy.exc import IntegrityError

from portal.extensions import db
from portal.transparency import services

log_cli = AppGroup("log", help="The public transparency log of certificates.")


@log_cli.command("sign")
def sign_command():
    """Sign a tree head if the log has grown since the last one (the jobs worker does this)."""
    try:
        head = services.sign_new_head()
        db.session.commit()
    except IntegrityError:  # another signer signed the same size a moment ago
        db.session.rollback()
        head = None
    if head is None:
        click.echo("no new entries: the latest tree head stands")
    else:
        click.echo(f"signed the tree head of size {head.tree_size}")


@log_cli.command("backfill")
def backfill_command():
    """Append the events of certificates issued before the log existed (once, after upgrading)."""
    count = services.backfill()
    db.session.commit()
    click.echo(f"appended {count} earlier certificate event(s)")


@log_cli.command("verify")
@click.option("--max-problems", default=50, show_default=True, help="How many problems to print.")
def verify_command(max_problems):
    """Recompute the tree from the database and check it; exit 1 if anything fails."""
    report = services.verify_log()
    db.session.rollback()
    click.echo(
        f"checked {report.leaves} leaves, {report.heads} signed tree heads, {report.certificates} certificates"
    )
    if report.ok:
        click.echo("log OK: every certificate event is logged once, in order, and every head matches")
        return
    click.echo(f"LOG BROKEN: {len(report.problems)} problem(s)", err=True)
    for problem in report.problems[:max_problems]:
        click.echo(f"  - {problem}", err=True)
    if len(report.problems) > max_problems:
        click.echo(f"  … and {len(report.problems) - max_problems} more", err=True)
    sys.exit(1)
