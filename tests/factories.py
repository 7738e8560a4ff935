"""Factory functions: small, explicit, each returning a flushed object."""

import itertools
from datetime import date
from decimal import Decimal

from portal.catalog.models import Listing, Project, Region
from portal.extensions import db
from portal.ledger import services as ledger
from portal.ledger.models import Batch

_counter = itertools.count(1)


def region(code=None):
    n = next(_counter)
    r = Region(
        code=code or f"r{n}",
        name_zh=f"测试旗{n}",
        name_en=f"Test Banner {n}",
        pinyin=f"Ceshi {n}",
        kind="banner",
    )
    db.session.add(r)
    db.session.flush()
    return r


def project(code=None, standard="CCER", type="forestry", region_=None, methodology="CCER-14-001-V01"):
    n = next(_counter)
    p = Project(
        code=code or f"P{n:04d}",
        name_zh=f"测试项目{n}",
        name_en=f"Test project {n}",
        standard=standard,
        methodology=methodology,
        type=type,
        region=region_ or region(),
        area_ha=Decimal("1000.00"),
        crediting_start=date(2021, 1, 1),
        crediting_end=date(2050, 12, 31),
    )
    db.session.add(p)
    db.session.flush()
    return p


def batch(quantity=100, vintage=2022, project_=None, code=None, buffer=0, price="68.00", issue=True):
    """A batch of ``quantity`` t, issued into inventory (the last ``buffer`` t to the buffer)."""
    p = project_ or project()
    n = next(_counter)
    b = Batch(
        code=code or f"B{n:05d}-{vintage}",
        project_id=p.id,
        vintage_start=date(vintage, 1, 1),
        vintage_end=date(vintage, 12, 31),
        quantity=quantity,
        issued_on=date(vintage + 1, 6, 1),
    )
    db.session.add(b)
    db.session.flush()
    db.session.add(Listing(batch_id=b.id, price_per_t=Decimal(price)))
    if issue:
        ledger.issue_batch(b, buffer_quantity=buffer, reference="test", actor="test")
    db.session.flush()
    return b


# --- buyers --------------------------------------------------------------------------------------

#: Published, valid unified social credit codes (check characters correct).
STEEL_USCC = "91350100M000100Y43"
CEMENT_USCC = "91110000802100433B"
#: Good enough for the password rules.
PASSWORD = "long-enough-pw-7"


def steel_and_cement():
    """Two approved buyer organisations: a steel company and a cement company."""
    from portal.buyers import services as buyers

    steel = buyers.create_organisation(name_zh="测试钢铁", uscc=STEEL_USCC, sector="steel", approve=True)
    cement = buyers.create_organisation(
        name_zh="测试水泥", uscc=CEMENT_USCC, sector="building_materials", approve=True
    )
    return steel, cement


_hashes: dict[str, str] = {}


def _hash_once(password: str) -> str:
    """scrypt costs 0.1 s a hash; factory users share one real hash per password (signing in
    still checks it the real way)."""
    from werkzeug.security import generate_password_hash

    if password not in _hashes:
        _hashes[password] = generate_password_hash(password)
    return _hashes[password]


def user(email, role="buyer", organisation=None, org_admin=False, region=None):
    from unittest import mock

    from portal.buyers import accounts
    from portal.buyers import services as buyers

    with mock.patch.object(accounts, "generate_password_hash", _hash_once):
        created = buyers.create_user(
            email=email, password=PASSWORD, role=role, organisation=organisation, region=region
        )
    created.is_org_admin = org_admin
    return created


def api_key(app, *args) -> str:
    """A new API key from the CLI: ``api_key(app, "--org", USCC)`` or ``("--user", email)``."""
    result = app.test_cli_runner().invoke(args=["apikeys", "create", *args])
    assert result.exit_code == 0, result.output
    return result.output.strip()


def sign_in_with_token(client, email, password=PASSWORD):
    """Sign in through the real form, its CSRF token included (for ``csrf_app``)."""
    page = client.get("/login").get_data(as_text=True)
    token = page.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
    return client.post("/login", data={"email": email, "password": password, "csrf_token": token})


def bearer(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}
