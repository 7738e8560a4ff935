"""Every route is guarded by ``portal.access`` or marked public, and the rules it decides.

The routes are read from the URL map: a new endpoint without ``@page``, ``require_key`` or
``@public`` fails here until its author says who may call it."""

import re
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest

from portal import access
from portal.access import ACTIONS, Principal, may, owns
from portal.buyers.models import ApiKey, Role
from portal.certificates.models import Certificate
from portal.contracts.models import Contract, Invoice
from portal.offsets.models import Order
from tests import factories
from tests.conftest import make_app
from tests.contracts.test_contract_views import Desk, sign_in

#: Endpoints that Flask itself adds.
FRAMEWORK = {"static"}
PORTAL = Path(__file__).resolve().parents[2] / "portal"


def _routes():
    app = make_app("sqlite://")
    return sorted(
        {(rule.rule, rule.endpoint, app.view_functions[rule.endpoint]) for rule in app.url_map.iter_rules()},
        key=lambda route: route[:2],
    )


ROUTES = _routes()


def test_every_route_is_guarded_or_explicitly_public():
    unguarded = [
        (path, endpoint)
        for path, endpoint, view in ROUTES
        if endpoint not in FRAMEWORK and getattr(view, "access", None) is None
    ]
    assert unguarded == [], "add @page(...), require_key(...) or @public to these endpoints"


def test_pages_and_the_api_use_their_own_guard():
    for path, endpoint, view in ROUTES:
        if endpoint in FRAMEWORK:
            continue
        kind, actions = view.access
        if kind == "public":
            assert actions == (), endpoint
        else:
            # An API caller is answered in JSON (401/403), never sent to a sign-in page.
            assert kind == ("api" if path.startswith("/api/") else "page"), endpoint
            assert actions and all(action in ACTIONS for action in actions), (endpoint, actions)


def test_every_action_in_the_table_guards_something_or_is_asked():
    """A name in the table that nothing uses is a typo or dead weight."""
    guarded = {action for _p, e, view in ROUTES if e not in FRAMEWORK for action in view.access[1]}
    source = "\n".join(
        p.read_text(encoding="utf-8") for p in PORTAL.rglob("*") if p.suffix in (".py", ".html")
    )
    asked = set(re.findall(r"""may\([^,()]+, ["']([a-z_]+\.[a-z_]+)["']""", source))
    asked |= set(re.findall(r"""_url\(["']([a-z_]+\.[a-z_]+)["']""", source))  # staff/readable.py
    assert set(ACTIONS) - guarded - asked == set()


def test_no_role_is_compared_outside_the_access_module():
    comparison = re.compile(r"\.role\s*(==|!=|in\b|not in\b)|\bin STAFF_ROLES\b")
    found = [
        f"{path.relative_to(PORTAL)}:{number}: {line.strip()}"
        for path in PORTAL.rglob("*")
        if path.suffix in (".py", ".html") and path.name != "access.py"
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if comparison.search(line)
    ]
    assert found == []


# --- the rules, object by object -------------------------------------------------------------------

STEEL_ORG = SimpleNamespace(id=1, status="approved")
CEMENT_ORG = SimpleNamespace(id=2, status="approved")


def buyer(organisation=STEEL_ORG, admin=True):
    user = SimpleNamespace(id=10 + organisation.id, is_org_admin=admin)
    return Principal(Role.BUYER, organisation, "t", user)


def staff(role, user_id=99):
    return Principal(role, None, "t", SimpleNamespace(id=user_id, is_org_admin=False))


SIGNED = datetime(2026, 1, 5, tzinfo=UTC)


def test_a_buyer_sees_its_own_organisations_things_only():
    mine, theirs = buyer(), buyer(CEMENT_ORG)
    contract = Contract(organisation_id=1, signed_at=SIGNED)
    things = [
        Order(organisation_id=1),
        contract,
        Invoice(contract=contract),
        Certificate(organisation_id=1),
    ]
    for thing in things:
        assert owns(mine, thing) and not owns(theirs, thing), thing
    for thing in things[:3]:
        assert may(mine, "view", thing) and not may(theirs, "view", thing), thing
    assert may(mine, "invoices.pay", things[2]) and not may(theirs, "invoices.pay", things[2])


def test_a_draft_is_no_buyers_not_even_its_own():
    draft = Contract(organisation_id=1, signed_at=None)
    assert not may(buyer(), "view", draft)
    assert not may(buyer(), "view", Invoice(contract=draft))
    assert may(staff(Role.SALES), "view", draft)


