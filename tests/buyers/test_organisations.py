"""Unified social credit codes, organisations, and the offline delivery command."""

import pytest
from flask_babel import refresh

from portal.buyers import services, uscc
from portal.demo.data import uscc_for
from portal.extensions import db
from portal.ledger import services as ledger
from portal.ledger.models import AccountKind
from tests import factories

VALID = ["91350100M000100Y43", "91110000802100433B"]  # published examples


@pytest.mark.parametrize("code", VALID + [uscc_for(n) for n in (1, 42, 999)])
def test_valid_codes(code):
    assert uscc.problem(code) is None


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("91350100M000100Y4", "length"),
        ("91350100M000100Y44", "check"),
        ("91350100M00O100Y43", "characters"),
        ("9135010AM000100Y43", "division"),
        ("91350100M000100Y4I", "characters"),
    ],
)
def test_invalid_codes(code, reason):
    assert uscc.problem(code) == reason


def test_every_single_character_change_is_caught():
    code = VALID[0]
    for i in range(18):
        for c in uscc.ALPHABET:
            if c != code[i]:
                changed = code[:i] + c + code[i + 1 :]
                assert uscc.problem(changed) is not None, changed


def test_wrong_check_character_gets_a_translated_message(app):
    with app.test_request_context("/?lang=zh"):
        with pytest.raises(services.OrganisationError) as caught:
            services.create_organisation(name_zh="某钢铁公司", uscc="91350100M000100Y44", sector="steel")
        assert "校验码不正确" in caught.value.message
    with app.test_request_context("/?lang=en"):
        refresh()  # the fixture's app context outlives one request: forget the cached locale
        assert "check character" in services.uscc_error("91350100M000100Y44")


def test_orgs_create_and_ledger_deliver_commands(app):
    factories.batch(quantity=500, code="B-CLI-2022")
    db.session.commit()
    runner = app.test_cli_runner()
    result = runner.invoke(
        args=[
            "orgs",
            "create",
            "赤峰测试钢铁有限公司",
            "--uscc",
            VALID[0],
            "--sector",
            "steel",
            "--alliance",
            "--approve",
        ]
    )
    assert result.exit_code == 0, result.output
    assert "approved" in result.output

    duplicate = runner.invoke(args=["orgs", "create", "另一家", "--uscc", VALID[0], "--sector", "steel"])
    assert duplicate.exit_code == 1 and "已存在" in duplicate.output

    result = runner.invoke(args=["ledger", "deliver", "--org", VALID[0], "--quantity", "120"])
    assert result.exit_code == 0, result.output
    assert "B-CLI-2022 serials 1-120 (120 t)" in result.output

    for bad, expected in [("0", "大于零的整数"), ("-3", "大于零的整数"), ("100000", "只有 380 吨可用")]:
        result = runner.invoke(args=["ledger", "deliver", "--org", VALID[0], "--quantity", bad])
        assert result.exit_code == 1 and expected in result.output, result.output
    result = runner.invoke(
        args=["ledger", "deliver", "--org", VALID[0], "--quantity", "1", "--batch", "NOPE"]
    )
    assert result.exit_code == 1 and "NOPE" in result.output
    result = runner.invoke(args=["ledger", "deliver", "--org", VALID[1], "--quantity", "1"])
    assert result.exit_code == 1 and "不存在" in result.output

    org = services.find_by_uscc(VALID[0])
    assert ledger.balance(services.holding_account(org)) == 120
    assert ledger.balance(ledger.system_account(AccountKind.INVENTORY)) == 380


def test_suspended_organisation_cannot_receive(app):
    factories.batch(quantity=50)
    org = services.create_organisation(name_zh="停牌公司", uscc=VALID[1], sector="other", approve=True)
    org.status = "suspended"
    with pytest.raises(services.OrganisationError):
        services.deliver_from_inventory(org, 5)
