"""The API's and the uploads' rate limits: counted in the database (shared by every process),
announced in ``RateLimit-*`` headers, refused with 429 and ``Retry-After``, nothing done."""

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from portal.extensions import db
from portal.offsets.models import Order
from tests import factories
from tests.concurrency import race


@pytest.fixture
def app(any_app):
    """Both databases: on PostgreSQL a call is counted on a connection of its own, committed at
    once; on SQLite in the request's session, committed at once."""
    return any_app


@pytest.fixture
def keyed(app):
    factories.steel_and_cement()
    db.session.commit()
    app.config.update(API_RATE_LIMIT=3, API_RATE_WINDOW=60)
    return factories.api_key(app, "--org", factories.STEEL_USCC)


def test_a_key_sees_its_quota_and_is_refused_past_it(keyed, app):
    client = app.test_client()
    headers = factories.bearer(keyed)
    seen = []
    for _ in range(3):
        response = client.get("/api/v1/holdings", headers=headers)
        assert response.status_code == 200, response.get_json()
        seen.append(response.headers["RateLimit-Remaining"])
        assert response.headers["RateLimit-Limit"] == "3"
        assert 0 < int(response.headers["RateLimit-Reset"]) <= 60
    assert seen == ["2", "1", "0"]
    refused = client.post(
        "/api/v1/orders?lang=en", json={"quantity": 1, "purpose": "voluntary"}, headers=headers
    )
    assert refused.status_code == 429
    assert refused.get_json()["error"]["code"] == "rate_limited"
    assert "Too many API calls" in refused.get_json()["error"]["message"]
    assert refused.headers["RateLimit-Remaining"] == "0"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert db.session.scalar(select(func.count()).select_from(Order)) == 0  # nothing done
    # Another key, and the public endpoints (counted per address), are counted apart.
    other = factories.api_key(app, "--org", factories.CEMENT_USCC)
    assert client.get("/api/v1/holdings", headers=factories.bearer(other)).status_code == 200
    public = client.post("/api/v1/estimates", json={"kind": "event"})
    assert public.status_code == 400 and public.headers["RateLimit-Remaining"] == "2"


def test_the_refusal_is_translated(keyed, app):
    client = app.test_client()
    for _ in range(3):
        client.get("/api/v1/holdings", headers=factories.bearer(keyed))
    refused = client.get("/api/v1/holdings", headers={**factories.bearer(keyed), "Accept-Language": "zh-CN"})
    assert refused.status_code == 429 and "请" in refused.get_json()["error"]["message"]


def test_public_calls_are_counted_per_address_and_reads_not_at_all(app):
    app.config.update(API_RATE_LIMIT=2)
    client = app.test_client()
    here, there = {"REMOTE_ADDR": "198.51.100.1"}, {"REMOTE_ADDR": "198.51.100.2"}

    def estimate(environ):
        return client.post("/api/v1/estimates", json={"kind": "event"}, environ_base=environ).status_code

    assert [estimate(here) for _ in range(3)] == [400, 400, 429]
    assert estimate(there) == 400
    # Reads are served from the catalog's cache at one query each: the reverse proxy limits them.
    read = client.get("/api/v1/batches", environ_base=here)
    assert read.status_code == 200 and "RateLimit-Limit" not in read.headers


def test_uploads_announce_their_own_limit(app):
    app.config.update(VERIFY_UPLOAD_LIMIT=1)
    client = app.test_client()
    first = client.post("/verify", data={}, environ_base={"REMOTE_ADDR": "198.51.100.7"})
    assert first.headers["RateLimit-Limit"] == "1" and first.headers["RateLimit-Remaining"] == "0"
    second = client.post("/verify", data={}, environ_base={"REMOTE_ADDR": "198.51.100.7"})
    assert second.status_code == 429 and "Retry-After" in second.headers


