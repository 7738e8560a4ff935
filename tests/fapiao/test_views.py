"""The fapiao and bank-transfer pages: who may open what (another organisation's order, invoice,
request and PDF are 404s; staff pages 403 for buyers), the forms with bad input (a translated
refusal, nothing stored), the seller on orders and invoices, and the whole way from a request to
the buyer's download."""

import hashlib

import pytest
from sqlalchemy import func, select

from portal.audit.models import AuditEvent
from portal.core.seller import seller
from portal.extensions import db
from portal.fapiao import services as fapiao
from portal.fapiao.models import FapiaoRequest
from portal.offsets import services as orders
from portal.offsets.models import Order
from portal.timeutil import beijing_today
from tests.core.test_request_limits import multipart, send
from tests.fapiao.helpers import PDF, STEEL, World, place, sign_in, special_details, tax_details
from tests.visible import visible_text


@pytest.fixture
def world(app):
    return World(app)


def stored():
    return (
        db.session.scalar(select(func.count()).select_from(FapiaoRequest)),
        db.session.scalar(select(func.count()).select_from(AuditEvent)),
    )


def ask_url(world, subject="order"):
    if subject == "order":
        return f"/account/orders/{world.paid.public_id}/fapiao"
    return f"/account/invoices/{world.invoice.number}/fapiao"


# --- asking ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_a_buyer_asks_for_a_fapiao_from_its_paid_order(world, client, lang):
    sign_in(client, "buyer")
    page = visible_text(client.get(f"/orders/{world.paid.public_id}?lang={lang}").get_data(as_text=True))
    assert ("申请发票" if lang == "zh" else "Request a fapiao") in page
    form = client.get(ask_url(world) + f"?lang={lang}")
    assert form.status_code == 200 and STEEL in form.get_data(as_text=True)  # filled with the organisation's
    response = client.post(ask_url(world), data={"kind": "normal", **tax_details()})
    assert response.status_code == 303
    req = db.session.scalar(select(FapiaoRequest))
    assert response.headers["Location"].endswith(f"/fapiao/{req.public_id}")
    shown = visible_text(client.get(f"/fapiao/{req.public_id}?lang={lang}").get_data(as_text=True))
    assert ("已申请" if lang == "zh" else "Requested") in shown and world.paid.public_id in shown


def test_a_special_fapiao_for_a_paid_invoice(world, client):
    sign_in(client, "buyer")
    page = client.get(f"/account/invoices/{world.invoice.number}?lang=en").get_data(as_text=True)
    assert ask_url(world, "invoice") in page
    response = client.post(ask_url(world, "invoice"), data={"kind": "special", **special_details()})
    assert response.status_code == 303
    assert db.session.scalar(select(FapiaoRequest.invoice_id)) == world.invoice.id


@pytest.mark.parametrize(
    ("data", "zh", "en"),
    [
        (tax_details(taxpayer_id="91350100M000100Y44"), "统一社会信用代码", "unified social credit code"),
        ({"kind": "special", **tax_details()}, "注册地址", "Registered address"),
        ({"kind": "zhuanpiao", **tax_details()}, "普票", "general (普票)"),
        (tax_details(title=""), "抬头", "Buyer name"),
    ],
)
def test_bad_requests_are_refused_in_the_buyers_language_and_nothing_is_stored(world, client, data, zh, en):
    sign_in(client, "buyer")
    before = stored()
    data = {"kind": "normal", **data}
    for lang, words in (("zh", zh), ("en", en)):
        response = client.post(ask_url(world) + f"?lang={lang}", data=data)
        assert response.status_code == 400
        assert words in visible_text(response.get_data(as_text=True))
    assert stored() == before


def test_no_request_for_an_unpaid_order(world, client):
    sign_in(client, "buyer")
    url = f"/account/orders/{world.unpaid.public_id}/fapiao"
    assert "付款后" in visible_text(client.get(url).get_data(as_text=True))
    before = stored()
    response = client.post(url + "?lang=en", data={"kind": "normal", **tax_details()})
    assert response.status_code == 409 and "once the order or invoice is paid" in response.get_data(
        as_text=True
    )
    assert stored() == before


# --- forbidden paths ------------------------------------------------------------------------------


