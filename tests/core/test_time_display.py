"""Time is shown one way: Beijing time, one format per language, on every page, PDF and e-mail.

Everything here happens at 16:37:39 UTC on 2 December 2026, which is 00:37 on 3 December in
Beijing: a page that took the date in UTC, or printed the stored UTC moment, shows the wrong day.
"""

import io
import pathlib
import re
from datetime import UTC, date, datetime, timedelta

import pytest
from flask_babel import refresh
from pypdf import PdfReader
from sqlalchemy import select

import portal
from portal import timeutil
from portal.certificates import services as certificates
from portal.certificates.models import Certificate
from portal.contracts import services as contracts
from portal.core.i18n import date_text, datetime_text, iso_beijing, with_zone
from portal.core.mail import OutboxMessage
from portal.extensions import db
from tests import clock, factories
from tests.revenue.helpers import paid_order

#: 16:37:39 UTC on 2 December: 00:37:39 on 3 December in Beijing.
MOMENT = datetime(2026, 12, 2, 16, 37, 39, tzinfo=UTC)
DAY = date(2026, 12, 3)
SHOWN_DATE = {"zh": "2026年12月3日", "en": "3 Dec 2026"}
SHOWN_TIME = {"zh": "2026年12月3日 00:37", "en": "3 Dec 2026, 00:37"}
ZONE = {"zh": "北京时间", "en": "Beijing time"}
#: What must not be shown: the moment as stored (ISO 8601, UTC), the day in UTC, the time of day
#: in UTC, and the locale short forms the pages printed before (2026/12/3, 12/3/26).
WRONG = [
    re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d"),
    re.compile(r"2026-12-0[23]"),  # ISO dates, and the UTC day, are for machines (the API, CSV)
    re.compile(r"16:37"),
    re.compile(r"2026/12/\d"),
    re.compile(r"12/[23]/26"),
    re.compile(r"Dec 2, 2026|December 2"),
    re.compile(r"\(UTC\)"),
]
STEEL_BUYER, OPERATOR, SALES = "buyer@steel.cn", "ops@portal.cn", "sales@portal.cn"


class _FrozenDatetime(datetime):
    """``datetime`` whose ``now`` is MOMENT: the portal's one clock (``timeutil.utcnow``) reads it."""

    @classmethod
    def now(cls, tz=None):
        return MOMENT.astimezone(tz) if tz is not None else MOMENT.replace(tzinfo=None)


@pytest.fixture
def at_moment(monkeypatch):
    """The portal's clock stopped at MOMENT (every timestamp it stores, and today in Beijing)."""
    monkeypatch.setattr(timeutil, "datetime", _FrozenDatetime)
    with clock.unshifted():
        assert timeutil.utcnow() == MOMENT and timeutil.beijing_today() == DAY
        yield


class World:
    """An order paid (and so a certificate), an offtake contract signed, delivered and its
    invoice paid by bank transfer: all of it at MOMENT."""

    def __init__(self):
        self.steel, _cement = factories.steel_and_cement()
        buyer = factories.user(STEEL_BUYER, organisation=self.steel, org_admin=True)
        factories.user(OPERATOR, role="operator")
        sales = factories.user(SALES, role="sales")
        forest = factories.project(region_=factories.region("aohan"))
        factories.batch(quantity=1000, code="AH-2021", vintage=2021, project_=forest, price="68.35")
        db.session.commit()
        self.order = paid_order(self.steel, 10, user=buyer)
        self.certificate = db.session.scalar(select(Certificate))
        paid_order(self.steel, 2, user=buyer)
        self.revoked = db.session.scalar(select(Certificate).where(Certificate.id != self.certificate.id))
        certificates.revoke(self.revoked, "重复注销", actor="t")
        self.contract, _ = contracts.create_draft(
            self.steel,
            {
                "title": "钢铁承购",
                "start": (DAY - timedelta(days=10)).isoformat(),
                "end": (DAY + timedelta(days=800)).isoformat(),
                "price_per_t": "70.00",
                "tranches": [
                    {"due": (DAY + timedelta(days=5)).isoformat(), "quantity": 70},
                    {"due": (DAY + timedelta(days=400)).isoformat(), "quantity": 80},
                ],
                "delivery": "holding",
            },
            owner=sales,
            actor="t",
        )
        contracts.sign(self.contract, actor="t")
        delivery, _ = contracts.deliver(self.contract, 1, 60, actor="t")
        self.invoice = delivery.invoice
        contracts.record_payment(self.invoice, self.invoice.amount, DAY.isoformat(), "BANK-1", actor="t")
        db.session.commit()


