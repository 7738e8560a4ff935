"""API keys (shown once, stored hashed, revocable) and GET /api/v1/holdings."""

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from portal.audit.models import AuditEvent
from portal.buyers import services as buyers
from portal.buyers.models import ApiKey
from portal.extensions import db
from portal.ledger import services as ledger
from tests import factories

STEEL, CEMENT = factories.STEEL_USCC, factories.CEMENT_USCC


@pytest.fixture
def app(any_app):
    """Both databases: on PostgreSQL an organisation's key is read with its organisation through
    the driver's cursor and put in the session (``apikeys._by_prefix_committed``); on SQLite,
    and for a person's key, by the session."""
    return any_app


@pytest.fixture
def orgs(app):
    steel = buyers.create_organisation(name_zh="测试钢铁", uscc=STEEL, sector="steel", approve=True)
    cement = buyers.create_organisation(
        name_zh="测试水泥", uscc=CEMENT, sector="building_materials", approve=True
    )
    factories.batch(quantity=500, code="B-2021", vintage=2021)
    factories.batch(quantity=500, code="B-2022", vintage=2022)
    buyers.deliver_from_inventory(steel, 120)
    buyers.deliver_from_inventory(cement, 30, batch_codes=["B-2022"])
    ledger.retire(20, source=buyers.holding_account(steel))
    db.session.commit()
    return steel, cement


def _key(cli_args, app):
    return factories.api_key(app, *cli_args)


bearer = factories.bearer


def test_an_organisation_sees_its_own_holding_only(orgs, app, client):
    key = _key(["--org", STEEL], app)
    data = client.get("/api/v1/holdings", headers=bearer(key)).get_json()
    assert data == {
        "blocks": [{"batch_code": "B-2021", "serial_start": 21, "serial_end": 120, "quantity": 100}],
        "total": 100,
    }
    other = _key(["--org", CEMENT], app)
    data = client.get("/api/v1/holdings", headers=bearer(other)).get_json()
    assert data["total"] == 30 and {b["batch_code"] for b in data["blocks"]} == {"B-2022"}


def test_the_key_is_stored_hashed_and_shown_once(orgs, app):
    key = _key(["--org", STEEL, "--label", "ERP"], app)
    assert key.startswith("cfk_")
    secret = key.split("_", 2)[2]
    stored = db.session.scalar(select(ApiKey))
    assert secret not in (stored.secret_hash, stored.prefix) and len(stored.secret_hash) == 64
    dump = " ".join(str(v) for row in db.session.execute(text("SELECT * FROM api_keys")) for v in row)
    assert secret not in dump


@pytest.mark.parametrize(
    "header",
    [
        None,
        "Bearer",
        "Bearer nonsense",
        "Basic abc",
        "Bearer cfk_deadbeef0000_x",
        "Bearer " + "cfk_" + "a" * 500,
    ],
)
def test_missing_or_bad_keys_are_401(orgs, app, client, header):
    response = client.get("/api/v1/holdings", headers={"Authorization": header} if header else {})
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "invalid_api_key"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_tampered_secret_is_refused(orgs, app, client):
    key = _key(["--org", STEEL], app)
    tampered = key[:-1] + ("A" if key[-1] != "A" else "B")
    assert client.get("/api/v1/holdings", headers=bearer(tampered)).status_code == 401


def test_a_revoked_key_stops_working(orgs, app, client):
    key = _key(["--org", STEEL], app)
    assert client.get("/api/v1/holdings", headers=bearer(key)).status_code == 200
    prefix = key.split("_")[1]
    result = app.test_cli_runner().invoke(args=["apikeys", "revoke", prefix])
    assert result.exit_code == 0 and "revoked" in result.output
    response = client.get("/api/v1/holdings", headers=bearer(key))
    assert response.status_code == 401
    assert db.session.scalar(select(AuditEvent).filter_by(action="apikey.revoke")).subject_id == prefix


def test_a_suspended_organisation_key_stops_working(orgs, app, client):
    key = _key(["--org", STEEL], app)
    orgs[0].status = "suspended"
    db.session.commit()
    assert client.get("/api/v1/holdings", headers=bearer(key)).status_code == 401


def test_last_used_time_is_recorded(orgs, app, client):
    key = _key(["--org", STEEL], app)
    assert db.session.scalar(select(ApiKey)).last_used_at is None
    client.get("/api/v1/holdings", headers=bearer(key))
    db.session.expire_all()
    assert db.session.scalar(select(ApiKey)).last_used_at is not None


