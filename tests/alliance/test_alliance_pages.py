"""The alliance's pages: public (no sign-in, both languages, escaped text, a fixed number of
queries), the buyer's application and leaving, the back office's decisions and terms, and every
forbidden path changing nothing."""

import pytest
from sqlalchemy import func, select

from portal.alliance import services as alliance
from portal.alliance.models import AllianceTerms, Membership
from portal.buyers import services as buyers
from portal.certificates import retiring
from portal.certificates.revocation import revoke
from portal.extensions import db
from tests import factories
from tests.alliance.conftest import apply, make_member
from tests.sql import statements_of


def sign_in(client, email):
    client.post("/logout")
    response = client.post("/login", data={"email": email, "password": factories.PASSWORD})
    assert response.status_code == 302, response.get_data(as_text=True)[:400]


@pytest.fixture
def people(stock, app):
    steel, cement = stock
    factories.user("a@steel.cn", organisation=steel, org_admin=True)
    factories.user("b@cement.cn", organisation=cement)
    for role in ("operator", "sales", "auditor"):
        factories.user(f"{role}@portal.cn", role=role)
    db.session.commit()
    return steel, cement


def _retire(org, quantity, batch="OLD-2021"):
    buyers.deliver_from_inventory(org, quantity, batch_codes=[batch])
    certificate, _ = retiring.retire_from_holding(
        org, quantity, beneficiary="b", purpose="voluntary", actor="t"
    )
    return certificate


def test_the_public_page_lists_members_with_retired_tonnes_and_former_members(people, client):
    steel, cement = people
    make_member(steel)
    make_member(cement)
    _retire(steel, 7)
    revoked = _retire(steel, 3)
    revoke(revoked, "错误", actor="t")
    _retire(cement, 2)
    alliance.leave(cement, actor="user:1", reason="业务调整")
    db.session.commit()
    zh = client.get("/alliance").get_data(as_text=True)
    assert "绿色低碳企业联盟" in zh and "测试钢铁" in zh and "前成员" in zh
    en = client.get("/alliance?lang=en").get_data(as_text=True)
    assert "Green Low-Carbon Enterprise Alliance" in en and "Former members" in en
    members_table = en.split("alliance-members")[1].split("</table>")[0]
    assert "测试钢铁" in members_table and "测试水泥" not in members_table
    assert "<strong>7</strong>" in members_table  # the revoked 3 t do not count
    former = en.split("alliance-former")[1]
    assert "测试水泥" in former
    profile = client.get(f"/alliance/members/{cement.id}?lang=en").get_data(as_text=True)
    assert "Former member" in profile and "2" in profile.split("retired-per-year")[1]


def test_the_public_page_costs_the_same_queries_for_one_member_or_five(app, client):
    orgs = []
    for i in range(5):
        first17 = f"91150400MA{i:07d}"
        from portal.buyers.uscc import check_character

        orgs.append(
            buyers.create_organisation(
                name_zh=f"成员{i}", uscc=first17 + check_character(first17), sector="steel", approve=True
            )
        )
    make_member(orgs[0])
    db.session.commit()
    one = len(statements_of(lambda: client.get("/alliance")))
    for org in orgs[1:]:
        make_member(org)
    alliance.leave(orgs[1], actor="t", reason="r")
    db.session.commit()
    assert len(statements_of(lambda: client.get("/alliance"))) == one


def test_user_text_is_escaped(people, client):
    steel, _ = people
    membership = apply(steel, pledge="<script>alert(1)</script>", description_en="<b>bold</b>")
    alliance.approve(membership, actor="t")
    db.session.commit()
    page = client.get(f"/alliance/members/{steel.id}?lang=en").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;" in page and "<b>bold" not in page


def test_a_profile_of_a_non_member_is_not_found(people, client):
    steel, _ = people
    apply(steel)
    db.session.commit()
    assert client.get(f"/alliance/members/{steel.id}").status_code == 404
    assert client.get("/alliance/members/99999999999").status_code == 404


