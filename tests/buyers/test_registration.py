"""Self-service registration, e-mail confirmation and password reset, through the outbox."""

import re

import pytest
from sqlalchemy import func, select

from portal.audit.models import AuditEvent
from portal.buyers import accounts, signup, tokens
from portal.buyers import services as buyers
from portal.buyers import uscc as uscc_rules
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
        # Printed in e-mail to others: nothing that makes it read other than it is.
        ({"contact_name": "王\u202e理经"}, "Contact person contains control or direction-override"),
        ({"email": "buyer\u202e@steel.cn"}, "not a valid e-mail address"),
        ({"sector": "banking"}, "Not a valid choice"),
    ],
)
def test_bad_registrations_change_nothing(app, client, changes, expected):
    before = counts()
    response = client.post("/signup?lang=en", data={**FORM, **changes})
    assert response.status_code == 400
    assert expected in response.get_data(as_text=True)
    assert counts() == before


def uscc(n: int) -> str:
    """The ``n``-th of a run of valid codes (check character computed)."""
    first17 = f"91150400MA{n:07d}"
    return first17 + uscc_rules.check_character(first17)


def mails_to(address):
    return list(db.session.scalars(select(OutboxMessage).filter_by(to=address).order_by(OutboxMessage.id)))


@pytest.fixture
def hashes(monkeypatch):
    """How often the registration hashes a password (the real hash still runs)."""
    calls = []
    real = signup.generate_password_hash

    def counted(password, *args, **kwargs):
        calls.append(password)
        return real(password, *args, **kwargs)

    # Registration hashes in signup; a user it creates could hash again in accounts.
    monkeypatch.setattr(signup, "generate_password_hash", counted)
    monkeypatch.setattr(accounts, "generate_password_hash", counted)
    return calls


def sign_up(app, address, **changes):
    """A sign-up from a new browser at ``address``, through the real form with its CSRF token:
    the answer and the page it leads to (tokens blanked)."""
    client = app.test_client()
    env = {"REMOTE_ADDR": address}
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', client.get("/signup?lang=en").text)
    response = client.post(
        "/signup?lang=en", data={**FORM, **changes, "csrf_token": token.group(1)}, environ_base=env
    )
    landing = client.get(response.headers.get("Location", "/"), environ_base=env)

    def blank(text):
        return re.sub(r'(name="csrf_token" type="hidden" value=")[^"]+', r"\1", text)

    return (response.status_code, response.headers.get("Location"), response.text), (
        landing.status_code,
        blank(landing.text),
    )


def test_a_known_address_or_code_gets_the_same_answer_and_the_same_work(csrf_app, hashes):
    """A stranger cannot tell from the answer, nor from how long it takes to come (one password
    hash each time), whether an e-mail address or a USCC is registered here."""
    assert sign_up(csrf_app, "192.0.2.1")[0][0] == 302  # buyer@steel.cn registers USCC
    del hashes[:]

    new = sign_up(csrf_app, "198.51.100.1", uscc=uscc(1), email="fresh@steel.cn")
    assert len(hashes) == 1
    known_email = sign_up(csrf_app, "198.51.100.2", uscc=uscc(2), email="BUYER@steel.cn")
    assert len(hashes) == 2
    known_code = sign_up(csrf_app, "198.51.100.3", email="stranger@steel.cn")
    assert len(hashes) == 3
    assert new == known_email == known_code
    assert new[0][0] == 302 and "We have sent you an e-mail" in new[1][1]

    # Whatever differs went by e-mail, one message to each address given.
    assert [m.subject for m in mails_to("fresh@steel.cn")] == ["Confirm your e-mail address"]
    owner = mails_to("buyer@steel.cn")
    assert [m.subject for m in owner] == [
        "Confirm your e-mail address",
        "Someone tried to register with your e-mail address",
        "Someone tried to register your organisation",  # to the organisation's admin
    ]
    assert "stranger@steel.cn" in owner[2].body and USCC in owner[2].body
    (told,) = mails_to("stranger@steel.cn")
    # The stranger is not told that the code is registered, nor by whom.
    assert USCC not in told.body and FORM["name_zh"] not in told.body and "already" not in told.body
    # Nothing was made for the known address or code; the attempt is in the audit log.
    assert db.session.scalar(select(func.count()).select_from(Organisation)) == 2
    assert {u.email for u in db.session.scalars(select(User))} == {"buyer@steel.cn", "fresh@steel.cn"}
    attempt = db.session.scalar(select(AuditEvent).filter_by(action="organisation.registration_attempt"))
    assert attempt.subject_id == USCC and "stranger@steel.cn" in attempt.after


