"""Offtake contracts: draft, sign, reserve, deliver, invoice, get paid, amend, terminate, complete.

This module is the package's public interface: views, the API, the CLI, other packages and tests
call ``services.deliver(...)`` and the like, and the rules live in one module each:

- :mod:`~portal.contracts.common` – ``ContractError``, finding and locking a contract (and the
  package's locking argument: why contract actions cannot deadlock), numbering, replaying a
  repeated Idempotency-Key, and the mail to a contract's buyer and owner.
- :mod:`~portal.contracts.terms` – reading and checking terms (``parse_terms``), the terms of a
  contract as stored, the price per tonne in a year (``price_for``), and the limits on terms.
- :mod:`~portal.contracts.reserve` – the reserve account: topping it up from matching listed
  stock, dealing new stock to the contracts that want it, releasing it back to inventory.
- :mod:`~portal.contracts.invoices` – issuing invoices, recording bank payments, paying online
  (and its Stripe webhooks), completing a contract, overdue notices.
- :mod:`~portal.contracts.delivery` – checking and making a delivery (``check_delivery``,
  ``deliver``).
- :mod:`~portal.contracts.drafting` – drafts, signing, versions, amendments, termination,
  deleting a draft.
- :mod:`~portal.contracts.queries` – read-only lookups: what the reserve covers, lists of
  contracts, tranches due, deliveries and invoices, the invoices' ageing and totals.
- :mod:`~portal.contracts.planning` – supply planning by year.
- :mod:`~portal.contracts.forward` – forward supply: tranches covered by the forecast issuances of
  named projects in development, served first when their batches come up for sale; forecast cuts
  below what contracts count on.

Imports run one way: ``common`` ← ``terms`` ← ``reserve`` ← ``invoices`` ← ``delivery`` and
``drafting``; ``queries`` reads ``reserve``; ``reserve`` reads ``forward``; ``planning`` stands
alone. Names with a leading
underscore are the package's own; code outside it uses only what is exported here (a test that
patches a helper patches it in the module that calls it). Importing this module registers the
invoice webhooks (``invoices``), the reservation of newly listed stock (``reserve``) and the
check of forecast revisions (``forward``).
"""

from portal.contracts.common import ContractError, find, find_invoice
from portal.contracts.delivery import DeliveryPlan, check_delivery, deliver
from portal.contracts.drafting import (
    amend,
    check_amendable,
    check_deletable,
    check_editable,
    check_termination,
    create_draft,
    delete_draft,
    sign,
    terminate,
    update_draft,
    versions,
)
from portal.contracts.forward import add as add_forward_source
from portal.contracts.forward import remove as remove_forward_source
from portal.contracts.forward import shortfalls as forward_shortfalls
from portal.contracts.forward import sources as forward_sources
from portal.contracts.invoices import (
    invoice_paid_online,
    invoice_payment_refunded,
    notify_overdue,
    record_payment,
    start_online_payment,
)
from portal.contracts.planning import plan
from portal.contracts.queries import (
    AGEING,
    ageing_bucket,
    all_contracts,
    contracts_of,
    cover,
    days_past_due,
    deliveries_of,
    due_tranches,
    invoice_buyers,
    invoice_owners,
    invoice_query,
    invoice_totals,
    invoices_of,
    overdue_invoices,
    visible_to_buyer,
)
from portal.contracts.reserve import reserve, reserve_all, reserved
from portal.contracts.terms import MAX_TRANCHES, TITLE_MAX, parse_terms, price_for, terms_of
from portal.timeutil import beijing_today  # the day (in Beijing) every rule here counts from

__all__ = [
    # the refusal, limits and today
    "AGEING",
    "MAX_TRANCHES",
    "TITLE_MAX",
    "ContractError",
    "beijing_today",
    # terms and prices
    "parse_terms",
    "price_for",
    "terms_of",
    # a contract's life
    "amend",
    "check_amendable",
    "check_deletable",
    "check_editable",
    "check_termination",
    "create_draft",
    "delete_draft",
    "sign",
    "terminate",
    "update_draft",
    "versions",
    # reserving
    "reserve",
    "reserve_all",
    "reserved",
    # delivering
    "DeliveryPlan",
    "check_delivery",
    "deliver",
    # invoices and payments
    "invoice_paid_online",
    "invoice_payment_refunded",
    "notify_overdue",
    "record_payment",
    "start_online_payment",
    # lookups
    "ageing_bucket",
    "all_contracts",
    "contracts_of",
    "cover",
    "days_past_due",
    "deliveries_of",
    "due_tranches",
    "find",
    "find_invoice",
    "invoice_buyers",
    "invoice_owners",
    "invoice_query",
    "invoice_totals",
    "invoices_of",
    "overdue_invoices",
    "visible_to_buyer",
    # supply planning and forward supply
    "plan",
    "add_forward_source",
    "remove_forward_source",
    "forward_shortfalls",
    "forward_sources",
]
