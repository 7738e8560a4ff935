"""Who may buy how much: the plan's rules for pending, approved, restricted, suspended, barred."""

import pytest

from portal.buyers.models import Organisation
from portal.buyers.policy import UNAPPROVED_SPOT_LIMIT_T, purchase_refusal


def org(status, order_limit=None, year_limit=None):
    return Organisation(
        name_zh="测试",
        uscc="x",
        sector="steel",
        status=status,
        order_limit_t=order_limit,
        year_limit_t=year_limit,
    )


@pytest.mark.parametrize(
    ("organisation", "quantity", "contract", "bought", "allowed"),
    [
        (org("approved"), 1_000_000, True, 0, True),
        (org("pending"), UNAPPROVED_SPOT_LIMIT_T, False, 0, True),
        (org("pending"), UNAPPROVED_SPOT_LIMIT_T + 1, False, 0, False),
        (org("pending"), 10, True, 0, False),
        (org("suspended"), 1, False, 0, False),
        (org("barred"), 1, False, 0, False),
        (org("restricted", order_limit=500), 500, False, 0, True),
        (org("restricted", order_limit=500), 501, False, 0, False),
        (org("restricted", year_limit=5000), 1000, False, 4000, True),
        (org("restricted", year_limit=5000), 1001, False, 4000, False),
    ],
)
def test_purchase_rules(app, organisation, quantity, contract, bought, allowed):
    with app.test_request_context("/?lang=en"):
        refusal = purchase_refusal(organisation, quantity, contract=contract, bought_this_year=bought)
    assert (refusal is None) == allowed, refusal


def test_refusals_are_translated(app):
    with app.test_request_context("/?lang=zh"):
        assert "每年" in purchase_refusal(org("restricted", year_limit=10), 20)
