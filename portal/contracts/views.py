"""Offtake contract screens: the sales team's list, drafts, contract pages and their actions,
supply planning and invoices; a buyer's own contracts and invoices, paid online; invoice and
contract PDFs.

Thin: every rule lives in :mod:`portal.contracts.services`. A refusal (``ServiceError``) is
shown on the page it came from, with its HTTP status, and nothing it began stays (the request
rolls back; only a delivery's reserve top-up, committed on purpose by the service, remains).

All screens are routes of one blueprint, ``contracts`` (defined in ``views_shared``), in modules
of their own, imported here so that registering ``bp`` registers them all:

- ``views_shared`` – the blueprint, its template labels, finding a contract or invoice, who acts,
  a form's own refusal, recording a bank payment.
- ``views_drafts`` – the draft and amendment form (new, edit, amend).
- ``views_staff`` – the sales team's desk: list, contract page, actions, versions, planning.
- ``views_confirmations`` – what a delivery or a termination will do, asked before it runs.
- ``views_invoices`` – an invoice's page, the staff's invoice list and export, payments on it.
- ``views_documents`` – contract and invoice PDFs and the contract address printed on them.
- ``views_buyer`` – the buyer's own contracts and invoices, and paying online.
"""

from portal.contracts import (  # noqa: F401  (their routes are on bp)
    views_buyer,
    views_documents,
    views_drafts,
    views_invoices,
    views_staff,
)
from portal.contracts.views_shared import bp

__all__ = ["bp"]
