"""The public notices: suspended, restricted and barred organisations with the reason, the date and
a restriction's limits; lifted and replaced measures stay, as history."""

import json
import threading

import pytest
from flask_migrate import upgrade
from sqlalchemy import select, text

from portal.buyers import services as buyers
from portal.core.i18n import date_text
from portal.extensions import db
from tests import factories
from tests.concurrency import race
from tests.conftest import make_app
from tests.visible import visible_text

STEEL, CEMENT = factories.STEEL_USCC, factories.CEMENT_USCC


@pytest.fixture
def orgs(app):
    return factories.steel_and_cement()


def notices(client, lang="en") -> str:
    response = client.get(f"/notices?lang={lang}")
    assert response.status_code == 200
    return visible_text(response.get_data(as_text=True))


def sections(page: str) -> tuple[str, str]:
    """(measures in force, history) of the English page."""
    in_force, history = page.split("Measures in force", 1)[1].split(
        "History: lifted and replaced measures", 1
    )
    return in_force, history


def long_date(moment) -> str:
    """How the English page writes the (Beijing) day of ``moment``."""
    return date_text(moment, "en")


def test_a_suspension_is_announced_with_its_reason_and_date(orgs, client):
    steel, _ = orgs
    buyers.change_status(steel, "suspended", reason="未按期提交排放报告", actor="t")
    db.session.commit()
    in_force, history = sections(notices(client))
    assert "测试钢铁" in in_force and STEEL in in_force and "Suspended" in in_force
    assert "未按期提交排放报告" in in_force and long_date(steel.status_since) in in_force
    assert "测试钢铁" not in history
    zh = notices(client, "zh")
    assert "已暂停" in zh and "未按期提交排放报告" in zh and "suspended" not in zh


def test_a_restriction_is_announced_with_its_limits(orgs, client):
    _, cement = orgs
    buyers.change_status(
        cement, "restricted", reason="逾期付款", order_limit_t=500, year_limit_t=5000, actor="t"
    )
    db.session.commit()
    in_force, _history = sections(notices(client))
    assert "测试水泥" in in_force and "Restricted" in in_force
    assert "At most 500 t per order and 5,000 t a year" in in_force
    assert "每笔最多 500 吨，每年最多 5,000 吨" in notices(client, "zh")
    buyers.change_status(cement, "restricted", reason="仍有逾期", year_limit_t=2000, actor="t")
    db.session.commit()
    in_force, history = sections(notices(client))
    assert "At most 2,000 t a year" in in_force and "仍有逾期" in in_force
    assert "At most 500 t per order and 5,000 t a year" in history and "Replaced on" in history


def test_a_lifted_measure_stays_as_history(orgs, client):
    steel, _ = orgs
    buyers.change_status(steel, "suspended", reason="调查中", actor="t")
    db.session.commit()
    started = steel.status_since
    buyers.change_status(steel, "approved", reason="调查结束，未发现违规", actor="t")
    db.session.commit()
    in_force, history = sections(notices(client))
    assert "No participant is suspended, restricted or barred at present." in in_force
    assert "测试钢铁" in history and "Suspended" in history and "调查中" in history
    assert f"Lifted on {long_date(steel.status_since)}" in history and "调查结束，未发现违规" in history
    assert long_date(started) in history
    from portal.buyers.models import StatusMeasure

    (measure,) = db.session.scalars(select(StatusMeasure))
    assert measure.ended_as == "approved" and measure.lifted and measure.ended_by == "t"


def test_a_bar_replacing_a_suspension_ends_it(orgs, client):
    steel, _ = orgs
    buyers.change_status(steel, "suspended", reason="调查中", actor="t")
    buyers.change_status(steel, "barred", reason="虚假交易", actor="t")
    db.session.commit()
    in_force, history = sections(notices(client))
    assert "Barred" in in_force and "虚假交易" in in_force and "调查中" not in in_force
    assert "Replaced on" in history and "by: Barred" in history and "调查中" in history
    assert [m.status for m in buyers.measures_in_force()] == ["barred"]


def test_refused_changes_leave_the_measures_alone(orgs, client):
    from portal.buyers.models import StatusMeasure

    steel, _ = orgs
    buyers.change_status(steel, "suspended", reason="调查中", actor="t")
    db.session.commit()
    for status, limits in (("suspended", {}), ("restricted", {}), ("approved", {"order_limit_t": 5})):
        with pytest.raises(buyers.OrganisationError):
            buyers.change_status(steel, status, reason="x", actor="t", **limits)
        db.session.rollback()
    assert [(m.status, m.ended_at) for m in db.session.scalars(select(StatusMeasure))] == [
        ("suspended", None)
    ]