@pytest.fixture
def world(app, at_moment):
    return World()


def _sign_in(client, email):
    if email:
        response = client.post("/login", data={"email": email, "password": factories.PASSWORD})
        assert response.status_code == 302


def _shown(html: str) -> str:
    """The page as read: non-breaking spaces (which keep a date on one line) read as spaces.
    Left out: form fields' ISO values (``<input type="date">`` takes nothing else), and data
    shown verbatim as data, a certificate's signed JSON (byte for byte what was signed) and the
    audit records' JSON."""
    html = html.replace("\u00a0", " ").replace("&nbsp;", " ")
    html = re.sub(r'<pre class="payload">.*?</pre>|<code class="json">.*?</code>', "", html, flags=re.S)
    return re.sub(r'(value|min|max)="\d{4}-\d\d-\d\d"', "", html)


#: (name, path, who signs in, whether the page shows a time of day)
PAGES = [
    ("certificate", "/certificates/{certificate}", None, True),
    ("revoked certificate", "/certificates/{revoked}", None, True),
    ("register", "/register", None, True),
    ("my certificates", "/account/certificates", STEEL_BUYER, True),
    ("order", "/orders/{order}", STEEL_BUYER, True),
    ("my orders", "/account/orders", STEEL_BUYER, True),
    ("orders (staff)", "/staff/orders", OPERATOR, True),
    ("invoice", "/staff/invoices/{invoice}", OPERATOR, False),
    ("invoice (buyer)", "/account/invoices/{invoice}", STEEL_BUYER, False),
    ("contract", "/staff/contracts/{contract}", OPERATOR, True),
    ("contract (buyer)", "/account/contracts/{contract}", STEEL_BUYER, False),
    ("contract version", "/staff/contracts/{contract}/versions/1", OPERATOR, True),
    ("revenue statement", "/staff/revenue/?period=2026-12", OPERATOR, False),
    ("audit log", "/staff/audit", OPERATOR, True),
    ("ledger journal", "/staff/journal", OPERATOR, True),
]


@pytest.mark.parametrize("lang", ["zh", "en"])
@pytest.mark.parametrize(("name", "path", "who", "timed"), PAGES, ids=[p[0] for p in PAGES])
def test_every_page_shows_beijing_time_one_way(world, client, lang, name, path, who, timed):
    _sign_in(client, who)
    url = path.format(
        certificate=world.certificate.number,
        revoked=world.revoked.number,
        order=world.order.public_id,
        invoice=world.invoice.number,
        contract=world.contract.number,
    )
    response = client.get(f"{url}{'&' if '?' in url else '?'}lang={lang}")
    assert response.status_code == 200, name
    page = _shown(response.get_data(as_text=True))
    assert SHOWN_DATE[lang] in page, name
    if timed:
        assert SHOWN_TIME[lang] in page and ZONE[lang] in page, name
    for wrong in WRONG:
        assert not wrong.search(page), (name, wrong.pattern, wrong.search(page)[0])


def test_the_certificate_pdf_shows_beijing_time(world, client):
    text = _pdf_text(client.get(f"/certificates/{world.certificate.number}.pdf"))
    assert "2026年12月3日 00:37（北京时间）" in text and "3 Dec 2026, 00:37 (Beijing time)" in text
    _nothing_wrong(text)


def test_a_revoked_certificate_says_when_in_beijing_time(world, client):
    page = _shown(client.get(f"/certificates/{world.revoked.number}?lang=en").get_data(as_text=True))
    assert "on 3 Dec 2026, 00:37 (Beijing time)" in page
    text = _pdf_text(client.get(f"/certificates/{world.revoked.number}.pdf"))
    assert "撤销时间 Revoked at: 2026年12月3日 00:37（北京时间）" in text
    _nothing_wrong(text)


def test_the_pdf_check_page_shows_beijing_time(world, client):
    pdf = client.get(f"/certificates/{world.certificate.number}.pdf").get_data()
    response = client.post(
        "/verify?lang=en", data={"pdf": (io.BytesIO(pdf), "c.pdf")}, content_type="multipart/form-data"
    )
    assert response.status_code == 200
    page = _shown(response.get_data(as_text=True))
    assert "Genuine and valid" in page and "3 Dec 2026, 00:37 (Beijing time)" in page
    _nothing_wrong(page)


