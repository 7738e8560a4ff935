import io
import json
import zlib
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from portal.buyers import services as buyers
from portal.certificates import pdf
from portal.extensions import db
from portal.ledger.verify import verify_ledger
from portal.offsets import services as orders
from portal.offsets.models import Order
from portal.payments import services as payments
from portal.timeutil import utcnow
from tests import factories

STEEL = factories.STEEL_USCC


def _minimal_pdf_with_attachment(content: bytes) -> bytes:
    from pypdf import PdfWriter
    w = PdfWriter()
    w.add_blank_page(100, 100)
    w.add_attachment("certificate.json", content)
    out = io.BytesIO()
    w.write(out)
    return out.getvalue()


def test_pdf_deep_json_is_500(app, client):
    data = _minimal_pdf_with_attachment(b"[" * 200000)
    with pytest.raises(pdf.PdfError):
        pdf.extract(data)


def test_pdf_deep_json_route(app, client):
    data = _minimal_pdf_with_attachment(b"[" * 200000)
    r = client.post("/verify", data={"pdf": (io.BytesIO(data), "x.pdf")}, content_type="multipart/form-data")
    assert r.status_code == 400, r.status_code


def _fake_intent(order, amount=None):
    return {"id": order.payment_intent_id, "amount": amount if amount is not None else payments.to_fen(order.amount),
            "currency": "cny", "metadata": {"portal_order": order.public_id}}


def test_late_compliance_payment_filled_with_vcs(app):
    steel, cement = factories.steel_and_cement()
    factories.batch(quantity=10, code="CCER-2021", vintage=2021, price="60.00")
    vcsp = factories.project(standard="VCS", type="grassland", methodology="VM0032")
    factories.batch(quantity=100, code="VCS-2022", vintage=2022, project_=vcsp, price="60.00")
    db.session.commit()
    order, _ = orders.create_order(steel, 10, beneficiary="x", purpose="compliance", actor="t")
    order.payment_intent_id = "pi_review1"
    db.session.commit()
    assert {l.batch.code for l in order.lines} == {"CCER-2021"}
    orders.expire_due(now=utcnow() + timedelta(minutes=31))
    db.session.commit()
    # somebody else buys the CCER tonnes
    orders.create_order(cement, 10, beneficiary="y", purpose="compliance", actor="t")
    db.session.commit()
    outcome = orders.payment_succeeded(_fake_intent(order))
    db.session.commit()
    o = db.session.get(Order, order.id)
    print(outcome, o.status, [(b.batch.code, b.batch.project.standard) for b in o.certificate.blocks] if o.certificate else None)
    assert not (o.status == "fulfilled" and any(b.batch.project.standard != "CCER" for b in o.certificate.blocks)), \
        "compliance certificate issued with VCS credits"


def test_late_payment_reprice_changes_amount(app, monkeypatch):
    steel, cement = factories.steel_and_cement()
    factories.batch(quantity=2, code="A-2021", vintage=2021, price="10.00")
    factories.batch(quantity=100, code="B-2022", vintage=2022, price="10.01")
    db.session.commit()
    order, _ = orders.create_order(steel, 3, beneficiary="x", purpose="voluntary", actor="t")
    order.payment_intent_id = "pi_review2"
    db.session.commit()
    paid = order.amount
    assert paid == Decimal("30.01")
    orders.expire_due(now=utcnow() + timedelta(minutes=31))
    db.session.commit()
    orders.create_order(cement, 2, beneficiary="y", purpose="voluntary", actor="t", batch_code="A-2021")
    db.session.commit()
    monkeypatch.setattr(orders, "_tell_staff", lambda *a, **k: None)
    outcome = orders.payment_succeeded(_fake_intent(order, 3001))
    db.session.commit()
    o = db.session.get(Order, order.id)
    print(outcome, o.status, o.amount, [(l.batch.code, l.quantity, l.unit_price, l.amount) for l in o.lines])
    assert o.amount == paid, f"order records {o.amount} but buyer paid {paid}"