def test_the_history_is_rebuilt_from_the_audit_log_when_the_table_is_made(tmp_path):
    """Organisations suspended, restricted and reinstated before measures were kept."""
    app = make_app(f"sqlite:///{tmp_path}/old.db")
    with app.app_context():
        upgrade(revision="0016")
        rows = [
            (1, "测试钢铁", STEEL, "approved", "ok", "2026-01-05 00:00:00", None, None),
            (2, "测试水泥", CEMENT, "restricted", "逾期", "2026-03-01 00:00:00", 500, None),
        ]
        for row in rows:
            db.session.execute(
                text(
                    "INSERT INTO organisations (id, name_zh, name_en, uscc, sector, alliance_member, ets_entity, "
                    "status, status_reason, status_since, contact_name, contact_phone, order_limit_t, "
                    "year_limit_t, created_at) VALUES (:id, :name, '', :uscc, 'steel', 0, 0, :status, :reason, "
                    ":since, '', '', :order, :year, '2025-12-01 00:00:00')"
                ),
                dict(
                    zip(
                        ("id", "name", "uscc", "status", "reason", "since", "order", "year"), row, strict=True
                    )
                ),
            )

        def event(at, actor, uscc, status, reason, order=None):
            after = {"status": status, "reason": reason, "order_limit_t": order, "year_limit_t": None}
            db.session.execute(
                text(
                    "INSERT INTO audit_events (at, actor, action, subject_type, subject_id, before, after) "
                    "VALUES (:at, :actor, :action, 'organisation', :uscc, '{}', :after)"
                ),
                {
                    "at": at,
                    "actor": actor,
                    "action": f"organisation.{status}",
                    "uscc": uscc,
                    "after": json.dumps(after),
                },
            )

        event("2026-01-01 00:00:00", "user:1", STEEL, "suspended", "调查中")
        event("2026-01-05 00:00:00", "user:1", STEEL, "approved", "ok")
        event("2026-03-01 00:00:00", "cli", CEMENT, "restricted", "逾期", 500)
        db.session.commit()
        upgrade()
        found = db.session.execute(
            text(
                "SELECT organisation_id, status, reason, order_limit_t, started_by, ended_as, end_reason, ended_by "
                "FROM organisation_measures ORDER BY id"
            )
        ).all()
        assert [tuple(r) for r in found] == [
            (1, "suspended", "调查中", None, "user:1", "approved", "ok", "user:1"),
            (2, "restricted", "逾期", 500, "cli", None, "", None),
        ]
        assert [m.organisation.uscc for m in buyers.measures_in_force()] == [CEMENT]
        (lifted,) = buyers.ended_measures()
        assert lifted.started_at.isoformat() == "2026-01-01T00:00:00+00:00" and lifted.lifted
        db.session.remove()
        db.engine.dispose()


def test_two_measures_at_once_take_turns(pg_app):
    """Two operators act on one organisation at the same moment: the second waits for the first
    and ends the measure it took (without the organisation's lock, the second saw "approved" too,
    and its measure collided with the first's in the one-in-force index: a server error)."""
    steel, _ = factories.steel_and_cement()
    db.session.commit()
    org_id = steel.id
    first_changed = threading.Event()

    def waiting_on_a_lock() -> bool:
        found = db.session.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock'"
            )
        ).scalar()
        db.session.rollback()  # the view is read once per transaction
        return bool(found)

    def work(i):
        from portal.buyers.models import Organisation

        if i == 1:
            first_changed.wait(60)
        org = db.session.get(Organisation, org_id)
        # Either may follow the other: the second sees the first one's measure and ends it.
        limits = {"order_limit_t": 50} if i else {}
        buyers.change_status(
            org, ("suspended", "restricted")[i], reason=f"operator {i}", actor=f"t{i}", **limits
        )
        if i == 0:
            first_changed.set()
            with pg_app.app_context():  # another connection looks: is the second one waiting?
                for _ in range(600):
                    if waiting_on_a_lock():
                        break
                    threading.Event().wait(0.05)
                db.session.remove()
        db.session.commit()
        return "ok"

    assert race(pg_app, 2, work) == ["ok", "ok"]
    from portal.buyers.models import StatusMeasure

    measures = list(db.session.scalars(select(StatusMeasure).order_by(StatusMeasure.id)))
    assert [(m.status, m.ended_as) for m in measures] == [("suspended", "restricted"), ("restricted", None)]
    db.session.refresh(steel)
    assert steel.status == "restricted" and steel.order_limit_t == 50
