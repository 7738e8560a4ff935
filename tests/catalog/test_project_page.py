"""The project page with its buy forms, served from the catalog's cache: what a request costs,
that every kind of visitor (a guest, an alliance member, a buyer who is not one) gets their own
page however their requests interleave, and that a change shows on the very next request."""

import re
import threading

import pytest
from sqlalchemy import create_engine, select, text

from portal.alliance import services as alliance
from portal.buyers import services as buyers
from portal.catalog import cache
from portal.catalog import services as catalog
from portal.extensions import db
from portal.ledger import services as ledger
from portal.ledger.models import AccountKind, Batch
from tests import factories
from tests.alliance.conftest import make_member
from tests.conftest import Client
from tests.sql import statements_of

PAGE = "/projects/PP-01?lang=en"


def sign_in(app, email):
    client = app.test_client()
    response = client.post("/login", data={"email": email, "password": factories.PASSWORD})
    assert response.status_code == 302, response.get_data(as_text=True)[:300]
    return client


@pytest.fixture
def shop(any_app):
    """PP-01 with PP-2021 (100 t at 60.00) and PP-2023 (50 t at 80.00); steel is an alliance
    member (10 % off), cement is not; a user of each; their clients and a guest's."""
    any_app.test_client_class = Client
    steel, cement = factories.steel_and_cement()
    project = factories.project(code="PP-01")
    factories.batch(quantity=100, vintage=2021, project_=project, code="PP-2021", price="60.00")
    factories.batch(quantity=50, vintage=2023, project_=project, code="PP-2023", price="80.00")
    factories.user("member@steel.cn", organisation=steel)
    factories.user("buyer@cement.cn", organisation=cement)
    make_member(steel)
    alliance.set_terms("10", "0", actor="t")
    db.session.commit()
    return {
        "guest": any_app.test_client(),
        "member": sign_in(any_app, "member@steel.cn"),
        "other": sign_in(any_app, "buyer@cement.cn"),
    }


def page(client) -> str:
    response = client.get(PAGE)
    assert response.status_code == 200
    return response.get_data(as_text=True)


def row(text: str, code: str) -> str:
    """The batch's row of the issuance history."""
    return text.split(f'<tr id="batch-{code}">')[1].split("</tr>")[0]


def price_offered(text: str, code: str) -> str | None:
    """The price per tonne the batch's buy form offers (None: no form)."""
    return offered(row(text, code))


def offered(batch_row: str) -> str | None:
    found = re.search(r'data-price="([0-9.]+)"', batch_row)
    return found.group(1) if found else None


def batch(code) -> Batch:
    return db.session.scalar(select(Batch).filter_by(code=code))


def test_each_visitor_gets_their_own_page_however_the_requests_interleave(shop, any_app):
    seen = {}
    for _round in range(3):  # the first round builds the pages, the others are served cached
        for who in ("member", "guest", "other", "member", "other", "guest"):
            # The same page each time, but for the sign-out form's token (signed with the time).
            seen.setdefault(who, set()).add(re.sub(r'name="csrf_token" value="[^"]+"', "", page(shop[who])))
    assert all(len(texts) == 1 for texts in seen.values())
    member, other, guest = seen["member"].pop(), seen["other"].pop(), seen["guest"].pop()

    assert price_offered(member, "PP-2021") == "54.00" and price_offered(member, "PP-2023") == "72.00"
    assert "Member price" in member and "member@steel.cn" in member and "buyer@cement.cn" not in member
    assert price_offered(other, "PP-2021") == "60.00" and price_offered(other, "PP-2023") == "80.00"
    assert "Member price" not in other and "buyer@cement.cn" in other and "member@steel.cn" not in other
    assert price_offered(guest, "PP-2021") == "60.00" and "Member price" not in guest
    assert "Sign in" in guest and "@" not in guest.split("<main")[0]  # nobody's address
    assert "csrf_token" not in guest  # a guest's page carries no token of any session
    assert any_app.extensions["catalog_cache"].hits > 0


def test_a_cached_page_costs_one_query_for_a_guest_and_two_for_a_buyer(shop):
    for who in shop:
        page(shop[who])
    guest = statements_of(lambda: page(shop["guest"]))
    assert len(guest) == 1, guest  # the data version: the whole page comes from the cache
    for who in ("member", "other"):
        statements = statements_of(lambda who=who: page(shop[who]))
        # The signed-in user with their organisation (is it a member?) and the data version;
        # nothing of the page's own data.
        assert len(statements) == 2, statements
        assert not any(re.search(r"\b(batches|listings|projects|blocks)\b", s) for s in statements)


