"""Invoice and contract PDFs for offtake contracts, and amounts written in Chinese capital numerals:
what the views, the CLI and the tests call.

Both are drawn on A4 in Chinese with the English beside or below it, on the operator's
letterhead (``letterhead``) with the portal's PDF toolkit (``portal.pdf``): the invoice in
``invoice_pdf``, the contract in ``contract_pdf`` from its signed document (``contract_document``),
the amounts in ``amounts``. A draft has no PDF: its terms are not agreed yet.
"""

from portal.contracts.contract_document import TERM_NAMES, contract_document, contract_url
from portal.contracts.contract_pdf import (
    CONTRACT_ATTACHMENT,
    CONTRACT_ATTACHMENT_DESCRIPTION,
    CONTRACT_STATUSES,
    DELIVERY_MODES,
    render_contract,
)
from portal.contracts.invoice_pdf import METHODS, render_invoice
from portal.contracts.letterhead import PLATFORM_EN, PLATFORM_ZH
from portal.core.amounts import amount_in_words, yuan
from portal.pdf.errors import PdfError

__all__ = [
    "CONTRACT_ATTACHMENT",
    "CONTRACT_ATTACHMENT_DESCRIPTION",
    "CONTRACT_STATUSES",
    "DELIVERY_MODES",
    "METHODS",
    "PLATFORM_EN",
    "PLATFORM_ZH",
    "TERM_NAMES",
    "PdfError",
    "amount_in_words",
    "contract_document",
    "contract_url",
    "render_contract",
    "render_invoice",
    "yuan",
]