def test_the_invoice_pdf_shows_beijing_days(world, client):
    _sign_in(client, STEEL_BUYER)
    text = _pdf_text(client.get(f"/invoices/{world.invoice.number}.pdf"))
    # Issued, delivered and paid on 3 December in Beijing (it was still 2 December in UTC).
    assert text.count("2026年12月3日") >= 3 and text.count("3 Dec 2026") >= 3
    assert "本发票已于 2026年12月3日 付清" in text and "paid in full on 3 Dec 2026" in text
    _nothing_wrong(text)


def _pdf_text(response) -> str:
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    reader = PdfReader(io.BytesIO(response.get_data()))
    return "\n".join(page.extract_text() for page in reader.pages)


def _nothing_wrong(text: str) -> None:
    for wrong in WRONG:
        assert not wrong.search(text), (wrong.pattern, wrong.search(text)[0])


def test_the_receipt_e_mail_says_when_in_beijing_time(world):
    (body,) = db.session.scalars(
        select(OutboxMessage.body).where(OutboxMessage.subject.contains(world.certificate.number))
    )
    assert "付款时间：2026年12月3日 00:37（北京时间）" in body
    _nothing_wrong(body)


def test_an_invoice_e_mail_sent_from_an_english_page_writes_its_due_date_as_pages_do(world, app):
    """Mail is in the recipient's language (Chinese: users keep no preference), whatever the
    sender reads; its date is written as the pages write it."""
    with app.test_request_context("/?lang=en"):
        refresh()  # the locale cached while the world was made (in Chinese) is forgotten
        delivery, _ = contracts.deliver(world.contract, 1, 10, actor="t")
    body = db.session.scalars(
        select(OutboxMessage.body).where(OutboxMessage.body.contains(delivery.invoice.number))
    ).first()
    assert date_text(delivery.invoice.due_on, "zh") in body
    assert delivery.invoice.due_on.isoformat() not in body


# --- the formats themselves -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "zh", "en"),
    [
        (MOMENT, "2026年12月3日 00:37（北京时间）", "3 Dec 2026, 00:37 (Beijing time)"),
        ("2026-12-02T16:37:39Z", "2026年12月3日 00:37（北京时间）", "3 Dec 2026, 00:37 (Beijing time)"),
        (
            datetime(2026, 12, 31, 15, 59, tzinfo=UTC),
            "2026年12月31日 23:59（北京时间）",
            "31 Dec 2026, 23:59 (Beijing time)",
        ),
        (
            datetime(2026, 12, 31, 16, 0, tzinfo=UTC),
            "2027年1月1日 00:00（北京时间）",
            "1 Jan 2027, 00:00 (Beijing time)",
        ),
    ],
)
def test_a_moment_is_shown_in_beijing_time(value, zh, en):
    assert datetime_text(value, "zh") == zh and datetime_text(value, "en") == en


def test_a_date_is_a_beijing_day_already_and_a_moment_gives_its_beijing_day():
    assert (
        date_text(date(2026, 9, 1), "zh") == "2026年9月1日"
        and date_text(date(2026, 9, 1), "en") == "1 Sep 2026"
    )
    assert date_text(MOMENT, "en") == "3 Dec 2026" and date_text("2026-12-02", "en") == "2 Dec 2026"
    assert datetime_text(MOMENT, "en", zone=False) == "3 Dec 2026, 00:37"
    assert with_zone("Time", "en") == "Time (Beijing time)" and with_zone("时间", "zh") == "时间（北京时间）"
    assert date_text(None) == "—"


def test_files_for_machines_carry_iso_8601_with_the_offset():
    assert iso_beijing(MOMENT) == "2026-12-03T00:37:39+08:00"
    assert datetime.fromisoformat(iso_beijing(MOMENT)) == MOMENT
    assert iso_beijing(DAY) == "2026-12-03"


def test_a_moment_without_a_zone_is_refused():
    with pytest.raises(ValueError):
        datetime_text(datetime(2026, 12, 2, 16, 37))


def test_babels_own_date_filters_are_gone(app):
    for name in ("dateformat", "datetimeformat", "timeformat"):
        assert name not in app.jinja_env.filters


def test_no_module_but_core_i18n_formats_dates_its_own_way():
    """Babel's date functions write ``Dec 8, 2026`` or ``12/8/26``: only ``core/i18n`` may call
    them, so a confirmation page, a fact list or a readable change prints dates as pages do."""
    root = pathlib.Path(portal.__file__).parent
    pattern = re.compile(r"\b(format_date|format_datetime|format_time|format_skeleton)\b")
    offenders = [
        str(path.relative_to(root))
        for path in root.rglob("*.py")
        if path != root / "core" / "i18n.py" and pattern.search(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []
