"""Self-service registration, e-mail confirmation and password reset, through the outbox."""

import re

import pytest
from sqlalchemy import func, select

from portal.audit.models import AuditEvent
from portal.buyers import services as buyers
from portal.buyers.models import Organisation, User
from portal.core.mail import OutboxMessage
from portal.extensions import db
from tests import factories

USCC = factories.STEEL_USCC

FORM = {
    "name_zh": "赤峰测试钢铁有限公司",
    "name_en": "Chifeng Test Steel",
    "uscc": USCC,
    "sector": "steel",
    "contact_name": "王经理",
    "contact_phone": "0476-1234567",
    "email": "Buyer@Steel.cn",
    "password": "long-enough-pw-7",
    "password_again": "long-enough-pw-7",
}


def last_link(path):
    body = db.session.scalar(select(OutboxMessage.body).order_by(OutboxMessage.id.desc()))
    link = re.search(rf"http://127\.0\.0\.1:8000{path}[^\s]+", body).group(0)  # always PORTAL_BASE_URL
    return link.removeprefix("http://127.0.0.1:8000")


def counts():
    return tuple(
        db.session.scalar(select(func.count()).select_from(t)) for t in (Organisation, User, OutboxMessage)
    )


def test_register_confirm_sign_in(app, client):
    response = client.post("/signup?lang=en", data=FORM)
    assert response.status_code == 302
    org = db.session.scalar(select(Organisation))
    assert (org.status, org.contact_name, org.uscc) == ("pending", "王经理", USCC)
    message = db.session.scalar(select(OutboxMessage))
    assert message.to == "buyer@steel.cn" and "Confirm your e-mail address" in message.subject

    refused = client.post("/login?lang=en", data={"email": "buyer@steel.cn", "password": FORM["password"]})
    assert refused.status_code == 403 and "confirm your e-mail address first" in refused.get_data(
        as_text=True
    )
    assert db.session.scalar(select(func.count()).select_from(OutboxMessage)) == 2  # a new link was sent

    assert client.get(last_link("/confirm/")).status_code == 302
    assert db.session.scalar(select(User)).confirmed_at is not None
    assert (
        client.post("/login", data={"email": "buyer@steel.cn", "password": FORM["password"]}).status_code
        == 302
    )
    actions = [e.action for e in db.session.scalars(select(AuditEvent).order_by(AuditEvent.id))]
    assert actions == ["organisation.create", "user.create", "user.confirm"]


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"uscc": "91350100M000100Y44"}, "check character"),
        ({"uscc": "123"}, "exactly 18 characters"),
        ({"password": "short", "password_again": "short"}, "at least 10 characters"),
        ({"password_again": "something-else-1"}, "The two passwords differ."),
        ({"email": "not-an-address"}, "not a valid e-mail address"),
        ({"name_zh": ""}, "Enter the name."),
        ({"contact_phone": ""}, "Enter a telephone number."),
        ({"sector": "banking"}, "Not a valid choice"),
    ],
)
def test_bad_registrations_change_nothing(app, client, changes, expected):
    before = counts()
    response = client.post("/signup?lang=en", data={**FORM, **changes})
    assert response.status_code == 400
    assert expected in response.get_data(as_text=True)
    assert counts() == before


def test_duplicates_are_refused_whole(app, client):
    assert client.post("/signup", data=FORM).status_code == 302
    before = counts()
    same_code = client.post("/signup?lang=en", data={**FORM, "email": "other@steel.cn"})
    assert same_code.status_code == 400 and "already exists" in same_code.get_data(as_text=True)
    same_mail = client.post("/signup?lang=en", data={**FORM, "uscc": "91110000802100433B"})
    # Answered as a success (no enumeration); the owner of the address is told instead.
    assert same_mail.status_code == 302
    organisations, users, mails = counts()
    assert (organisations, users, mails) == (before[0], before[1], before[2] + 1)  # no orphan organisation
    notice = db.session.scalar(select(OutboxMessage).order_by(OutboxMessage.id.desc()))
    assert notice.to == "buyer@steel.cn" and "tried to register" in notice.subject


@pytest.mark.parametrize("token", ["nonsense", "eyJ1c2VyIjoxfQ.tampered.signature"])
def test_bad_confirmation_links(app, client, token):
    response = client.get(f"/confirm/{token}?lang=en")
    assert response.status_code == 400 and "This link is not valid." in response.get_data(as_text=True)


def test_expired_confirmation_link(app, client, monkeypatch):
    client.post("/signup", data=FORM)
    link = last_link("/confirm/")
    monkeypatch.setattr(buyers, "CONFIRM_MAX_AGE", -1)
    response = client.get(link + "?lang=en")
    assert response.status_code == 400 and "This link has expired." in response.get_data(as_text=True)


def test_password_reset_works_once(app, client):
    buyers.create_user(email="ops@portal.cn", password="long-enough-pw-7", role="operator")
    db.session.commit()
    unknown = client.post("/reset?lang=en", data={"email": "nobody@portal.cn"})
    known = client.post("/reset?lang=en", data={"email": "ops@portal.cn"})
    assert unknown.status_code == known.status_code == 302  # the same answer either way
    assert db.session.scalar(select(func.count()).select_from(OutboxMessage)) == 1
    link = last_link("/reset/")

    weak = client.post(link + "?lang=en", data={"password": "aaaaaaaaaaaa", "password_again": "aaaaaaaaaaaa"})
    assert weak.status_code == 400 and "too easy to guess" in weak.get_data(as_text=True)
    ok = client.post(link, data={"password": "new-long-pw-8", "password_again": "new-long-pw-8"})
    assert ok.status_code == 302
    again = client.post(
        link + "?lang=en", data={"password": "other-long-pw-9", "password_again": "other-long-pw-9"}
    )
    assert again.status_code == 400 and "This link is not valid." in again.get_data(as_text=True)
    assert (
        client.post("/login", data={"email": "ops@portal.cn", "password": "new-long-pw-8"}).status_code == 302
    )


def test_outbox_and_log_never_carry_the_password(app, client, caplog):
    client.post("/signup", data=FORM)
    body = db.session.scalar(select(OutboxMessage.body))
    assert FORM["password"] not in body
    assert FORM["password"] not in caplog.text and "/confirm/" not in caplog.text


def test_reset_requests_are_throttled(app, client):
    buyers.create_user(email="ops@portal.cn", password="long-enough-pw-7", role="operator")
    db.session.commit()
    for _ in range(buyers.RESETS_PER_EMAIL + 2):
        assert client.post("/reset", data={"email": "ops@portal.cn"}).status_code == 302
    # Only so many mails go to one address, and the answer never changes.
    assert db.session.scalar(select(func.count()).select_from(OutboxMessage)) == buyers.RESETS_PER_EMAIL
    for _ in range(buyers.RESETS_PER_ADDRESS):
        client.post("/reset", data={"email": "someone-else@portal.cn"})
    throttled = client.post("/reset?lang=en", data={"email": "third@portal.cn"})
    assert throttled.status_code == 429 and "Too many requests" in throttled.get_data(as_text=True)


def test_links_ignore_a_forged_host_header(app, client):
    buyers.create_user(email="ops@portal.cn", password="long-enough-pw-7", role="operator")
    db.session.commit()
    client.post("/reset", data={"email": "ops@portal.cn"}, headers={"Host": "evil.example"})
    body = db.session.scalar(select(OutboxMessage.body))
    assert "evil.example" not in body and "http://127.0.0.1:8000/reset/" in body