def test_a_buyer_applies_and_a_second_application_is_refused_translated(people, client):
    sign_in(client, "a@steel.cn")
    form = {
        "sector": "steel",
        "emissions_band": "over_1m",
        "pledge": "减排",
        "description_zh": "",
        "description_en": "",
        "website": "",
    }
    assert client.post("/account/alliance/apply", data=form).status_code == 303
    again = client.post("/account/alliance/apply?lang=en", data=form)
    assert again.status_code == 409 and "already applied" in again.get_data(as_text=True)
    zh = client.post("/account/alliance/apply?lang=zh", data=form)
    assert zh.status_code == 409 and "已经提交" in zh.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(Membership)) == 1


def test_a_too_long_pledge_is_refused_on_the_page(people, client):
    sign_in(client, "a@steel.cn")
    form = {"sector": "steel", "emissions_band": "over_1m", "pledge": "减" * 1001}
    response = client.post("/account/alliance/apply?lang=en", data=form)
    assert response.status_code == 400 and "at most 1000 characters" in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(Membership)) == 0


def test_a_declined_buyer_sees_the_reason_and_may_apply_again(people, client):
    steel, _ = people
    alliance.decline(apply(steel), actor="t", reason="请补充减排目标")
    db.session.commit()
    sign_in(client, "a@steel.cn")
    page = client.get("/account/alliance?lang=en").get_data(as_text=True)
    assert "请补充减排目标" in page and "You may apply again" in page and "apply-form" in page


def test_the_operator_approves_and_declines_others_are_forbidden(people, client):
    steel, cement = people
    first = apply(steel)
    second = apply(cement)
    db.session.commit()
    for email in ("sales@portal.cn", "auditor@portal.cn", "a@steel.cn"):
        sign_in(client, email)
        assert client.post(f"/staff/alliance/{first.id}/approve", data={"reason": ""}).status_code == 403
        assert (
            client.post(
                "/staff/alliance/terms", data={"discount_pct": "10", "first_call_days": "3"}
            ).status_code
            == 403
        )
    db.session.expire_all()
    assert first.status == "pending" and not steel.alliance_member
    assert db.session.get(AllianceTerms, 1) is None
    sign_in(client, "auditor@portal.cn")
    listing = client.get("/staff/alliance?lang=en").get_data(as_text=True)
    assert "Applications waiting" in listing and "Approve" not in listing
    sign_in(client, "operator@portal.cn")
    assert client.post(f"/staff/alliance/{first.id}/approve", data={"reason": ""}).status_code == 303
    missing = client.post(
        f"/staff/alliance/{second.id}/decline?lang=en", data={"reason": ""}, follow_redirects=True
    )
    assert "Please fill in: Reason" in missing.get_data(as_text=True)
    assert client.post(f"/staff/alliance/{second.id}/decline", data={"reason": "不符合"}).status_code == 303
    db.session.expire_all()
    assert first.status == "member" and steel.alliance_member and second.status == "declined"
    twice = client.post(f"/staff/alliance/{first.id}/approve?lang=en", data={}, follow_redirects=True)
    assert "already been decided" in twice.get_data(as_text=True)
    assert client.post(f"/staff/alliance/{first.id}/remove", data={"reason": "违反承诺"}).status_code == 303
    db.session.expire_all()
    assert first.status == "left" and not steel.alliance_member and first.leave_reason == "违反承诺"


def test_pages_need_the_right_roles(people, client):
    assert client.get("/alliance").status_code == 200
    assert client.get("/account/alliance").status_code == 302  # sign in first
    assert client.get("/staff/alliance").status_code == 302
    sign_in(client, "operator@portal.cn")
    assert client.get("/account/alliance").status_code == 403
    sign_in(client, "a@steel.cn")
    assert client.get("/staff/alliance").status_code == 403
    assert client.post("/staff/alliance/1/decline", data={"reason": "x"}).status_code == 403


