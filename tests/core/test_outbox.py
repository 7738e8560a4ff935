"""The demo's outbox: sent mail shown to operators (and whole in the log) so that a sign-up can be
confirmed without a mail server; never where mail really goes out."""

import logging

import pytest

from portal.core import mail
from portal.extensions import db
from tests import factories
from tests.factories import PASSWORD


def sign_in(client, email):
    assert client.post("/login", data={"email": email, "password": PASSWORD}).status_code == 302


@pytest.fixture
def demo(app):
    app.config["MAIL_OUTBOX_PAGE"] = True
    factories.user("ops@portal.cn", role="operator")
    factories.user("sales@portal.cn", role="sales")
    mail.send(
        "new@buyer.cn", "Confirm your e-mail", "Open https://portal.example/confirm/abc<b>x</b> to confirm."
    )
    db.session.commit()
    return app


def test_operators_read_sent_mail_with_its_links(demo, client):
    sign_in(client, "ops@portal.cn")
    page = client.get("/staff/outbox")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "new@buyer.cn" in html and "Confirm your e-mail" in html
    assert '<a href="https://portal.example/confirm/abc">https://portal.example/confirm/abc</a>' in html
    assert "&lt;b&gt;x&lt;/b&gt;" in html  # the rest is text, escaped
    assert 'href="/staff/outbox"' in client.get("/staff/").get_data(as_text=True)


def test_only_operators_read_it(demo, client):
    sign_in(client, "sales@portal.cn")
    assert client.get("/staff/outbox").status_code == 403
    assert 'href="/staff/outbox"' not in client.get("/staff/").get_data(as_text=True)


@pytest.mark.parametrize("config", [{"MAIL_OUTBOX_PAGE": False}, {"SMTP_HOST": "smtp.example.cn"}])
def test_there_is_no_outbox_page_where_mail_goes_out_or_by_default(demo, client, config):
    demo.config.update(config)
    sign_in(client, "ops@portal.cn")
    assert client.get("/staff/outbox").status_code == 404
    assert 'href="/staff/outbox"' not in client.get("/staff/").get_data(as_text=True)


@pytest.mark.parametrize("enabled", [True, False])
def test_the_log_has_the_whole_message_only_in_the_demo(app, caplog, enabled):
    app.config["MAIL_OUTBOX_PAGE"] = enabled
    with caplog.at_level(logging.INFO, logger="portal.core.mail"):
        mail.send("a@b.cn", "Reset your password", "https://portal.example/reset/secret-token")
    assert ("secret-token" in caplog.text) is enabled
    assert "Reset your password" in caplog.text
