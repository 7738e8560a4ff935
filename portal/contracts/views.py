"""Contract screens (placeholder until the web views land)."""

from flask import Blueprint

bp = Blueprint("contracts", __name__, template_folder="templates")


@bp.get("/account/contracts/<number>")
def buyer_contract(number):
    return ""


@bp.get("/account/invoices/<number>")
def buyer_invoice(number):
    return ""
