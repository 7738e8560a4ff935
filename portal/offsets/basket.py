"""The order a signed-in buyer puts together on the web before anything is held: its lines
(batch code, tonnes), kept in the user's session.

Why the session and not a draft order in the database: nothing is priced, held or owed until the
buyer asks for the hold, so there is nothing the portal must keep, expire or clean up; the
session is the buyer's own and signed, and holds only batch codes and whole tonnes (never a
price: every page prices the lines afresh from the listings, and the hold fixes the prices the
page showed). A line a buyer adds from the catalog is shown with the saved ones and saved by the
next form sent, never by following a link.
"""

from dataclasses import dataclass
from decimal import Decimal

from flask import session
from flask_babel import gettext as _

from portal.core.numbers import whole
from portal.core.visitors import ORDER_LINES
from portal.ledger.models import MAX_QUANTITY, Batch
from portal.offsets.lines import MAX_LINES, line_problem, offers

#: The shared pages' frame links to it: ``core.visitors`` knows the key.
SESSION_KEY = ORDER_LINES


@dataclass(frozen=True)
class Row:
    """One line as the page shows it: the batch (None when not for sale), the tonnes typed,
    the listed price and stock now, and what is wrong with it, if anything."""

    code: str
    typed: str
    quantity: int | None
    batch: Batch | None
    price: Decimal | None
    available: int
    problem: str | None
    new: bool = False

    @property
    def amount(self) -> Decimal | None:
        if self.price is None or self.quantity is None:
            return None
        return self.price * self.quantity


def saved() -> list[tuple[str, int]]:
    """The lines kept in the session (anything malformed in it is dropped)."""
    found = []
    for item in session.get(SESSION_KEY) or []:
        if isinstance(item, list) and len(item) == 2 and isinstance(item[0], str):
            quantity = whole(item[1], 1, MAX_QUANTITY)
            if quantity is not None and item[0] not in {code for code, _q in found}:
                found.append((item[0][:80], quantity))
    return found[:MAX_LINES]


def save(lines: list[tuple[str, int]]) -> None:
    session[SESSION_KEY] = [[code, quantity] for code, quantity in lines[:MAX_LINES]]


def clear() -> None:
    session.pop(SESSION_KEY, None)


def with_added(lines: list[tuple[str, str]], code, typed) -> tuple[list[tuple[str, str]], str | None]:
    """``lines`` with ``typed`` tonnes of batch ``code`` added (to its line if it has one); the
    code added, or None when there is nothing to add."""
    if not isinstance(code, str) or not code.strip() or len(code) > 80:
        return lines, None
    code = code.strip()
    typed = (typed or "1").strip()[:12]
    for i, (existing, quantity) in enumerate(lines):
        if existing == code:
            a, b = whole(quantity, 1, MAX_QUANTITY), whole(typed, 1, MAX_QUANTITY)
            merged = str(a + b) if a is not None and b is not None else typed
            return [*lines[:i], (code, merged), *lines[i + 1 :]], code
    return [*lines, (code, typed)], code


def rows(
    lines: list[tuple[str, str]], new: str | None = None, organisation=None
) -> tuple[list[Row], Decimal, bool]:
    """The page's rows for ``lines`` (code, tonnes as typed) at the prices ``organisation`` pays,
    their total and whether every one can be bought as it stands."""
    found = offers((code for code, _typed in lines), organisation)
    shown = []
    ok = True
    for code, typed in lines:
        quantity = whole(typed, 1, MAX_QUANTITY)
        offer = found.get(code)
        if quantity is None:
            problem = _("Enter a whole number of tonnes greater than zero.")
        else:
            refusal = line_problem(code, quantity, offer, organisation)
            problem = refusal.message if refusal else None
        ok = ok and problem is None
        batch, price, stock, _listed_at = offer if offer else (None, None, 0, None)
        shown.append(Row(code, str(typed), quantity, batch, price, stock, problem, new=code == new))
    total = sum((row.amount for row in shown if row.amount is not None), Decimal("0"))
    return shown, total, ok