def test_another_organisations_order_request_and_pdf_are_not_found(world, client):
    theirs = fapiao.request_fapiao(world.theirs, world.cement, "normal", tax_details(), actor="t")
    fapiao.issue(theirs, "12345678", beijing_today(), PDF, "x.pdf", actor="t")
    db.session.commit()
    before = stored()
    sign_in(client, "buyer")
    for url in (
        f"/account/orders/{world.theirs.public_id}/fapiao",
        f"/fapiao/{theirs.public_id}",
        f"/fapiao/{theirs.public_id}/fapiao.pdf",
        "/account/orders/ord_nothing/fapiao",
        "/account/invoices/INV-0000-000000/fapiao",
        "/fapiao/fp_nothing/fapiao.pdf",
    ):
        assert client.get(url).status_code == 404, url
    assert (
        client.post(
            f"/account/orders/{world.theirs.public_id}/fapiao", data={"kind": "normal", **tax_details()}
        ).status_code
        == 404
    )
    for url in ("/staff/fapiao", "/staff/transfers"):
        assert client.get(url).status_code == 403, url
    for action in ("issue", "reject", "void"):
        assert (
            client.post(f"/staff/fapiao/{theirs.public_id}/{action}", data={"reason": "x"}).status_code == 403
        )
    assert stored() == before


def test_anonymous_visitors_are_sent_to_sign_in_and_staff_may_not_ask(world, client):
    req = fapiao.request_fapiao(world.paid, world.steel, "normal", tax_details(), actor="t")
    db.session.commit()
    for url in (
        ask_url(world),
        f"/fapiao/{req.public_id}",
        f"/fapiao/{req.public_id}/fapiao.pdf",
        "/staff/fapiao",
    ):
        response = client.get(url)
        assert response.status_code == 302 and "/login" in response.headers["Location"], url
    sign_in(client, "sales")
    assert client.get(ask_url(world)).status_code == 403


def test_the_pdf_is_downloadable_only_once_issued(world, client):
    req = fapiao.request_fapiao(world.paid, world.steel, "normal", tax_details(), actor="t")
    db.session.commit()
    sign_in(client, "buyer")
    assert client.get(f"/fapiao/{req.public_id}/fapiao.pdf").status_code == 404


def test_the_auditor_reads_the_requests_but_changes_nothing(world, client):
    req = fapiao.request_fapiao(world.paid, world.steel, "normal", tax_details(), actor="t")
    db.session.commit()
    sign_in(client, "auditor")
    assert client.get("/staff/fapiao").status_code == 200
    assert client.get(f"/fapiao/{req.public_id}").status_code == 200
    before = stored()
    response, _read = upload(client, req.public_id)
    assert response.status_code == 403 and stored() == before


# --- staff ----------------------------------------------------------------------------------------


def upload(client, public_id, pdf=PDF, filename="电子发票.pdf", number="25157000000012345678", lang="en"):
    """POST the issue form as a browser sends it (multipart, raw); the response and whether the
    portal read the whole body."""
    body, content_type = multipart(
        [
            ("fapiao_number", number.encode(), None),
            ("issued_on", beijing_today().isoformat().encode(), None),
            ("pdf", pdf, filename),
        ]
    )
    response, read = send(client, f"/staff/fapiao/{public_id}/issue?lang={lang}", body, content_type)
    return response, read == len(body)


@pytest.mark.parametrize(
    ("change", "status", "en"),
    [
        ({"pdf": b"GIF89a not a pdf"}, 400, "The file is not a PDF."),
        ({"pdf": b"%PDF-1.4" + b" " * (fapiao.MAX_PDF_BYTES + 10) + b"%%EOF"}, 413, "larger than 2 MB"),
        ({"pdf": b"", "filename": ""}, 400, "Attach the e-fapiao"),
        ({"number": "ABC"}, 400, "8 or 20 digits"),
    ],
)
def test_staff_uploads_that_are_not_a_fapiao_are_refused_and_nothing_is_stored(
    world, client, change, status, en
):
    req = fapiao.request_fapiao(world.paid, world.steel, "normal", tax_details(), actor="t")
    db.session.commit()
    sign_in(client, "sales")
    before = stored()
    response, _read = upload(client, req.public_id, **change)
    assert response.status_code == status
    assert en in visible_text(response.get_data(as_text=True))
    db.session.expire_all()
    assert stored() == before and fapiao.find(req.public_id).pdf_sha256 is None


def test_a_body_far_above_the_limit_is_refused_before_it_is_read(world, client):
    req = fapiao.request_fapiao(world.paid, world.steel, "normal", tax_details(), actor="t")
    db.session.commit()
    sign_in(client, "sales")
    response, read_all = upload(client, req.public_id, pdf=b"%PDF-1.4" + b" " * (4 * 1024 * 1024) + b"%%EOF")
    assert response.status_code == 413 and not read_all
    db.session.expire_all()
    assert fapiao.find(req.public_id).status == "requested"