def test_a_page_built_afresh_costs_the_same_statements_with_2_or_30_batches(shop, any_app):
    project = factories.project(code="PP-MANY")
    for vintage in range(1990, 2020):
        factories.batch(quantity=10, vintage=vintage, project_=project)
    db.session.commit()
    for who in ("guest", "member"):
        cache.bump_revision(db.session.connection())  # nothing cached any more
        db.session.commit()
        few = statements_of(lambda who=who: page(shop[who]))
        many = statements_of(lambda who=who: shop[who].get("/projects/PP-MANY?lang=en"))
        assert len(few) == len(many), (few, many)


@pytest.mark.parametrize("who", ["guest", "member", "other"])
def test_a_price_change_shows_on_the_next_request(shop, who):
    page(shop[who])
    page(shop[who])  # cached
    catalog.set_listing(batch("PP-2021"), price_per_t="65.00", active=True, actor="t")
    db.session.commit()
    assert price_offered(page(shop[who]), "PP-2021") == ("58.50" if who == "member" else "65.00")


@pytest.mark.parametrize("who", ["guest", "member", "other"])
def test_a_batch_sold_out_shows_on_the_next_request(shop, who):
    assert "Sold out" not in row(page(shop[who]), "PP-2023")
    ledger.transfer(
        50,
        source=ledger.system_account(AccountKind.INVENTORY),
        destination=ledger.open_account(AccountKind.HOLDING, "ORG"),
        batch_codes=["PP-2023"],
    )
    db.session.commit()
    sold = row(page(shop[who]), "PP-2023")
    assert "Sold out" in sold and offered(sold) is None


@pytest.mark.parametrize("who", ["guest", "member", "other"])
def test_a_withdrawn_listing_shows_on_the_next_request(shop, who):
    assert price_offered(page(shop[who]), "PP-2023") is not None
    catalog.set_listing(batch("PP-2023"), price_per_t="80.00", active=False, actor="t")
    db.session.commit()
    withdrawn = row(page(shop[who]), "PP-2023")
    assert "Not for sale" in withdrawn and 'value="PP-2023"' not in withdrawn


def test_the_member_discount_and_membership_show_on_the_next_request(shop):
    for who in shop:
        page(shop[who])
    alliance.set_terms("20", "0", actor="t")
    db.session.commit()
    assert price_offered(page(shop["member"]), "PP-2021") == "48.00"
    assert price_offered(page(shop["other"]), "PP-2021") == "60.00"
    assert price_offered(page(shop["guest"]), "PP-2021") == "60.00"

    steel, cement = _organisations()
    make_member(cement)  # cement joins: its buyer gets the member price at once
    db.session.commit()
    assert price_offered(page(shop["other"]), "PP-2021") == "48.00"
    alliance.leave(steel, actor="t", reason="业务调整")  # steel leaves: the listed price
    db.session.commit()
    assert price_offered(page(shop["member"]), "PP-2021") == "60.00"
    assert "Member price" not in page(shop["member"])
    assert price_offered(page(shop["guest"]), "PP-2021") == "60.00"


@pytest.mark.parametrize("who", ["guest", "other"])
def test_a_cached_page_showing_a_first_call_is_rebuilt_when_it_ends(shop, who, monkeypatch):
    from datetime import timedelta

    from portal.alliance import offers
    from portal.catalog.models import Listing
    from portal.timeutil import utcnow

    alliance.set_terms("10", "7", actor="t")
    db.session.scalar(select(Listing).join(Batch).where(Batch.code == "PP-2023")).listed_at = utcnow()
    db.session.commit()
    for _ in range(2):  # built, then cached
        first_call = row(page(shop[who]), "PP-2023")
        assert "Alliance members first" in first_call and offered(first_call) is None
    later = utcnow() + timedelta(days=8)
    for module in (cache, offers, alliance):
        monkeypatch.setattr(module, "utcnow", lambda: later)
    assert offered(row(page(shop[who]), "PP-2023")) == "80.00"