@pytest.mark.parametrize("role", [Role.SALES, Role.OPERATOR, Role.AUDITOR])
def test_staff_read_every_order_and_contract_and_pay_nothing(role):
    contract = Contract(organisation_id=1, signed_at=SIGNED)
    for thing in (Order(organisation_id=1), contract, Invoice(contract=contract)):
        assert may(staff(role), "view", thing)
        assert not owns(staff(role), thing)
    assert not may(staff(role), "invoices.pay", Invoice(contract=contract))
    assert may(staff(role), "invoices.record_payment") == (role != Role.AUDITOR)
    assert may(staff(role), "contracts.manage") == (role == Role.SALES)


def test_the_auditor_reads_and_changes_nothing():
    auditor = staff(Role.AUDITOR)
    reads = [a for a in ACTIONS if a.endswith((".read", "_read", ".read_all"))]
    changes = [a for a in ACTIONS if not a.endswith((".read", "_read", ".read_all", ".read_own"))]
    assert all(may(auditor, a) for a in reads if a != "mail.outbox_read")
    assert [a for a in changes if may(auditor, a)] == ["apikeys.manage"]  # its own keys


def test_api_keys_are_managed_by_an_approved_organisations_admin_or_by_staff():
    key = ApiKey(organisation_id=1)
    assert may(buyer(), "apikeys.manage", key)
    assert not may(buyer(CEMENT_ORG), "apikeys.manage", key)
    assert not may(buyer(admin=False), "apikeys.manage")
    for status, allowed in (("restricted", True), ("pending", False), ("suspended", False)):
        organisation = SimpleNamespace(id=3, status=status)
        assert may(buyer(organisation), "apikeys.manage") == allowed, status
    own, other = ApiKey(user_id=99), ApiKey(user_id=98)
    assert may(staff(Role.SALES), "apikeys.manage", own)
    assert not may(staff(Role.SALES), "apikeys.manage", other)
    assert not may(staff(Role.SALES), "apikeys.manage", key)


def test_anonymous_visitors_and_api_buyers_may_do_nothing_they_are_not_given():
    assert not may(SimpleNamespace(is_authenticated=False), "account.read")
    assert not may(None, "orders.read_own")
    api_buyer = Principal(Role.BUYER, STEEL_ORG, "apikey:x")
    assert not may(api_buyer, "apikeys.manage")  # keys are managed on the web only
    assert may(api_buyer, "holdings.retire") and not may(api_buyer, "orders.read_all")


def test_home_pages_follow_the_role():
    assert access.home_page(SimpleNamespace(role=Role.SALES)) == "contracts.staff_contracts"
    assert access.home_page(SimpleNamespace(role="visitor")) == "buyers.account"


# --- the routes whose guard moved into a decorator -------------------------------------------------


@pytest.fixture
def desk(app):
    return Desk()


def test_signing_in_comes_first_on_the_shared_contract_addresses(desk, client):
    for path in (
        f"/contracts/{desk.active.number}",
        f"/contracts/{desk.active.number}.pdf",
        f"/invoices/{desk.invoice.number}.pdf",
        "/account",
    ):
        response = client.get(path)
        assert response.status_code == 302 and "/login" in response.headers["Location"], path


def test_another_buyer_gets_404_on_the_shared_contract_addresses(desk, client):
    sign_in(client, "other_buyer")
    for path in (
        f"/contracts/{desk.active.number}",
        f"/invoices/{desk.invoice.number}.pdf",
        f"/account/invoices/{desk.invoice.number}",
    ):
        assert client.get(path).status_code == 404, path
    assert client.get(f"/contracts/{desk.theirs.number}").status_code == 302  # its own


def test_staff_keys_may_not_read_orders_and_buyer_keys_not_anothers(app, client):
    steel, cement = factories.steel_and_cement()
    factories.user("sales@portal.cn", role="sales")
    from portal.extensions import db

    db.session.commit()
    sales = factories.api_key(app, "--user", "sales@portal.cn")
    headers = {**factories.bearer(sales), "Accept-Language": "en"}
    response = client.get("/api/v1/orders/ord_" + "0" * 20, headers=headers)
    assert response.status_code == 403
    assert response.get_json()["error"] == {"code": "forbidden", "message": "This key may not do that."}
    other = factories.api_key(app, "--org", factories.CEMENT_USCC)
    response = client.get("/api/v1/contracts", headers=factories.bearer(other))
    assert response.status_code == 200 and response.get_json()["items"] == []
