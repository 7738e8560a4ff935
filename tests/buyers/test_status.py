"""Approving, suspending, restricting, barring and reinstating organisations; public notices."""

import json

import pytest
from sqlalchemy import select

from portal.audit.models import AuditEvent
from portal.buyers import services as buyers
from portal.extensions import db
from tests import factories

STEEL = factories.STEEL_USCC


@pytest.fixture
def org(app):
    org = buyers.create_organisation(name_zh="测试钢铁", name_en="Test Steel", uscc=STEEL, sector="steel")
    db.session.commit()
    return org


def status(app, *args):
    return app.test_cli_runner().invoke(args=["orgs", "status", STEEL, *args])


def test_the_whole_life_cycle_is_audited(org, app):
    assert status(app, "approved", "--reason", "材料齐全").exit_code == 0
    assert (
        status(
            app, "restricted", "--reason", "逾期付款", "--order-limit", "500", "--year-limit", "5000"
        ).exit_code
        == 0
    )
    assert (org.order_limit_t, org.year_limit_t) == (500, 5000)
    assert status(app, "suspended", "--reason", "调查中").exit_code == 0
    assert org.order_limit_t is None
    assert status(app, "approved", "--reason", "调查结束").exit_code == 0
    events = list(
        db.session.scalars(select(AuditEvent).where(AuditEvent.subject_id == STEEL).order_by(AuditEvent.id))
    )
    assert [e.action for e in events] == [
        "organisation.create",
        "organisation.approved",
        "organisation.restricted",
        "organisation.suspended",
        "organisation.approved",
    ]
    assert json.loads(events[2].before)["status"] == "approved"
    assert json.loads(events[2].after)["order_limit_t"] == 500


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["barred", "--reason", " "], "理由"),
        (["suspended", "--reason", "x"], "不能变更"),  # pending cannot be suspended
        (["approved", "--reason", "x", "--year-limit", "5"], "仅适用"),
    ],
)
def test_bad_changes_are_refused_and_change_nothing(org, app, args, expected):
    result = status(app, *args)
    assert result.exit_code == 1 and expected in result.output, result.output
    db.session.refresh(org)
    assert org.status == "pending"


def test_barred_organisations_are_listed_publicly_and_escaped(org, app, client):
    assert "No participant is suspended, restricted or barred" in client.get("/notices?lang=en").get_data(
        as_text=True
    )
    status(app, "barred", "--reason", "虚假交易 <script>alert(1)</script>")
    page = client.get("/notices?lang=zh").get_data(as_text=True)
    assert "测试钢铁" in page and STEEL in page and "虚假交易" in page
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;" in page
    assert "Test Steel" in client.get("/notices?lang=en").get_data(as_text=True)
    assert status(app, "approved", "--reason", "复核后恢复").exit_code == 0  # reinstated: history now
    page = client.get("/notices?lang=en").get_data(as_text=True)
    assert "No participant is suspended, restricted or barred" in page and "Lifted on" in page
    assert STEEL in page and "&lt;script&gt;" in page and "<script>alert(1)</script>" not in page


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["restricted", "--reason", "x"], "限额"),
        (["restricted", "--reason", "x", "--order-limit", "0"], "大于零"),
    ],
)
def test_a_restriction_needs_valid_limits(org, app, args, expected):
    assert status(app, "approved", "--reason", "ok").exit_code == 0
    result = status(app, *args)
    assert result.exit_code == 1 and expected in result.output, result.output
    db.session.refresh(org)
    assert org.status == "approved" and org.order_limit_t is None


def test_a_newly_approved_organisations_users_are_told_and_only_then(org, app, client):
    """Registering says to wait for the operator's approval: the approval is sent to the
    organisation's users (in Chinese, with the sign-in link); a reinstatement after a measure,
    or a deactivated user, gets nothing."""
    from portal.core.mail import OutboxMessage

    factories.user("admin@steel.cn", organisation=org)
    gone = factories.user("gone@steel.cn", organisation=org)
    gone.is_active = False
    db.session.commit()

    def sent():
        return [
            (m.to, m.subject, m.body)
            for m in db.session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))
        ]

    assert status(app, "approved", "--reason", "材料齐全").exit_code == 0
    ((to, subject, body),) = sent()
    assert to == "admin@steel.cn" and "审核" in subject and "测试钢铁 已通过审核" in body and "/login" in body
    assert status(app, "suspended", "--reason", "调查中").exit_code == 0
    assert status(app, "approved", "--reason", "调查结束").exit_code == 0
    assert len(sent()) == 1

    factories.user("ops@portal.cn", role="operator")
    db.session.commit()
    client.post("/login", data={"email": "ops@portal.cn", "password": factories.PASSWORD})
    app.config["MAIL_OUTBOX_PAGE"] = True
    page = client.get("/staff/outbox?lang=zh")
    assert page.status_code == 200 and "收件人：admin@steel.cn" in page.get_data(as_text=True)
