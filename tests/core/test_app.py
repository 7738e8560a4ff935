"""The application shell: health check, errors, headers, languages, configuration."""

import json
import logging

from portal import create_app
from tests.conftest import make_app


def test_healthz_does_not_touch_the_database(tmp_path):
    # A database URL that cannot be opened: /healthz must still answer.
    app = make_app(f"sqlite:///{tmp_path}/missing/dir/portal.db")
    response = app.test_client().get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_unknown_page_is_a_translated_404(client):
    response = client.get("/no-such-page")
    assert response.status_code == 404
    assert "您访问的页面不存在" in response.get_data(as_text=True)
    response = client.get("/no-such-page?lang=en")
    assert "The page you asked for does not exist." in response.get_data(as_text=True)


def test_api_errors_are_json(client):
    response = client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"


def test_language_choice_is_remembered(client):
    assert "中文" in client.get("/?lang=en").get_data(as_text=True)
    page = client.get("/").get_data(as_text=True)
    assert "Issued carbon credits" in page and 'lang="en"' in page
    page = client.get("/?lang=zh").get_data(as_text=True)
    assert "已签发的碳信用" in page and 'lang="zh-CN"' in page


def test_unknown_language_falls_back_to_chinese(client):
    page = client.get("/?lang=xx").get_data(as_text=True)
    assert 'lang="zh-CN"' in page


def test_security_headers(client):
    headers = client.get("/healthz").headers
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert "unsafe-inline" not in headers["Content-Security-Policy"]
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "strict-origin-when-cross-origin"


def test_request_id_is_echoed(client):
    response = client.get("/healthz", headers={"X-Request-Id": "abc123"})
    assert response.headers["X-Request-Id"] == "abc123"
    generated = client.get("/healthz", headers={"X-Request-Id": "x" * 500}).headers["X-Request-Id"]
    assert len(generated) == 32


def test_unexpected_errors_are_logged_as_json_and_shown_as_500(app, caplog):
    @app.get("/boom")
    def boom():
        raise RuntimeError("secret detail")

    response = app.test_client().get("/boom")
    assert response.status_code == 500
    assert "secret detail" not in response.get_data(as_text=True)
    formatter = logging.getLogger("portal").handlers[0].formatter
    records = [r for r in caplog.records if r.levelname == "ERROR"]
    assert records
    entry = json.loads(formatter.format(records[0]))
    assert entry["msg"] == "unhandled error on GET /boom"
    assert "secret detail" in entry["exc"] and entry["logger"] == "portal.core.errors"


def test_bad_page_number_is_400_not_500(client):
    assert client.get("/?page=abc").status_code == 400
    assert client.get("/?page=0").status_code == 400


def test_secret_key_is_generated_once_into_the_instance_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("PORTAL_SECRET_KEY", raising=False)
    monkeypatch.setenv("PORTAL_INSTANCE_PATH", str(tmp_path))
    first = create_app({"TESTING": True})
    key_file = tmp_path / "secret-key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    second = create_app({"TESTING": True})
    assert first.config["SECRET_KEY"] == second.config["SECRET_KEY"] == key_file.read_text()
    assert len(first.config["SECRET_KEY"]) == 64
    assert first.config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path}/portal.db"


def test_environment_overrides_defaults(tmp_path, monkeypatch):
    monkeypatch.setenv("PORTAL_BASE_URL", "https://carbon.example.cn")
    monkeypatch.setenv("PORTAL_DATABASE_URL", f"sqlite:///{tmp_path}/p.db")
    app = create_app({"TESTING": True, "SECRET_KEY": "x"})
    assert app.config["BASE_URL"] == "https://carbon.example.cn"
    assert app.config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path}/p.db"
    logging.getLogger("portal").handlers.clear()


def test_cookies_are_secure_behind_https(tmp_path, monkeypatch):
    monkeypatch.setenv("PORTAL_BASE_URL", "https://carbon.example.cn")
    app = create_app(
        {"DATABASE_URL": f"sqlite:///{tmp_path}/p.db", "SECRET_KEY": "x", "LOG_LEVEL": "WARNING"}
    )
    assert app.config["SESSION_COOKIE_SECURE"] is True and app.config["REMEMBER_COOKIE_SECURE"] is True
    assert app.config["REMEMBER_COOKIE_HTTPONLY"] is True and app.config["REMEMBER_COOKIE_SAMESITE"] == "Lax"
    plain = create_app(
        {
            "DATABASE_URL": f"sqlite:///{tmp_path}/p.db",
            "SECRET_KEY": "x",
            "LOG_LEVEL": "WARNING",
            "BASE_URL": "http://127.0.0.1:8000",
        }
    )
    assert plain.config["SESSION_COOKIE_SECURE"] is False
