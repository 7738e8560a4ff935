"""An organisation's webhook endpoints, through its API key and on its account page: the secret
shown once, bad URLs and events refused with a translated reason, no one reaching another's."""

import pytest
from sqlalchemy import select

from portal.audit.models import AuditEvent
from portal.buyers import services as buyers
from portal.extensions import db
from portal.webhooks.models import WebhookEndpoint
from tests import factories

bearer = factories.bearer
HOOK = "http://127.0.0.1:9/hook"


@pytest.fixture
def keys(app):
    factories.steel_and_cement()
    factories.user("sales@portal.cn", role="sales")
    db.session.commit()
    return {
        "steel": factories.api_key(app, "--org", factories.STEEL_USCC),
        "cement": factories.api_key(app, "--org", factories.CEMENT_USCC),
        "sales": factories.api_key(app, "--user", "sales@portal.cn"),
    }


def _create(client, key, **body):
    body = {"url": HOOK, "events": ["certificate.issued", "invoice.paid"]} | body
    return client.post("/api/v1/webhook-endpoints", json=body, headers=bearer(key))


def test_an_endpoint_is_made_listed_rotated_and_removed(client, keys):
    made = _create(client, keys["steel"])
    assert made.status_code == 201
    endpoint = made.get_json()
    assert endpoint["url"] == HOOK and endpoint["events"] == ["certificate.issued", "invoice.paid"]
    assert endpoint["secret"].startswith("whsec_") and endpoint["id"].startswith("we_")
    listed = client.get("/api/v1/webhook-endpoints", headers=bearer(keys["steel"])).get_json()["items"]
    assert [e["id"] for e in listed] == [endpoint["id"]] and "secret" not in listed[0]
    rotated = client.post(
        f"/api/v1/webhook-endpoints/{endpoint['id']}/rotate-secret", headers=bearer(keys["steel"])
    )
    assert rotated.status_code == 200 and rotated.get_json()["secret"] not in (None, endpoint["secret"])
    stored = db.session.scalar(select(WebhookEndpoint))
    assert stored.secret == rotated.get_json()["secret"]
    gone = client.delete(f"/api/v1/webhook-endpoints/{endpoint['id']}", headers=bearer(keys["steel"]))
    assert gone.status_code == 204
    assert client.get("/api/v1/webhook-endpoints", headers=bearer(keys["steel"])).get_json()["items"] == []
    actions = [a for (a,) in db.session.execute(select(AuditEvent.action).order_by(AuditEvent.id))]
    assert actions[-3:] == ["webhook.create", "webhook.rotate_secret", "webhook.delete"]


def test_no_organisation_reaches_anothers_endpoint(client, keys):
    endpoint = _create(client, keys["steel"]).get_json()["id"]
    for method, path in (
        ("DELETE", f"/api/v1/webhook-endpoints/{endpoint}"),
        ("POST", f"/api/v1/webhook-endpoints/{endpoint}/rotate-secret"),
    ):
        answer = client.open(path, method=method, headers=bearer(keys["cement"]))
        assert answer.status_code == 404 and answer.get_json()["error"]["code"] == "unknown_endpoint"
    assert client.get("/api/v1/webhook-endpoints", headers=bearer(keys["cement"])).get_json()["items"] == []
    assert db.session.scalar(select(WebhookEndpoint)).deleted_at is None


def test_staff_keys_have_no_endpoints(client, keys):
    answer = _create(client, keys["sales"])
    assert answer.status_code == 403


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"url": "ftp://example.com/x"}, "invalid_url_scheme"),
        ({"url": "https://user:pw@example.com/"}, "invalid_url_credentials"),
        ({"url": "https://" + "a" * 2100 + ".cn/"}, "invalid_url_too_long"),
        ({"url": "https://no-such-host.invalid/"}, "invalid_url_unresolvable"),
        ({"url": 42}, "invalid_url_empty"),
        ({"events": []}, "invalid_events"),
        ({"events": ["order.shipped"]}, "invalid_events"),
        ({"events": "certificate.issued,invoice.paid"}, "invalid_events"),
        ({"events": [{"x": 1}]}, "invalid_events"),
    ],
)
def test_bad_endpoints_are_refused_and_nothing_is_stored(client, keys, body, code):
    answer = _create(client, keys["steel"], **body)
    assert answer.status_code == 400 and answer.get_json()["error"]["code"] == code
    assert answer.get_json()["error"]["message"]
    assert db.session.scalar(select(WebhookEndpoint)) is None


def test_private_addresses_are_refused_outside_the_embedded_default(app, client, keys):
    app.config["WEBHOOKS_ALLOW_PRIVATE"] = False
    for url in (HOOK, "http://169.254.169.254/latest/meta-data/", "http://[::1]:8000/", "http://localhost/"):
        answer = _create(client, keys["steel"], url=url)
        assert answer.get_json()["error"]["code"] == "invalid_url_forbidden_address", url
    chinese = _create(client, keys["steel"], url=HOOK).get_json()["error"]["message"]
    assert "公网地址" in chinese


def test_an_organisation_has_at_most_ten_endpoints(client, keys):
    for _ in range(10):
        assert _create(client, keys["steel"]).status_code == 201
    answer = _create(client, keys["steel"])
    assert answer.status_code == 409 and answer.get_json()["error"]["code"] == "too_many_endpoints"


def test_the_account_page_shows_the_secret_once_to_the_admin_only(app, client):
    steel, _cement = factories.steel_and_cement()
    factories.user("admin@steel.cn", organisation=steel, org_admin=True)
    factories.user("clerk@steel.cn", organisation=steel)
    db.session.commit()
    client.post("/login", data={"email": "clerk@steel.cn", "password": factories.PASSWORD})
    assert client.get("/account/webhooks").status_code == 403
    client.get("/logout")
    client.post("/login", data={"email": "admin@steel.cn", "password": factories.PASSWORD})
    page = client.get("/account/webhooks?lang=en").get_data(as_text=True)
    assert "No endpoints yet." in page and "Deliveries" in page
    made = client.post("/account/webhooks", data={"url": HOOK, "events": ["certificate.issued"]})
    assert made.status_code == 201 and made.headers["Cache-Control"].find("no-store") >= 0
    secret = db.session.scalar(select(WebhookEndpoint)).secret
    assert secret in made.get_data(as_text=True)
    assert secret not in client.get("/account/webhooks").get_data(as_text=True)
    refused = client.post("/account/webhooks", data={"url": "ftp://x", "events": ["certificate.issued"]})
    assert refused.status_code == 400 and "https://" in refused.get_data(as_text=True)
    account = client.get("/account").get_data(as_text=True)
    assert "/account/webhooks" in account


def test_a_suspended_organisation_manages_no_endpoints(app, client, keys):
    from portal.buyers.models import Organisation

    steel = db.session.scalar(select(Organisation).filter_by(uscc=factories.STEEL_USCC))
    buyers.change_status(steel, "suspended", reason="unpaid invoices", actor="t")
    db.session.commit()
    assert _create(client, keys["steel"]).status_code in (401, 403)
    assert db.session.scalar(select(WebhookEndpoint)) is None