def test_the_terms_form_and_its_errors(people, client):
    sign_in(client, "operator@portal.cn")
    bad = client.post("/staff/alliance/terms?lang=en", data={"discount_pct": "60", "first_call_days": "3"})
    assert bad.status_code == 400 and "from 0 to 50" in bad.get_data(as_text=True)
    assert db.session.get(AllianceTerms, 1) is None
    assert (
        client.post(
            "/staff/alliance/terms", data={"discount_pct": "12.5", "first_call_days": "3"}
        ).status_code
        == 303
    )
    db.session.expire_all()
    assert alliance.AllianceTerms is AllianceTerms and db.session.get(AllianceTerms, 1).first_call_days == 3


def test_a_member_leaves_from_its_account_page(people, client):
    steel, _ = people
    make_member(steel)
    db.session.commit()
    sign_in(client, "a@steel.cn")
    assert client.post("/account/alliance/leave?lang=en", data={"reason": ""}).status_code == 400
    assert client.post("/account/alliance/leave", data={"reason": "退出"}).status_code == 303
    db.session.expire_all()
    assert not steel.alliance_member
    assert "Former member" in client.get(f"/alliance/members/{steel.id}?lang=en").get_data(as_text=True)


def test_the_catalog_shows_members_their_price_and_others_the_first_call(people, client):
    from datetime import timedelta

    from portal.catalog.models import Listing
    from portal.ledger.models import Batch
    from portal.timeutil import utcnow

    steel, _ = people
    make_member(steel)
    alliance.set_terms("10", "7", actor="t")
    old = db.session.scalar(select(Listing).join(Batch).where(Batch.code == "OLD-2021"))
    old.listed_at = utcnow() - timedelta(days=30)
    db.session.commit()
    visitor = client.get("/?lang=en").get_data(as_text=True)
    assert "Alliance members first" in visitor and "Member price" not in visitor
    sign_in(client, "a@steel.cn")
    member = client.get("/?lang=en").get_data(as_text=True)
    assert (
        "Member price" in member and 'data-price="54.00"' in member and "Alliance members first" not in member
    )
    basket = client.get("/checkout?add=OLD-2021&quantity=2&lang=en").get_data(as_text=True)
    assert "CN¥108.00" in basket and "member price" in basket
    sign_in(client, "b@cement.cn")
    other = client.get("/?lang=en").get_data(as_text=True)
    assert "Alliance members first" in other and 'data-price="60.00"' in other
    refused = client.get("/checkout?add=NEW-2023&quantity=2&lang=en").get_data(as_text=True)
    assert "offered first to alliance members" in refused


def test_a_cached_catalog_page_showing_a_first_call_is_rebuilt_when_it_ends(people, client, monkeypatch):
    from datetime import timedelta

    from portal.alliance import offers
    from portal.catalog import cache
    from portal.catalog.models import Listing
    from portal.ledger.models import Batch
    from portal.timeutil import utcnow

    alliance.set_terms("0", "7", actor="t")
    for code, days in (("OLD-2021", 30), ("NEW-2023", 2)):
        db.session.scalar(select(Listing).join(Batch).where(Batch.code == code)).listed_at = (
            utcnow() - timedelta(days=days)
        )
    db.session.commit()
    assert client.get("/?lang=en").get_data(as_text=True).count("Alliance members first") == 1
    assert client.get("/?lang=en").get_data(as_text=True).count("Alliance members first") == 1  # cached
    later = utcnow() + timedelta(days=6)
    for module in (cache, offers, alliance):
        monkeypatch.setattr(module, "utcnow", lambda: later)
    assert "Alliance members first" not in client.get("/?lang=en").get_data(as_text=True)


def test_only_those_who_may_apply_are_offered_to(people, client):
    """Guests (asked to sign in) and a buyer's administrator see "Apply to join"; staff, whom the
    application page refuses, do not."""
    offered = {}
    for who in (None, "a@steel.cn", "operator@portal.cn", "auditor@portal.cn"):
        if who is None:
            client.post("/logout")
        else:
            sign_in(client, who)
        offered[who] = "/account/alliance" in client.get("/alliance?lang=en").get_data(as_text=True)
    assert offered == {
        None: True,
        "a@steel.cn": True,
        "operator@portal.cn": False,
        "auditor@portal.cn": False,
    }