def test_staff_filter_issue_and_the_buyer_downloads(world, client):
    first = fapiao.request_fapiao(world.paid, world.steel, "normal", tax_details(), actor="t")
    other = fapiao.request_fapiao(world.invoice, world.steel, "special", special_details(), actor="t")
    fapiao.reject(other, "账号有误", actor="t")
    db.session.commit()
    sign_in(client, "sales")
    waiting = client.get("/staff/fapiao?lang=en").get_data(as_text=True)
    assert first.public_id in waiting and other.public_id not in waiting
    rejected = client.get("/staff/fapiao?status=rejected").get_data(as_text=True)
    assert other.public_id in rejected and first.public_id not in rejected
    every = client.get("/staff/fapiao?status=all").get_data(as_text=True)
    assert first.public_id in every and other.public_id in every
    assert client.get("/staff/fapiao?status=<script>").status_code == 200  # falls back to waiting
    response, _read = upload(client, first.public_id)
    assert response.status_code == 303
    client.get("/logout")
    sign_in(client, "buyer")
    order_page = client.get(f"/orders/{world.paid.public_id}?lang=en").get_data(as_text=True)
    assert f"/fapiao/{first.public_id}/fapiao.pdf" in order_page
    download = client.get(f"/fapiao/{first.public_id}/fapiao.pdf")
    assert download.status_code == 200 and download.data == PDF
    assert download.mimetype == "application/pdf"
    assert "attachment" in download.headers["Content-Disposition"]
    assert hashlib.sha256(PDF).hexdigest() in client.get(f"/fapiao/{first.public_id}").get_data(as_text=True)
    mine = client.get("/account/fapiao?lang=en").get_data(as_text=True)
    assert first.public_id in mine and other.public_id in mine


# --- the seller and bank transfers ----------------------------------------------------------------


def test_orders_and_invoices_show_the_seller_and_its_account(world, client):
    sign_in(client, "buyer")
    for url in (
        f"/orders/{world.paid.public_id}?lang=en",
        f"/account/invoices/{world.invoice.number}?lang=en",
    ):
        page = visible_text(client.get(url).get_data(as_text=True))
        assert seller().name_zh in page and seller().uscc in page and seller().account_display in page, url


def test_a_buyer_chooses_a_transfer_and_staff_record_it(world, client):
    sign_in(client, "buyer")
    page = client.get(f"/orders/{world.unpaid.public_id}?lang=en").get_data(as_text=True)
    assert "Pay by bank transfer" in page
    response = client.post(f"/orders/{world.unpaid.public_id}/bank-transfer")
    assert response.status_code == 303
    order = db.session.get(Order, world.unpaid.id)
    db.session.refresh(order)
    page = visible_text(client.get(f"/orders/{order.public_id}?lang=en").get_data(as_text=True))
    assert order.transfer_reference in page and seller().account_display in page
    assert "Waiting for your bank transfer" in page
    client.get("/logout")
    sign_in(client, "other_buyer")
    assert client.post(f"/orders/{order.public_id}/bank-transfer").status_code == 404
    client.get("/logout")
    sign_in(client, "auditor")
    assert order.transfer_reference in client.get("/staff/transfers").get_data(as_text=True)
    form = {"amount": "600.00", "received_on": beijing_today().isoformat(), "reference": "ICBC-1"}
    assert client.post(f"/staff/orders/{order.public_id}/transfer", data=form).status_code == 403
    client.get("/logout")
    sign_in(client, "sales")
    wrong = client.post(
        f"/staff/orders/{order.public_id}/transfer?lang=en",
        data={**form, "amount": "599.00"},
        follow_redirects=True,
    )
    assert "a transfer of 599.00 yuan cannot pay it" in visible_text(wrong.get_data(as_text=True))
    db.session.refresh(order)
    assert order.status == "awaiting_payment" and order.transfer_amount is None
    response = client.post(f"/staff/orders/{order.public_id}/transfer", data=form)
    assert response.status_code == 303
    db.session.refresh(order)
    assert order.status == "fulfilled" and order.certificate is not None


def test_the_transfer_is_not_offered_below_the_threshold(world, client, app):
    app.config["BANK_TRANSFER_THRESHOLD"] = "100000"
    small = place(world.steel)
    db.session.commit()
    sign_in(client, "buyer")
    assert "bank-transfer" not in client.get(f"/orders/{small.public_id}").get_data(as_text=True)
    response = client.post(f"/orders/{small.public_id}/bank-transfer?lang=en", follow_redirects=True)
    assert "approved organisations only" in response.get_data(as_text=True)
    db.session.refresh(small)
    assert not small.pays_by_transfer
    assert orders.transfer_offered(small) is False
