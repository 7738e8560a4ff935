"""The API keys page: organisation admins and staff; keys shown once; no one touches another's."""

import re

import pytest
from sqlalchemy import select

from portal.buyers import services as buyers
from portal.buyers.models import ApiKey
from portal.extensions import db
from tests import factories

STEEL, CEMENT, PASSWORD = factories.STEEL_USCC, factories.CEMENT_USCC, factories.PASSWORD


@pytest.fixture
def users(app):
    steel, cement = factories.steel_and_cement()
    factories.user("admin@steel.cn", organisation=steel, org_admin=True)
    factories.user("clerk@steel.cn", organisation=steel)
    factories.user("admin@cement.cn", organisation=cement, org_admin=True)
    factories.user("sales@portal.cn", role="sales")
    db.session.commit()


def sign_in(client, email):
    assert client.post("/login", data={"email": email, "password": PASSWORD}).status_code == 302


def test_an_admin_creates_uses_and_revokes_a_key(users, client):
    sign_in(client, "admin@steel.cn")
    created = client.post("/account/keys?lang=en", data={"label": "ERP"})
    assert created.status_code == 201 and "no-store" in created.headers["Cache-Control"]
    key = re.search(r"cfk_[0-9a-f]{12}_[\w-]+", created.get_data(as_text=True)).group(0)
    assert "cfk_" not in client.get("/account/keys").get_data(as_text=True).replace(
        "cfk_" + key.split("_")[1] + "_…", ""
    )
    assert client.get("/api/v1/holdings", headers={"Authorization": f"Bearer {key}"}).status_code == 200
    prefix = key.split("_")[1]
    assert client.post(f"/account/keys/{prefix}/revoke", data={"confirm": "yes"}).status_code == 303
    assert client.get("/api/v1/holdings", headers={"Authorization": f"Bearer {key}"}).status_code == 401


def test_plain_members_and_anonymous_cannot_manage_keys(users, client):
    assert client.get("/account/keys").status_code == 302
    sign_in(client, "clerk@steel.cn")
    assert client.get("/account/keys").status_code == 403
    assert client.post("/account/keys", data={"label": "x"}).status_code == 403


def test_no_one_revokes_another_organisations_key(users, client, app):
    cement = buyers.find_by_uscc(CEMENT)
    _key, _plain = buyers.create_api_key(organisation=cement, label="theirs")
    db.session.commit()
    sign_in(client, "admin@steel.cn")
    assert client.post(f"/account/keys/{_key.prefix}/revoke").status_code == 404
    assert db.session.scalar(select(ApiKey).filter_by(prefix=_key.prefix)).revoked_at is None
    assert "theirs" not in client.get("/account/keys").get_data(as_text=True)


def test_staff_manage_their_own_keys(users, client):
    sign_in(client, "sales@portal.cn")
    assert client.post("/account/keys", data={"label": "CRM"}).status_code == 201
    key = db.session.scalar(select(ApiKey))
    assert key.user.email == "sales@portal.cn" and key.organisation is None


def test_registered_admin_of_a_pending_organisation_gets_no_keys(app, client):
    buyers.register(
        name_zh="待审核公司",
        name_en="",
        uscc=STEEL,
        sector="steel",
        contact_name="王",
        contact_phone="1",
        email="new@steel.cn",
        password=PASSWORD,
        address="127.0.0.1",
    )
    user = buyers.find_user("new@steel.cn")
    user.confirmed_at = user.created_at
    db.session.commit()
    assert user.is_org_admin
    sign_in(client, "new@steel.cn")
    assert client.get("/account/keys").status_code == 403
