"""Contract and invoice documents, for staff and for the buyer alike: the PDFs, and the
contract address printed on them, which leads each reader to its own page."""

from flask import Response, abort, redirect, url_for
from flask_login import current_user

from portal.access import may, page
from portal.contracts import services
from portal.contracts.models import Contract
from portal.contracts.views_shared import _invoice_or_404, bp


def _may_see(contract: Contract) -> bool:
    """Staff see every contract; a buyer its own organisation's, once signed (``portal.access``)."""
    return may(current_user, "view", contract)


@bp.get("/invoices/<number>.pdf")
@page("contracts.read_own", "contracts.read_all")
def invoice_pdf(number):
    invoice = _invoice_or_404(number)
    if not _may_see(invoice.contract):
        abort(404)
    from portal.contracts import pdf  # written alongside these views

    return _pdf_response(pdf.render_invoice, invoice)


def _seen_contract_or_404(number) -> Contract:
    """The contract if the signed-in user may see it; 404 for anything else, as on the buyer's
    pages, so that contract numbers cannot be probed."""
    contract = services.find(number)
    if contract is None or not _may_see(contract):
        abort(404)
    return contract


@bp.get("/contracts/<number>")
@page("contracts.read_own", "contracts.read_all")
def contract_page(number):
    """The address printed on a contract's PDF: the staff's page or the buyer's, by who follows it."""
    contract = _seen_contract_or_404(number)
    own_page = (
        "contracts.staff_contract" if may(current_user, "contracts.read_all") else "contracts.buyer_contract"
    )
    return redirect(url_for(own_page, number=contract.number))


@bp.get("/contracts/<number>.pdf")
@page("contracts.read_own", "contracts.read_all")
def contract_pdf(number):
    """A signed contract's document. A draft has none: its terms are not agreed yet."""
    contract = _seen_contract_or_404(number)
    if contract.signed_at is None:
        abort(404)
    from portal.contracts import pdf

    return _pdf_response(pdf.render_contract, contract)


def _pdf_response(render, document) -> Response:
    """``render(document)`` shown inline as ``<number>.pdf``; 503 when it cannot be drawn (no font)."""
    from portal.contracts import pdf

    try:
        data = render(document)
    except pdf.PdfError as exc:
        abort(503, exc.message)
    return Response(
        data,
        mimetype="application/pdf",
        headers={"Content-Disposition": f'inline; filename="{document.number}.pdf"'},
    )