def test_staff_cancelled_order_still_fulfilled_on_payment(app, monkeypatch):
    steel, cement = factories.steel_and_cement()
    factories.batch(quantity=100, code="A-2021", vintage=2021, price="10.00")
    db.session.commit()
    order, _ = orders.create_order(steel, 3, beneficiary="x", purpose="voluntary", actor="t")
    order.payment_intent_id = "pi_review3"
    db.session.commit()
    cancelled_intents = []
    monkeypatch.setattr(payments, "retrieve", lambda i: payments.Intent(i, "", "requires_payment_method", 3000, "cny"))
    monkeypatch.setattr(payments, "cancel", lambda i: cancelled_intents.append(i) or True)
    monkeypatch.setattr(orders, "_tell_staff", lambda *a, **k: None)
    orders.refund(order, actor="user:1")
    db.session.commit()
    assert db.session.get(Order, order.id).status == "cancelled"
    outcome = orders.payment_succeeded(_fake_intent(order))
    db.session.commit()
    print("cancel called for", cancelled_intents, "outcome", outcome)
    assert db.session.get(Order, order.id).status != "fulfilled", "staff-cancelled order fulfilled by later payment"


def _apikey(app, *args):
    result = app.test_cli_runner().invoke(args=["apikeys", "create", *args])
    assert result.exit_code == 0, result.output
    return result.output.strip()


@pytest.mark.postgres
def test_same_idempotency_key_concurrently_on_pg(pg_app):
    import threading
    from concurrent.futures import ThreadPoolExecutor
    steel, _ = factories.steel_and_cement()
    factories.batch(quantity=1000, code="A-2021", vintage=2021)
    db.session.commit()
    key = _apikey(pg_app, "--org", STEEL)
    pg_app.config["STRIPE_SECRET_KEY"] = ""
    n = 6
    barrier = threading.Barrier(n)

    def worker(i):
        c = pg_app.test_client()
        barrier.wait(timeout=30)
        r = c.post("/api/v1/orders", json={"quantity": 5, "beneficiary": "b"},
                   headers={"Authorization": f"Bearer {key}", "Idempotency-Key": "same-key"})
        return r.status_code

    with ThreadPoolExecutor(n) as pool:
        codes = list(pool.map(worker, range(n)))
    print("status codes", codes)
    assert 500 not in codes


@pytest.mark.postgres
def test_same_idempotency_key_retirements_concurrently_on_pg(pg_app):
    import threading
    from concurrent.futures import ThreadPoolExecutor
    steel, _ = factories.steel_and_cement()
    factories.batch(quantity=1000, code="A-2021", vintage=2021)
    buyers.deliver_from_inventory(steel, 100, batch_codes=["A-2021"])
    db.session.commit()
    key = _apikey(pg_app, "--org", STEEL)
    n = 6
    barrier = threading.Barrier(n)

    def worker(i):
        c = pg_app.test_client()
        barrier.wait(timeout=30)
        r = c.post("/api/v1/retirements", json={"quantity": 5, "beneficiary": "b", "purpose": "voluntary"},
                   headers={"Authorization": f"Bearer {key}", "Idempotency-Key": "same-key"})
        return r.status_code

    with ThreadPoolExecutor(n) as pool:
        codes = list(pool.map(worker, range(n)))
    print("retire status codes", codes)
    from portal.certificates.models import Certificate
    from sqlalchemy import func
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(Certificate)) == 1
    assert 500 not in codes


def test_big_webhook_body_read_entirely(app, client):
    app.config["STRIPE_WEBHOOK_SECRET"] = "whsec_x"
    print("MAX_CONTENT_LENGTH", app.config.get("MAX_CONTENT_LENGTH"))
    r = client.post("/stripe/webhook", data=b"x" * (50 * 1024 * 1024), headers={"Stripe-Signature": "t=1,v1=00"})
    print("status", r.status_code)
    assert r.status_code == 413


def test_pdf_render_extremes(app):
    from portal.certificates import services
    steel, _ = factories.steel_and_cement()
    factories.batch(quantity=1000, code="A-2021", vintage=2021)
    buyers.deliver_from_inventory(steel, 100, batch_codes=["A-2021"])
    db.session.commit()
    cert, _ = services.retire_from_holding(steel, 5, beneficiary="W" * 200, purpose="voluntary",
                                           purpose_detail="﷽" * 300, actor="t")
    db.session.commit()
    data = pdf.render(payload=cert.payload, signature=cert.signature, key_id=cert.key_id,
                      verify_url="http://x/" + cert.number, status="revoked", revoked_reason="R" * 500,
                      revoked_at="2026-01-01T00:00:00")
    assert data.startswith(b"%PDF")
    assert pdf.extract(data).payload == cert.payload