def test_staff_keys_cannot_read_a_holding(orgs, app, client):
    result = app.test_cli_runner().invoke(
        args=["users", "create", "auditor@example.cn", "--role", "auditor"], input="long-enough-pw-7\n"
    )
    assert result.exit_code == 0, result.output
    key = _key(["--user", "auditor@example.cn"], app)
    response = client.get("/api/v1/holdings", headers=bearer(key))
    assert response.status_code == 403 and response.get_json()["error"]["code"] == "forbidden"


def test_unapproved_organisations_get_no_keys(app):
    buyers.create_organisation(name_zh="待审核", uscc=STEEL, sector="steel")
    db.session.commit()
    result = app.test_cli_runner().invoke(args=["apikeys", "create", "--org", STEEL])
    assert result.exit_code == 1 and "只有已批准的机构" in result.output


@pytest.mark.parametrize(
    ("args", "password", "expected"),
    [
        (["a@example.cn", "--role", "operator"], "short", "至少"),
        (["a@example.cn", "--role", "operator"], "aaaaaaaaaaaaaa", "容易"),
        (["a@example.cn", "--role", "operator"], "1234567890123", "容易"),
        (["bad-email", "--role", "operator"], "long-enough-pw-7", "电子邮件"),
        (["a@example.cn", "--role", "buyer"], "long-enough-pw-7", "机构"),
        (["a@example.cn", "--role", "operator", "--org", STEEL], "long-enough-pw-7", "机构"),
    ],
)
def test_users_create_refuses_bad_input(orgs, app, args, password, expected):
    result = app.test_cli_runner().invoke(args=["users", "create", *args], input=password + "\n")
    assert result.exit_code == 1 and expected in result.output, result.output


def test_users_create_and_duplicate(orgs, app):
    runner = app.test_cli_runner()
    ok = runner.invoke(
        args=["users", "create", "Buyer@Example.cn", "--role", "buyer", "--org", STEEL],
        input="long-enough-pw-7\n",
    )
    assert ok.exit_code == 0 and "buyer@example.cn" in ok.output
    again = runner.invoke(
        args=["users", "create", "buyer@example.CN", "--role", "buyer", "--org", STEEL],
        input="long-enough-pw-7\n",
    )
    assert again.exit_code == 1 and "已存在" in again.output
    user = buyers.find_user("buyer@example.cn")
    assert user.password_hash.startswith("scrypt:") and "long-enough" not in user.password_hash


def test_audit_log_records_and_is_append_only(orgs, app):
    actions = [e.action for e in db.session.scalars(select(AuditEvent).order_by(AuditEvent.id))]
    assert actions[:2] == ["organisation.create", "organisation.create"]
    event = db.session.scalar(select(AuditEvent))
    assert '"uscc"' not in (event.after or "") and "测试钢铁" in event.after
    with pytest.raises((DBAPIError, IntegrityError)):
        db.session.execute(text("UPDATE audit_events SET actor = 'someone else'"))
    db.session.rollback()
    with pytest.raises((DBAPIError, IntegrityError)):
        db.session.execute(text("DELETE FROM audit_events"))
    db.session.rollback()


def test_the_api_root_lists_its_endpoints(client):
    """A newcomer opening /api/v1 got a 404 and no pointer to any documentation."""
    response = client.get("/api/v1", follow_redirects=True)
    assert response.status_code == 200
    body = response.get_json()
    assert body["documentation"] == "docs/api.md"
    paths = {e["path"]: e["methods"] for e in body["endpoints"]}
    assert paths["/api/v1/orders"] == ["POST"] and "/api/v1/holdings" in paths


@pytest.mark.postgres
def test_a_keys_last_use_is_dated_at_once_without_holding_its_row(pg_app):
    """Dating a key's last use (at most once a minute) never leaves the key's row locked by the
    call (the other calls with the same key would wait for the whole of it), and the date stands
    however the call ends."""
    from datetime import timedelta

    from portal.buyers import apikeys
    from portal.timeutil import utcnow

    factories.steel_and_cement()
    db.session.commit()
    plaintext = _key(["--org", STEEL], pg_app)
    stale = utcnow() - timedelta(minutes=5)
    db.session.execute(text("UPDATE api_keys SET last_used_at = :at"), {"at": stale})
    db.session.commit()
    with pg_app.test_request_context():
        key = apikeys.authenticate_api_key(plaintext)
        assert key is not None and key.last_used_at > stale
        assert key not in db.session.dirty  # nothing left for the call's transaction to write
        with db.engine.connect() as other:  # another call with the same key, meanwhile
            other.execute(text("SET lock_timeout = '1s'"))
            locked = other.execute(text("SELECT last_used_at FROM api_keys FOR UPDATE NOWAIT")).scalar()
            assert locked > stale  # already committed, and the row is free
            other.rollback()
        db.session.rollback()  # the call fails
    db.session.expire_all()
    assert db.session.scalar(select(ApiKey)).last_used_at > stale
