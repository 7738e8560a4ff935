"""``flask orgs …``, ``flask users …``, ``flask apikeys …`` and ``flask ledger deliver``."""

import sys

import click
from flask.cli import AppGroup
from sqlalchemy import select

from portal.buyers import services
from portal.buyers.models import Role, Sector
from portal.extensions import db
from portal.ledger.errors import LedgerError

orgs_cli = AppGroup("orgs", help="Buyer organisations.")


def _fail(message: str):
    db.session.rollback()
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


@orgs_cli.command("create")
@click.argument("name")
@click.option("--uscc", required=True, help="Unified social credit code (18 characters).")
@click.option("--sector", required=True, type=click.Choice([s.value for s in Sector]))
@click.option("--name-en", default="")
@click.option("--alliance", is_flag=True, help="Member of the Green Low-Carbon Enterprise Alliance.")
@click.option("--ets", is_flag=True, help="National-ETS compliance entity.")
@click.option("--approve", is_flag=True, help="Approve at once.")
def create_org(name, uscc, sector, name_en, alliance, ets, approve):
    """Create a buyer organisation."""
    try:
        org = services.create_organisation(
            name_zh=name,
            name_en=name_en,
            uscc=uscc,
            sector=sector,
            alliance_member=alliance,
            ets_entity=ets,
            approve=approve,
        )
    except services.OrganisationError as exc:
        _fail(exc.message)
    db.session.commit()
    click.echo(f"organisation {org.uscc} {org.name_zh} ({org.status})")


@orgs_cli.command("status")
@click.argument("uscc")
@click.argument("status", type=click.Choice(["approved", "suspended", "restricted", "barred"]))
@click.option(
    "--reason", required=True, help="Why (published at /notices for a suspension, restriction or bar)."
)
@click.option("--order-limit", type=int, help="Restricted: most tonnes per order.")
@click.option("--year-limit", type=int, help="Restricted: most tonnes per calendar year.")
def set_status(uscc, status, reason, order_limit, year_limit):
    """Approve, suspend, restrict, bar or reinstate (approved) an organisation."""
    try:
        org = services.change_status(
            services.find_by_uscc(uscc),
            status,
            reason=reason,
            order_limit_t=order_limit,
            year_limit_t=year_limit,
        )
    except services.OrganisationError as exc:
        _fail(exc.message)
    db.session.commit()
    click.echo(f"organisation {org.uscc} is now {org.status}")


@click.command("deliver")
@click.option("--org", "uscc", required=True, help="The buyer's unified social credit code.")
@click.option("--quantity", required=True, type=int, help="Whole tonnes.")
@click.option("--batch", "batch_codes", multiple=True, help="Take only from this batch (repeatable).")
def deliver_command(uscc, quantity, batch_codes):
    """Deliver credits from inventory to an organisation's holding (an offline sale)."""
    try:
        org = services.find_by_uscc(uscc)
        movement = services.deliver_from_inventory(org, quantity, batch_codes=list(batch_codes) or None)
    except services.OrganisationError as exc:
        _fail(exc.message)
    except LedgerError as exc:
        _fail(exc.message)
    db.session.commit()
    click.echo(f"delivered {movement.quantity} t to {org.uscc} (movement {movement.id}):")
    for moved in movement.ranges:
        click.echo(
            f"  {moved.batch_code} serials {moved.serial_start}-{moved.serial_end} ({moved.quantity} t)"
        )


users_cli = AppGroup("users", help="Users: buyers and staff.")


@users_cli.command("create")
@click.argument("email")
@click.option("--role", required=True, type=click.Choice([r.value for r in Role]))
@click.option("--org", "uscc", help="The organisation's USCC (buyers only).")
@click.option("--county", "county", help="The county-level unit's code (county reviewers only), e.g. aohan.")
def create_user(email, role, uscc, county):
    """Create a user; the password is read from standard input."""
    from portal.catalog.models import Region

    region = None
    if county:
        region = db.session.scalar(select(Region).filter_by(code=county.strip()))
        if region is None:
            _fail(f"no county-level unit has the code {county!r}")
    if sys.stdin.isatty():
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    try:
        organisation = services.find_by_uscc(uscc) if uscc else None
        user = services.create_user(
            email=email, password=password, role=role, organisation=organisation, region=region
        )
    except services.OrganisationError as exc:
        _fail(exc.message)
    db.session.commit()
    scope = organisation.uscc if organisation else region.code if region else ""
    click.echo(f"user {user.email} ({user.role}{', ' + scope if scope else ''})")


apikeys_cli = AppGroup("apikeys", help="API keys for /api/v1.")


@apikeys_cli.command("create")
@click.option("--org", "uscc", help="An organisation's key (its USCC).")
@click.option(
    "--user",
    "email",
    help="A staff member's or county reviewer's key, carrying that user's role (and county).",
)
@click.option("--label", default="", help="What the key is for.")
def create_key(uscc, email, label):
    """Print a new API key. It is shown once and stored only hashed."""
    if bool(uscc) == bool(email):
        _fail("give exactly one of --org and --user")
    try:
        if uscc:
            key, plaintext = services.create_api_key(organisation=services.find_by_uscc(uscc), label=label)
        else:
            key, plaintext = services.create_api_key(user=services.find_user(email), label=label)
    except services.OrganisationError as exc:
        _fail(exc.message)
    db.session.commit()
    click.echo(plaintext)


@apikeys_cli.command("revoke")
@click.argument("prefix")
def revoke_key(prefix):
    """Revoke a key by its prefix (the part after ``cfk_``)."""
    try:
        key = services.revoke_api_key(prefix)
    except services.OrganisationError as exc:
        _fail(exc.message)
    db.session.commit()
    click.echo(f"key {key.prefix} revoked at {key.revoked_at:%Y-%m-%d %H:%M:%S} UTC")