def _organisations():
    return buyers.find_by_uscc(factories.STEEL_USCC), buyers.find_by_uscc(factories.CEMENT_USCC)


def test_the_sign_out_form_carries_each_sessions_own_token(csrf_app):
    factories.batch(quantity=10, project_=factories.project(code="PP-01"), code="PP-2021")
    steel, cement = factories.steel_and_cement()
    factories.user("a@steel.cn", organisation=steel)
    factories.user("b@cement.cn", organisation=cement)
    db.session.commit()
    first, second = csrf_app.test_client(), csrf_app.test_client()
    assert factories.sign_in_with_token(first, "a@steel.cn").status_code == 302
    assert factories.sign_in_with_token(second, "b@cement.cn").status_code == 302

    def token(client):
        form = page(client).split('action="/logout"')[1]
        return re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)

    first_token = token(first)
    page(second)  # the cached body is shared; the tokens are not
    second_token = token(second)
    assert first_token != second_token
    assert second.post("/logout", data={"csrf_token": first_token}).status_code == 400  # not its own
    assert "b@cement.cn" in page(second)  # still signed in
    assert second.post("/logout", data={"csrf_token": second_token}).status_code == 302


# --- PostgreSQL: the data version ---------------------------------------------------------------


def test_a_transaction_that_ended_changes_no_version_unless_it_changed_the_catalog(pg_app):
    """Transactions of other work (and of other databases on the server) come and go; only
    while one is in progress in this database may it change what pages show."""
    pg_app.test_client_class = Client
    factories.batch(quantity=10, project_=factories.project(code="PP-01"), code="PP-2021")
    db.session.commit()
    guest = pg_app.test_client()
    page(guest)
    other = create_engine(db.engine.url, isolation_level="AUTOCOMMIT")
    try:
        with other.connect() as connection:
            for _ in range(3):  # each takes a transaction id and ends: the server's snapshot moves
                connection.execute(text("BEGIN; SELECT pg_current_xact_id(); COMMIT"))
            before = cache.data_version()
            connection.execute(text("BEGIN"))
            connection.execute(text("SELECT pg_current_xact_id()"))  # a writer, in progress
            during = cache.data_version()
            connection.execute(text("COMMIT"))
        assert before != during
        assert cache.data_version() == before
        assert len(statements_of(lambda: page(guest))) == 1  # still served from the cache
    finally:
        other.dispose()


def test_a_movement_with_earlier_entries_committed_later_shows_at_once(pg_app):
    """Entry ids are taken in one order and committed in another: a movement whose entries come
    before the last one committed must still show when it commits (PostgreSQL)."""
    pg_app.test_client_class = Client
    project = factories.project(code="PP-01")
    factories.batch(quantity=100, vintage=2021, project_=project, code="PP-2021")
    factories.batch(quantity=100, vintage=2023, project_=project, code="PP-2023")
    ledger.open_account(AccountKind.HOLDING, "A")
    ledger.open_account(AccountKind.HOLDING, "B")
    db.session.commit()
    guest = pg_app.test_client()
    flushed, go, failed = threading.Event(), threading.Event(), []

    def earlier():
        try:
            with pg_app.app_context():
                ledger.transfer(
                    10,
                    source=ledger.system_account(AccountKind.INVENTORY),
                    destination=ledger.open_account(AccountKind.HOLDING, "A"),
                    batch_codes=["PP-2021"],
                )
                db.session.flush()  # its entries have their ids
                flushed.set()
                go.wait(30)
                db.session.commit()
                db.session.remove()
        except Exception as exc:  # pragma: no cover - reported below
            failed.append(exc)
            flushed.set()

    thread = threading.Thread(target=earlier)
    thread.start()
    try:
        assert flushed.wait(30) and not failed
        with pg_app.app_context():  # a later movement, committed first: the highest entry id
            ledger.transfer(
                5,
                source=ledger.system_account(AccountKind.INVENTORY),
                destination=ledger.open_account(AccountKind.HOLDING, "B"),
                batch_codes=["PP-2023"],
            )
            db.session.commit()
            db.session.remove()
        shown = page(guest)
        assert ">100<" in row(shown, "PP-2021") and ">95<" in row(shown, "PP-2023")
        assert page(guest) == shown  # cached
    finally:
        go.set()
        thread.join(30)
    assert not failed
    assert ">90<" in row(page(guest), "PP-2021")
