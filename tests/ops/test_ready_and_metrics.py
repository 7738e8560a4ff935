"""``/readyz`` names what is not ready; ``/metrics`` counts per URL rule, reads the business
figures from the database, and shows nothing to a stranger."""

import re

import pytest
from sqlalchemy import text

from portal.certificates import services as certificates
from portal.extensions import db
from portal.ops import readiness
from portal.webhooks import services as webhooks
from tests import factories


def _metric(body: str, name: str, **labels) -> float | None:
    for line in body.splitlines():
        if line.startswith("#"):
            continue
        match = re.match(r"([a-zA-Z_:]+)(\{(.*)\})? (\S+)$", line)
        if not match or match.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(3) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(match.group(4))
    return None


# --- /readyz -------------------------------------------------------------------------------------


def test_ready_when_everything_answers(any_app):
    response = any_app.test_client().get("/readyz")
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["status"] == "ready"
    assert set(body["checks"]) == {"database", "migrations", "signing_key", "pdf_signing", "jobs_queue"}
    assert response.headers["Cache-Control"] == "no-store"


def test_not_ready_names_the_migration_and_the_keys(app, tmp_path):
    db.session.execute(text("UPDATE alembic_version SET version_num = '0001'"))
    db.session.commit()
    broken_key = tmp_path / "broken.pem"
    broken_key.write_text("not a key")
    app.config.update(SIGNING_KEY_FILE=str(broken_key), PDF_SIGNING_CERT_FILE=str(tmp_path / "missing.pem"))
    app.config["PDF_SIGNING_KEY_FILE"] = str(tmp_path / "missing-key.pem")
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "not_ready"
    assert body["failed"] == ["migrations", "pdf_signing", "signing_key"]
    assert "0001" in body["checks"]["migrations"]
    assert str(tmp_path) not in response.get_data(as_text=True)  # no paths in a public answer
    assert body["checks"]["database"] == "ok"


def test_a_database_at_head_is_not_asked_again_for_a_while(app):
    client = app.test_client()
    assert client.get("/readyz").status_code == 200
    db.session.execute(text("UPDATE alembic_version SET version_num = '0001'"))
    db.session.commit()
    assert client.get("/readyz").status_code == 200  # cached: one query fewer per probe
    app.extensions["portal.readiness"]["at_head_until"] = 0.0
    assert client.get("/readyz").get_json()["failed"] == ["migrations"]


def test_an_unreachable_database_and_queue(app, monkeypatch):
    def down():
        raise OSError("connection refused")

    monkeypatch.setitem(readiness.CHECKS, "database", down)
    monkeypatch.setattr("portal.jobs.engine.huey_of", lambda _app: (_ for _ in ()).throw(OSError("no queue")))
    body = app.test_client().get("/readyz").get_json()
    assert body["failed"] == ["database", "jobs_queue", "migrations"]
    assert body["checks"]["database"] == "unreachable"
    assert body["checks"]["migrations"] == "not checked: no database"


def test_healthz_stays_liveness_without_a_database(app, monkeypatch):
    def no_database(*_args, **_kwargs):
        raise AssertionError("healthz touched the database")

    monkeypatch.setattr(db.session, "execute", no_database)
    assert app.test_client().get("/healthz").get_json() == {"status": "ok"}


# --- /metrics ------------------------------------------------------------------------------------


@pytest.fixture
def figures(app):
    steel, _cement = factories.steel_and_cement()
    factories.batch(quantity=50, code="B-METRICS")
    from portal.buyers import services as buyers

    buyers.deliver_from_inventory(steel, 10)
    webhooks.create_endpoint(steel, "http://127.0.0.1:9/hook", ["certificate.issued"], actor="t")
    certificates.retire_from_holding(steel, 3, beneficiary="测试钢铁", purpose="voluntary", actor="t")
    db.session.commit()
    return steel


def test_metrics_count_per_url_rule_and_read_the_business_figures(figures, app):
    app.config["WEBHOOKS_ALLOW_PRIVATE"] = True
    client = app.test_client()
    client.get("/certificates/CFC-2026-AAAA-AAAA")
    client.get("/certificates/CFC-2026-BBBB-BBBB")
    body = client.get("/metrics").get_data(as_text=True)
    assert "CFC-2026-AAAA" not in body  # the rule, never the raw path
    assert _metric(body, "portal_http_requests_total", endpoint="/certificates/<number>", method="GET") >= 2
    assert _metric(body, "portal_http_request_duration_seconds_count", endpoint="/certificates/<number>") >= 2
    assert _metric(body, "portal_retirements_total") == 1
    assert _metric(body, "portal_retired_tonnes_total") == 3
    assert _metric(body, "portal_ledger_movements_total", kind="retire") == 1
    assert _metric(body, "portal_webhook_deliveries", status="pending") == 1
    assert _metric(body, "portal_orders", status="fulfilled") == 0
    assert _metric(body, "portal_jobs_queue_depth") is not None
    assert _metric(body, "portal_registry_instructions_pending") is not None
    assert _metric(body, "portal_webhook_failed_attempts_total") == 0


@pytest.mark.parametrize(
    ("config", "environ", "headers", "status"),
    [
        ({}, {"REMOTE_ADDR": "127.0.0.1"}, {}, 200),
        ({}, {"REMOTE_ADDR": "203.0.113.9"}, {}, 404),
        ({"METRICS_ALLOW": "10.0.0.0/8, nonsense"}, {"REMOTE_ADDR": "10.2.3.4"}, {}, 200),
        ({"METRICS_ALLOW": "10.0.0.0/8"}, {"REMOTE_ADDR": "127.0.0.1"}, {}, 404),
        (
            {"METRICS_ALLOW": "", "METRICS_TOKEN": "s3cret-token"},
            {"REMOTE_ADDR": "203.0.113.9"},
            {"Authorization": "Bearer s3cret-token"},
            200,
        ),
        (
            {"METRICS_ALLOW": "", "METRICS_TOKEN": "s3cret-token"},
            {"REMOTE_ADDR": "203.0.113.9"},
            {"Authorization": "Bearer s3cret-tokem"},
            404,
        ),
        (
            {"METRICS_ALLOW": "", "METRICS_TOKEN": ""},
            {"REMOTE_ADDR": "127.0.0.1"},
            {"Authorization": "Bearer "},
            404,
        ),
        # Through a proxy the portal was not told about, the address is the proxy's: not trusted.
        ({}, {"REMOTE_ADDR": "127.0.0.1"}, {"X-Forwarded-For": "203.0.113.9"}, 404),
    ],
)
def test_only_allowed_addresses_or_the_token_read_metrics(app, config, environ, headers, status):
    app.config.update(config)
    response = app.test_client().get("/metrics", environ_base=environ, headers=headers)
    assert response.status_code == status
    if status == 404:
        assert b"portal_" not in response.data


def test_behind_proxy_fix_the_forwarded_client_is_judged(tmp_path, sqlite_template):
    from tests.conftest import _sqlite_app

    app = _sqlite_app(tmp_path, sqlite_template, PROXY_FIX_X_FOR=1, METRICS_ALLOW="10.0.0.0/8")
    client = app.test_client()
    proxy = {"REMOTE_ADDR": "127.0.0.1"}
    assert (
        client.get("/metrics", environ_base=proxy, headers={"X-Forwarded-For": "10.1.1.1"}).status_code == 200
    )
    stranger = client.get("/metrics", environ_base=proxy, headers={"X-Forwarded-For": "203.0.113.9"})
    assert stranger.status_code == 404