@pytest.mark.postgres
def test_concurrent_calls_never_pass_the_limit(pg_app):
    factories.steel_and_cement()
    db.session.commit()
    pg_app.config.update(API_RATE_LIMIT=5, API_RATE_WINDOW=60)
    key = factories.api_key(pg_app, "--org", factories.STEEL_USCC)
    db.session.remove()

    def call(_i):
        with pg_app.test_client() as client:
            return client.get("/api/v1/holdings", headers=factories.bearer(key)).status_code

    statuses = race(pg_app, 12, call)
    assert sorted(statuses).count(200) == 5 and statuses.count(429) == 7


def test_refused_calls_do_not_count_and_a_new_window_gives_the_whole_quota(keyed, app):
    from portal.core.throttle import ThrottleCounter

    client = app.test_client()
    headers = factories.bearer(keyed)
    statuses = [client.get("/api/v1/holdings", headers=headers).status_code for _ in range(8)]
    assert statuses == [200] * 3 + [429] * 5
    db.session.expire_all()
    (counter,) = db.session.scalars(select(ThrottleCounter).where(ThrottleCounter.key.like("api:key:%")))
    assert counter.hits <= 4  # the five refusals added nothing past the first
    counter.resets_at = counter.resets_at - timedelta(seconds=61)  # the window is over
    db.session.commit()
    again = client.get("/api/v1/holdings", headers=headers)
    assert again.status_code == 200 and again.headers["RateLimit-Remaining"] == "2"


def _count_of(prefix: str) -> int:
    from portal.core.throttle import ThrottleCounter

    db.session.expire_all()
    counter = db.session.get(ThrottleCounter, f"api:key:{prefix}")
    return 0 if counter is None else counter.hits


def test_every_call_with_the_keys_secret_counts_and_no_other(keyed, app):
    """The call is counted as the key is read (on PostgreSQL in the same statement): a call
    presenting the key's secret counts however it is answered; a wrong secret, a revoked key
    or a call without a key does not eat into the key's quota."""
    app.config.update(API_RATE_LIMIT=10)
    client = app.test_client()
    prefix = keyed.split("_")[1]
    wrong = keyed[:-1] + ("A" if keyed[-1] != "A" else "B")
    assert client.get("/api/v1/holdings", headers=factories.bearer(wrong)).status_code == 401
    assert client.get("/api/v1/holdings").status_code == 401
    assert _count_of(prefix) == 0
    ok = client.get("/api/v1/holdings", headers=factories.bearer(keyed))
    assert ok.status_code == 200 and ok.headers["RateLimit-Remaining"] == "9"
    # A staff-only call made with a buyer's key: refused, and counted.
    forbidden = client.get("/api/v1/registry/instructions", headers=factories.bearer(keyed))
    assert forbidden.status_code == 403 and forbidden.headers["RateLimit-Remaining"] == "8"
    assert _count_of(prefix) == 2
    result = app.test_cli_runner().invoke(args=["apikeys", "revoke", prefix])
    assert result.exit_code == 0, result.output
    revoked = client.get("/api/v1/holdings", headers=factories.bearer(keyed))
    assert revoked.status_code == 401 and "RateLimit-Remaining" not in revoked.headers
    assert _count_of(prefix) == 2


def test_a_persons_key_is_counted_too(app):
    """A staff member's key is read in the session (with the person), not with the count; its
    calls count all the same, once each."""
    app.config.update(API_RATE_LIMIT=2, API_RATE_WINDOW=60)
    result = app.test_cli_runner().invoke(
        args=["users", "create", "auditor@example.cn", "--role", "auditor"], input="long-enough-pw-7\n"
    )
    assert result.exit_code == 0, result.output
    key = factories.api_key(app, "--user", "auditor@example.cn")
    client = app.test_client()
    statuses = [client.get("/api/v1/holdings", headers=factories.bearer(key)).status_code for _ in range(3)]
    assert statuses == [403, 403, 429]
    # Counted once each: the refusal is given back (SQLite) or kept at the limit + 1 (PostgreSQL).
    assert _count_of(key.split("_")[1]) in (2, 3)
