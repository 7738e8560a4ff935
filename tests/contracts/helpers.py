"""What the contract tests share: dates relative to today (Beijing) and a contract's terms."""

from datetime import timedelta

from tests.clock import TODAY


def day(n: int) -> str:
    """Today plus ``n`` days, as the ISO date the forms and the API take."""
    return (TODAY + timedelta(days=n)).isoformat()


def terms(**change) -> dict:
    """Terms of a 140 t contract that started 10 days ago: 60 t due in 5 days, 80 t in 400."""
    data = {
        "title": "Steel offtake 2026–2028",
        "start": day(-10),
        "end": day(800),
        "price_per_t": "70.00",
        "tranches": [{"due": day(5), "quantity": 60}, {"due": day(400), "quantity": 80}],
        "delivery": "holding",
    }
    data.update(change)
    return data
