"""Signing in and out, throttling, suspended users, the account page."""

import pytest
from sqlalchemy import select

from portal.buyers import services as buyers
from portal.core.throttle import ThrottleCounter
from portal.extensions import db
from tests import factories
from tests.conftest import make_app

PASSWORD = factories.PASSWORD


@pytest.fixture
def people(app):
    steel, cement = factories.steel_and_cement()
    factories.batch(quantity=100, code="B-SIGNIN")
    buyers.deliver_from_inventory(steel, 40)
    buyers.deliver_from_inventory(cement, 7)
    factories.user("buyer@steel.cn", organisation=steel)
    factories.user("buyer@cement.cn", organisation=cement)
    factories.user("ops@portal.cn", role="operator")
    db.session.commit()
    return steel, cement


def sign_in(client, email, password=PASSWORD, **extra):
    return client.post("/login?lang=en", data={"email": email, "password": password, **extra})


def test_a_buyer_signs_in_and_sees_its_own_holding(people, client):
    response = sign_in(client, "buyer@steel.cn")
    assert response.status_code == 302 and response.headers["Location"].endswith("/account")
    page = client.get("/account?lang=en").get_data(as_text=True)
    assert "buyer@steel.cn" in page and "1–40" in page and "Total: 40 t" in page
    assert "1–7" not in page and "41–47" not in page  # the other organisation's credits


def test_wrong_password_and_unknown_user_say_the_same(people, client):
    wrong = sign_in(client, "buyer@steel.cn", "wrong-password-1")
    unknown = sign_in(client, "nobody@steel.cn", "wrong-password-1")
    assert wrong.status_code == unknown.status_code == 401
    message = "The e-mail address or the password is wrong."
    assert message in wrong.get_data(as_text=True) and message in unknown.get_data(as_text=True)
    assert client.get("/account").status_code == 302  # still signed out


def test_repeated_failures_are_throttled(people, client):
    for _ in range(buyers.FAILURES_PER_EMAIL_AND_ADDRESS):
        assert sign_in(client, "buyer@steel.cn", "wrong-password-1").status_code == 401
    throttled = sign_in(client, "buyer@steel.cn")  # even the right password waits now, from here
    assert throttled.status_code == 429
    assert "Too many failed attempts" in throttled.get_data(as_text=True)
    # The refused attempts counted nothing more: the failures are all there is.
    hits = dict(db.session.execute(select(ThrottleCounter.key, ThrottleCounter.hits)).all())
    assert hits == {
        "signin.email_address:buyer@steel.cn 127.0.0.1": buyers.FAILURES_PER_EMAIL_AND_ADDRESS,
        "signin.email:buyer@steel.cn": buyers.FAILURES_PER_EMAIL_AND_ADDRESS,
        "signin.address:127.0.0.1": buyers.FAILURES_PER_EMAIL_AND_ADDRESS,
    }


def test_a_stranger_elsewhere_cannot_lock_the_user_out(people, app, client):
    stranger = app.test_client()
    for _ in range(buyers.FAILURES_PER_EMAIL_AND_ADDRESS + 2):
        stranger.post(
            "/login",
            data={"email": "buyer@steel.cn", "password": "wrong-password-1"},
            environ_base={"REMOTE_ADDR": "198.51.100.7"},
        )
    assert sign_in(client, "buyer@steel.cn").status_code == 302  # from the user's own address


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example",
        "/\t/evil.example",
        "/\\evil.example",
        "https://evil.example/",
        "/\n/x",
        "javascript:alert(1)",
        "/ok\x7f",
    ],
)
def test_next_never_leaves_the_site(people, client, target):
    from urllib.parse import quote

    response = client.post(
        "/login?next=" + quote(target, safe=""), data={"email": "buyer@steel.cn", "password": PASSWORD}
    )
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/account")


def test_a_password_change_ends_older_sessions(people, app, client):
    sign_in(client, "buyer@steel.cn", remember="y")
    assert client.get("/account").status_code == 200
    user = buyers.find_user("buyer@steel.cn")
    from werkzeug.security import generate_password_hash

    user.password_hash = generate_password_hash("another-long-pw-9")
    db.session.commit()
    assert client.get("/account").status_code == 302  # session and remember-me cookie both refused
    client.delete_cookie("session")
    assert client.get("/account").status_code == 302


def test_a_visitors_session_is_sent_back_only_when_it_changes(people, client):
    """A visitor's session (the language chosen, a CSRF token) is not sent back with every
    answer: a late answer would put an older cookie back (the language just chosen lost)."""
    assert client.get("/?lang=en").headers.getlist("Set-Cookie")  # the language is remembered
    for path in ("/", "/static/favicon.svg", "/favicon.ico", "/register", "/login"):
        with client.get(path) as response:
            cookies = [c for c in response.headers.getlist("Set-Cookie") if c.startswith("session=")]
        assert cookies == [] or path == "/login", (path, cookies)  # the login form adds its CSRF token
    assert not [c for c in client.get("/login").headers.getlist("Set-Cookie") if c.startswith("session=")]
    assert client.get("/login?lang=zh").headers.getlist("Set-Cookie")  # changed again


def test_a_signed_in_session_presented_by_another_browser_is_signed_out(people, client):
    """Strong session protection still holds for a session that holds a user."""
    client.environ_base["HTTP_USER_AGENT"] = "browser-a"
    assert sign_in(client, "buyer@steel.cn").status_code == 302
    assert client.get("/account").status_code == 200
    client.environ_base["HTTP_USER_AGENT"] = "browser-b"  # the same cookie, another browser
    assert client.get("/account").status_code == 302
    client.environ_base["HTTP_USER_AGENT"] = "browser-a"  # and the session no longer holds the user
    assert client.get("/account").status_code == 302


