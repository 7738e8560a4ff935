"""One error hierarchy: every refusal a package raises is a ``ServiceError`` (code, status, field,
translated message), and one handler turns one that escapes its view into a page or a JSON error,
keeping nothing the request began."""

import importlib
import inspect
import pkgutil

import pytest
from sqlalchemy import func, select

import portal
from portal.buyers.errors import OrganisationError
from portal.buyers.models import Organisation
from portal.core.errors import ServiceError
from portal.extensions import db
from portal.ledger.errors import InsufficientCredits
from portal.pdf.errors import PdfError
from tests import factories

#: Exceptions that never leave their package: each is turned into a ServiceError (or a form's
#: own message) by the code that calls it.
INTERNAL = {
    "portal.catalog.filters.FilterError": "the catalog's query parser; the search turns it into a page",
    "portal.catalog.geometry.BoundaryError": "a boundary file's shape; the operator's form reports it",
    "portal.offsets.factors.FactorSetError": "a broken emission-factor file: a deployment fault",
    "portal.core.jsontext.JsonRefused": "the bounded JSON reader; its callers answer 400 or 413",
    "portal.payments.services.BadSignature": "a webhook's signature: answered 400 with no body",
    "portal.pdf.fonts.FontUnavailable": "no CJK font; drawing turns it into PdfError('no_font')",
    "portal.webhooks.transport.Refused": "an endpoint URL the transport will not call; services raise WebhookError",
    "portal.ledger.serials.SerialError": "a registry serial's format; issuances and statements name it",
}


def _domain_errors():
    for info in pkgutil.walk_packages(portal.__path__, "portal."):
        module = importlib.import_module(info.name)
        for name, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, Exception) and cls.__module__ == module.__name__:
                yield f"{module.__name__}.{name}", cls


def test_every_refusal_a_package_raises_is_a_service_error():
    found = dict(_domain_errors())
    assert "portal.contracts.common.ContractError" in found and "portal.ledger.errors.LedgerError" in found
    outside = sorted(name for name, cls in found.items() if not issubclass(cls, ServiceError))
    assert outside == sorted(INTERNAL)


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (OrganisationError("invalid_uscc", "x"), 400, "invalid_uscc"),
        (InsufficientCredits(available=1, account="inventory", requested=2), 409, "insufficient_quantity"),
        (PdfError("no_font"), 503, "no_font"),
        (PdfError("not_a_pdf"), 400, "not_a_pdf"),
    ],
)
def test_each_carries_a_code_a_status_and_a_message(app, error, status, code):
    assert (error.code, error.status) == (code, status)
    assert isinstance(error.message, str) and error.message
    assert error.field is None or isinstance(error.field, str)


def test_a_refusal_that_escapes_its_view_is_answered_with_its_status_and_nothing_is_kept(app):
    @app.route("/test-refusal", methods=["POST"])
    def refusing():
        factories.steel_and_cement()
        db.session.flush()
        raise OrganisationError("already_registered", "该机构已注册。", status=409)

    before = db.session.scalar(select(func.count(Organisation.id)))
    client = app.test_client()
    page = client.post("/test-refusal")
    assert page.status_code == 409 and "该机构已注册。" in page.get_data(as_text=True)
    api = client.post("/test-refusal", headers={"Accept": "application/json"})
    assert api.status_code == 409
    assert api.get_json() == {"error": {"code": "already_registered", "message": "该机构已注册。"}}
    db.session.remove()
    assert db.session.scalar(select(func.count(Organisation.id))) == before
