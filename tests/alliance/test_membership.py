"""Applying, the operator's decision, leaving and the history: every refusal changes nothing,
every change is audited, and ``Organisation.alliance_member`` follows the membership."""

import pytest
from sqlalchemy import func, select

from portal.alliance import services as alliance
from portal.alliance.models import PLEDGE_MAX, Membership
from portal.audit.models import AuditEvent
from portal.buyers import services as buyers
from portal.extensions import db
from tests import factories
from tests.alliance.conftest import apply, make_member


def _counts():
    return (
        db.session.scalar(select(func.count()).select_from(Membership)),
        db.session.scalar(select(func.count()).select_from(AuditEvent)),
    )


def test_apply_approve_leave_and_apply_again(app):
    steel, _ = factories.steel_and_cement()
    membership = apply(steel)
    assert membership.status == "pending" and not steel.alliance_member
    alliance.approve(membership, actor="user:7")
    assert membership.status == "member" and steel.alliance_member and membership.decided_by == "user:7"
    alliance.leave(steel, actor="user:8", reason="重组")
    assert membership.status == "left" and not steel.alliance_member and membership.leave_reason == "重组"
    again = apply(steel)
    assert again.status == "pending" and [m.status for m in alliance.history(steel)] == ["pending", "left"]
    actions = list(
        db.session.scalars(
            select(AuditEvent.action).where(AuditEvent.action.like("alliance.%")).order_by(AuditEvent.id)
        )
    )
    assert actions == ["alliance.apply", "alliance.approve", "alliance.leave", "alliance.apply"]


def test_a_second_pending_application_is_refused_and_changes_nothing(app):
    steel, _ = factories.steel_and_cement()
    apply(steel)
    before = _counts()
    with pytest.raises(alliance.AllianceError) as refused:
        apply(steel)
    assert refused.value.code == "application_pending" and refused.value.status == 409
    assert _counts() == before


def test_a_member_cannot_apply_again(app):
    steel, _ = factories.steel_and_cement()
    make_member(steel)
    with pytest.raises(alliance.AllianceError) as refused:
        apply(steel)
    assert refused.value.code == "already_member"


def test_a_declined_organisation_may_reapply_and_the_reason_is_kept(app):
    steel, _ = factories.steel_and_cement()
    first = apply(steel)
    with pytest.raises(alliance.AllianceError) as refused:
        alliance.decline(first, actor="user:7", reason="  ")
    assert refused.value.code == "missing_reason" and first.status == "pending"
    alliance.decline(first, actor="user:7", reason="承诺不够具体")
    assert (
        first.status == "declined" and first.decision_reason == "承诺不够具体" and not steel.alliance_member
    )
    second = apply(steel, pledge="2028年前排放减少30%。")
    assert second.status == "pending" and alliance.latest(steel) == second
    with pytest.raises(alliance.AllianceError) as decided:
        alliance.approve(first, actor="user:7")
    assert decided.value.code == "not_pending"


@pytest.mark.parametrize(
    "changes, code",
    [
        ({"pledge": "x" * (PLEDGE_MAX + 1)}, "pledge_too_long"),
        ({"pledge": "   "}, "missing_pledge"),
        ({"pledge": "bad\x00byte"}, "invalid_pledge"),
        ({"emissions_band": "huge"}, "invalid_emissions_band"),
        ({"sector": "mining"}, "invalid_sector"),
        ({"website": "javascript:alert(1)"}, "invalid_website"),
        ({"website": 'https://a.cn/"onmouseover=x'}, "invalid_website"),
        ({"description_en": "y" * 501}, "description_en_too_long"),
    ],
)
def test_bad_applications_are_refused_and_change_nothing(app, changes, code):
    steel, _ = factories.steel_and_cement()
    db.session.commit()
    before = _counts()
    with pytest.raises(alliance.AllianceError) as refused:
        apply(steel, **changes)
    assert refused.value.code == code and refused.value.message
    db.session.rollback()
    assert _counts() == before


def test_only_approved_organisations_apply(app):
    pending = buyers.create_organisation(name_zh="待审", uscc=factories.STEEL_USCC, sector="steel")
    with pytest.raises(alliance.AllianceError) as refused:
        apply(pending)
    assert refused.value.code == "organisation_not_approved" and refused.value.status == 403


def test_leaving_needs_a_reason_and_membership(app):
    steel, cement = factories.steel_and_cement()
    with pytest.raises(alliance.AllianceError) as refused:
        alliance.leave(cement, actor="user:1", reason="x")
    assert refused.value.code == "not_member"
    make_member(steel)
    with pytest.raises(alliance.AllianceError):
        alliance.leave(steel, actor="user:1", reason="")
    assert steel.alliance_member


def test_created_as_a_member_has_its_membership_recorded(app):
    """``flask orgs create --alliance`` and the demo: a member row, approved at once."""
    org = buyers.create_organisation(
        name_zh="联盟钢铁", uscc=factories.STEEL_USCC, sector="steel", alliance_member=True, approve=True
    )
    assert org.alliance_member and alliance.current(org).status == "member"
    assert db.session.scalar(select(AuditEvent).filter_by(action="alliance.enrol")) is not None


def test_the_cli_flag_still_makes_a_member(app):
    result = app.test_cli_runner().invoke(
        args=[
            "orgs",
            "create",
            "联盟水泥",
            "--uscc",
            factories.CEMENT_USCC,
            "--sector",
            "building_materials",
            "--alliance",
            "--approve",
        ]
    )
    assert result.exit_code == 0, result.output
    org = buyers.find_by_uscc(factories.CEMENT_USCC)
    assert org.alliance_member and alliance.current(org).status == "member"


@pytest.mark.postgres
def test_two_applications_at_once_make_one(pg_app):
    from portal.buyers.models import Organisation
    from tests.concurrency import race

    steel, _ = factories.steel_and_cement()
    steel_id = steel.id
    db.session.commit()

    def one(_i):
        apply(db.session.get(Organisation, steel_id))
        db.session.commit()
        return "applied"

    outcomes = race(pg_app, 4, one, refused=alliance.AllianceError)
    assert sorted(outcomes) == ["application_pending"] * 3 + ["applied"]
    assert db.session.scalar(select(func.count()).select_from(Membership)) == 1