def test_nul_bytes_in_forms_are_a_400(people, client):
    assert client.post("/login", data={"email": "a\x00@b.cn", "password": "x" * 12}).status_code == 400
    assert client.post("/signup", data={"name_zh": "\x00"}).status_code == 400


def test_a_failed_commit_is_an_error_page_with_headers(people, app, client):
    from sqlalchemy import event

    from portal.extensions import db as database

    def refuse(session):
        raise RuntimeError("database gone")

    sign_in(client, "ops@portal.cn")
    session = database.session()
    event.listen(session, "before_commit", refuse)
    try:
        response = client.post("/account/keys", data={"label": "x"})
    finally:
        event.remove(session, "before_commit", refuse)
    assert response.status_code == 500
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["Cache-Control"] == "private, no-store"


def test_private_pages_are_not_cached(people, client):
    sign_in(client, "buyer@steel.cn")
    assert client.get("/account").headers["Cache-Control"] == "private, no-store"
    assert client.get("/login").headers["Cache-Control"] == "private, no-store"


def test_the_account_page_needs_a_session(people, client):
    response = client.get("/account")
    assert response.status_code == 302 and "/login?next=" in response.headers["Location"]


def test_sign_out(people, client):
    sign_in(client, "buyer@steel.cn")
    assert client.get("/account").status_code == 200
    response = client.post("/logout")
    assert response.status_code == 302
    assert client.get("/account").status_code == 302


def test_a_suspended_organisation_loses_its_sessions(people, client):
    sign_in(client, "buyer@steel.cn")
    assert client.get("/account").status_code == 200
    people[0].status = "suspended"
    db.session.commit()
    assert client.get("/account").status_code == 302
    refused = sign_in(client, "buyer@steel.cn")
    assert refused.status_code == 403 and "suspended" in refused.get_data(as_text=True)


def test_staff_account_page(people, client):
    sign_in(client, "ops@portal.cn")
    page = client.get("/account?lang=zh").get_data(as_text=True)
    assert "运营人员" in page and "持有的碳信用" not in page


def test_next_only_goes_to_this_site(people, client):
    response = client.post(
        "/login?next=//evil.example/x", data={"email": "buyer@steel.cn", "password": PASSWORD}
    )
    assert response.headers["Location"].endswith("/account")
    response = client.post("/login?next=/projects/X", data={"email": "buyer@cement.cn", "password": PASSWORD})
    assert response.headers["Location"].endswith("/projects/X")


def test_login_form_errors_are_translated(people, client):
    response = client.post("/login?lang=zh", data={"email": "", "password": ""})
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "请输入电子邮件地址。" in page and "请输入密码。" in page


def test_posts_without_a_csrf_token_are_refused(csrf_app):
    client = csrf_app.test_client()
    assert client.post("/login", data={"email": "a@b.cn", "password": "x" * 12}).status_code == 400
    assert client.post("/logout").status_code == 400
    page = client.get("/login").get_data(as_text=True)
    assert 'name="csrf_token"' in page


def test_session_cookie_flags(tmp_path):
    app = make_app(f"sqlite:///{tmp_path}/p.db")
    assert app.config["SESSION_COOKIE_HTTPONLY"] is True
    assert app.config["SESSION_COOKIE_SAMESITE"] == "Lax"


def test_a_burst_of_guesses_gets_no_more_password_checks_than_the_limit(any_app, monkeypatch):
    """Forty wrong passwords at once for one account from one address: the limit holds, because
    every attempt is counted before its password is checked."""
    import threading

    from tests.concurrency import race

    factories.user("ops@portal.cn", role="operator")
    db.session.commit()
    checks = []
    lock = threading.Lock()
    from portal.buyers import signin

    real_check = signin.check_password_hash

    def counted_check(*args):
        with lock:
            checks.append(1)
        return real_check(*args)

    monkeypatch.setattr(signin, "check_password_hash", counted_check)

    def guess(i):
        try:
            buyers.sign_in("ops@portal.cn", f"wrong-password-{i}", "203.0.113.5")
        except buyers.SignInError as exc:
            db.session.commit()  # as the view does: the failure is recorded
            return exc.status
        return 200

    outcomes = race(any_app, 40, guess)
    assert len(checks) == buyers.FAILURES_PER_EMAIL_AND_ADDRESS
    assert sorted(outcomes) == [401] * buyers.FAILURES_PER_EMAIL_AND_ADDRESS + [429] * (
        40 - buyers.FAILURES_PER_EMAIL_AND_ADDRESS
    )


def test_an_empty_holding_says_how_credits_come_into_it_and_where_to_buy(people, client):
    org = buyers.create_organisation(
        name_zh="新公司", name_en="New Co", uscc="91110000600037341L", sector="other", approve=True
    )
    factories.user("new@co.cn", organisation=org)
    db.session.commit()
    assert sign_in(client, "new@co.cn").status_code == 302
    for path in ("/account?lang=en", "/account/retire?lang=en"):
        page = client.get(path).get_data(as_text=True)
        assert "holds no credits yet" in page and "delivery under an offtake contract" in page, path
        assert '<a href="/">Buy and retire from the catalog</a>' in page, path
    zh = client.get("/account/retire?lang=zh").get_data(as_text=True)
    assert "选购在售碳信用并注销" in zh