def test_an_organisation_without_admins_has_its_attempts_brought_to_the_operators(app, client):
    steel, _ = factories.steel_and_cement()  # made by staff: no admin
    factories.user("ops@portal.cn", role="operator")
    db.session.commit()
    assert client.post("/signup?lang=en", data={**FORM, "uscc": steel.uscc}).status_code == 302
    (notice,) = mails_to("ops@portal.cn")
    assert notice.subject == "Someone tried to register your organisation" and "buyer@steel.cn" in notice.body


def test_sign_ups_from_one_client_address_are_limited(app, client):
    for n in range(buyers.SIGNUPS_PER_ADDRESS):
        assert (
            client.post("/signup", data={**FORM, "uscc": uscc(n), "email": f"u{n}@steel.cn"}).status_code
            == 302
        )
    before = counts()
    refused = client.post("/signup?lang=en", data={**FORM, "uscc": uscc(99), "email": "late@steel.cn"})
    assert refused.status_code == 429 and "Too many registrations" in refused.text
    assert counts() == before
    other = client.post(
        "/signup",
        data={**FORM, "uscc": uscc(99), "email": "late@steel.cn"},
        environ_base={"REMOTE_ADDR": "10.0.0.7"},
    )
    assert other.status_code == 302


@pytest.mark.parametrize("named", ["email", "uscc"])
def test_an_address_or_code_named_too_often_gets_no_more_mail(app, client, named):
    """Many clients naming one e-mail address (or one USCC) cannot flood its mailbox (or the
    organisation's admins); they get the same answer, and nothing more happens."""
    limit = buyers.SIGNUPS_PER_EMAIL if named == "email" else buyers.SIGNUPS_PER_USCC
    answers = set()
    for n in range(limit + 3):
        # The first one registers (as buyer@steel.cn, USCC); the others name the same again.
        changes = {"uscc": uscc(n)} if named == "email" else {"email": f"u{n}@steel.cn"} if n else {}
        response = client.post(
            "/signup", data={**FORM, **changes}, environ_base={"REMOTE_ADDR": f"10.0.1.{n}"}
        )
        answers.add((response.status_code, response.headers["Location"]))
    assert answers == {(302, "/login")}
    assert db.session.scalar(select(func.count()).select_from(Organisation)) == 1
    assert len(mails_to("buyer@steel.cn")) == limit  # the confirmation, then notices


def test_racing_sign_ups_hold_the_limits_and_make_one_organisation(pg_app):
    """Sign-ups at the same moment: from one address, no more than its limit get through; naming
    one new USCC, exactly one organisation is made (the others wait for it, then see it)."""
    from portal.core.errors import ServiceError
    from tests.concurrency import race

    def from_one_address(i):
        buyers.register(**fields(uscc=uscc(i), email=f"a{i}@steel.cn"), address="203.0.113.1")
        db.session.commit()
        return "accepted"

    def naming_one_code(i):
        buyers.register(**fields(uscc=USCC, email=f"c{i}@steel.cn"), address=f"203.0.113.{10 + i}")
        db.session.commit()
        return "accepted"

    extra = 3
    outcomes = race(pg_app, buyers.SIGNUPS_PER_ADDRESS + extra, from_one_address, refused=ServiceError)
    assert outcomes.count("too_many_signups") == extra
    assert db.session.scalar(select(func.count()).select_from(Organisation)) == buyers.SIGNUPS_PER_ADDRESS

    assert race(pg_app, buyers.SIGNUPS_PER_USCC + extra, naming_one_code) == ["accepted"] * (
        buyers.SIGNUPS_PER_USCC + extra
    )
    (org,) = db.session.scalars(select(Organisation).filter_by(uscc=USCC))
    admin = db.session.scalar(select(User).filter_by(organisation_id=org.id))
    assert len(mails_to(admin.email)) == 1 + buyers.SIGNUPS_PER_USCC - 1  # confirmation, notices


def fields(**changes):
    return {k: v for k, v in {**FORM, **changes}.items() if k != "password_again"}


@pytest.mark.parametrize("token", ["nonsense", "eyJ1c2VyIjoxfQ.tampered.signature"])
def test_bad_confirmation_links(app, client, token):
    response = client.get(f"/confirm/{token}?lang=en")
    assert response.status_code == 400 and "This link is not valid." in response.get_data(as_text=True)


def test_expired_confirmation_link(app, client, monkeypatch):
    client.post("/signup", data=FORM)
    link = last_link("/confirm/")
    monkeypatch.setattr(tokens, "CONFIRM_MAX_AGE", -1)
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
