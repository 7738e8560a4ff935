"""Checkout orders (hold, pay, retire): the public interface of the package.

An order holds its blocks in its own ``hold`` account for 30 minutes. Payment is confirmed only
by Stripe's signed ``payment_intent.succeeded`` webhook, whose handler retires the held blocks
into a certificate. Webhooks may come twice, out of order, or after the hold expired: every
handler locks the order row first and acts on its state, so the outcome is the same.

Views, the API, the CLI, other packages and tests import from here; each rule lives in its own
module:

* ``ordering``: placing an order (checks, hold, price) and its PaymentIntent;
* ``lines``: the lines a buyer names, priced at the listed prices, and quotes (ten minutes);
* ``paying``: a new attempt after a declined payment, and the wallets (Alipay, WeChat Pay);
* ``guests``: guest checkout (no account): the guest's details, the order's secret link, limits;
* ``basket``: the web order being put together, kept in the session (batches and tonnes only);
* ``holds``: taking, locking and releasing an order's hold, and OrderError;
* ``pricing``: an order's lines and amount;
* ``expiry``: releasing unpaid orders past their time;
* ``fulfilment``: the payment events (importing it registers their handlers) and refunds;
* ``transfers``: paying a large order by bank transfer, recorded by staff;
* ``queries``: finding orders, the batches for sale, and how a note reads.

A test that replaces something a rule calls patches the module the rule lives in, not this one.
"""

from portal.offsets.expiry import HOLD_MINUTES, cancel_payment, expire_due, expire_if_due, expire_on_access
from portal.offsets.fulfilment import charge_refunded, payment_failed, payment_succeeded, refund
from portal.offsets.guests import GuestDetails, check_details, find_order, is_guest_organisation, place_order
from portal.offsets.holds import OrderError, bought_this_year, bought_today
from portal.offsets.lines import (
    MAX_LINES,
    QUOTE_MINUTES,
    PricedLine,
    create_quote,
    find_quote,
    parse_lines,
    price_lines,
)
from portal.offsets.ordering import attach_payment, create_order, ensure_payment
from portal.offsets.paying import METHODS, fresh_attempt, payable, start_wallet, wallet_step
from portal.offsets.queries import batches_for_sale, find, note_label, orders_of
from portal.offsets.transfers import (
    awaiting_transfers,
    choose_transfer,
    find_by_transfer_reference,
    record_transfer,
    transfer_offered,
)

__all__ = [
    "GuestDetails",
    "HOLD_MINUTES",
    "bought_today",
    "check_details",
    "find_order",
    "is_guest_organisation",
    "place_order",
    "MAX_LINES",
    "METHODS",
    "QUOTE_MINUTES",
    "OrderError",
    "PricedLine",
    "create_quote",
    "find_quote",
    "fresh_attempt",
    "parse_lines",
    "payable",
    "price_lines",
    "start_wallet",
    "wallet_step",
    "attach_payment",
    "awaiting_transfers",
    "choose_transfer",
    "find_by_transfer_reference",
    "record_transfer",
    "transfer_offered",
    "batches_for_sale",
    "bought_this_year",
    "cancel_payment",
    "charge_refunded",
    "create_order",
    "ensure_payment",
    "expire_due",
    "expire_if_due",
    "expire_on_access",
    "find",
    "note_label",
    "orders_of",
    "payment_failed",
    "payment_succeeded",
    "refund",
]
