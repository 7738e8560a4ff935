"""The staff list of every contract invoice: who may open it, its filters, the outstanding amount
by age (invoices on each edge of each bucket), its totals, and the CSV and XLSX downloads read
back whole, cell by cell."""

import csv
import io
import re
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from portal.contracts import services
from portal.contracts.models import Invoice
from portal.extensions import db
from tests import factories
from tests.contracts.helpers import TODAY
from tests.contracts.test_contract_views import CEMENT, EMAILS, STEEL, Desk, sign_in

#: Days past due → the tonnes delivered (each its own invoice, at 70.00 yuan a tonne): an
#: invoice on each side of each bucket's edge, and one due today.
AGES = {0: 7, 30: 1, 31: 2, 60: 3, 61: 4, 90: 5, 91: 6}


class Book(Desk):
    """The desk's two invoices (one of each buyer, neither due yet), and seven more of the steel
    company's, past due by ``AGES``; the first of them half paid, the cement one paid."""

    def __init__(self):
        super().__init__()
        self.steel.name_en = "Test Steel Co."
        self.by_age = {}
        for days, tonnes in AGES.items():
            delivery, _ = services.deliver(self.active, 1, tonnes, actor="t")
            invoice = delivery.invoice
            invoice.due_on = TODAY - timedelta(days=days)
            invoice.issued_on = invoice.due_on - timedelta(days=30)
            self.by_age[days] = invoice
        services.record_payment(self.by_age[30], "35.00", TODAY.isoformat(), "BANK-30", actor="t")
        services.record_payment(
            self.their_invoice, self.their_invoice.amount, TODAY.isoformat(), "BANK-C", actor="t"
        )
        db.session.commit()


@pytest.fixture
def book(app):
    return Book()


def _numbers(page: str) -> list[str]:
    table = page[page.index('id="invoices"') :].split("</table>")[0]
    return re.findall(r'href="/staff/invoices/(INV-[0-9-]+)"', table)


def _block(page: str, id_: str) -> str:
    return page[page.index(f'id="{id_}"') :].split("</div>\n</div>")[0]


# --- the buckets ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "days, bucket",
    [(None, None), (0, (0, 30)), (30, (0, 30)), (31, (31, 60)), (60, (31, 60)), (61, (61, 90))]
    + [(90, (61, 90)), (91, (91, None)), (5000, (91, None))],
)
def test_each_age_falls_in_one_bucket(days, bucket):
    assert services.ageing_bucket(days) == bucket


def test_outstanding_by_age_with_invoices_on_every_edge(book):
    totals = services.invoice_totals(services.invoice_query(today=TODAY), TODAY)
    assert totals.ageing == {
        (0, 30): Decimal("490.00") + Decimal("35.00"),  # due today; 30 days (half paid)
        (31, 60): Decimal("140.00") + Decimal("210.00"),
        (61, 90): Decimal("280.00") + Decimal("350.00"),
        (91, None): Decimal("420.00"),
    }
    assert totals.not_due == book.invoice.amount == Decimal("1400.00")
    assert totals.outstanding == totals.not_due + sum(totals.ageing.values())
    assert totals.count == 9
    assert totals.amount == Decimal("1400.00") + Decimal("700.00") + 28 * Decimal("70.00")
    assert totals.paid == Decimal("35.00") + book.their_invoice.amount
    assert totals.amount == totals.paid + totals.outstanding


def test_the_page_shows_the_buckets_and_totals(book, client):
    sign_in(client, "sales")
    page = client.get("/staff/invoices?lang=en").get_data(as_text=True)
    ageing = _block(page, "ageing")
    shown = dict(re.findall(r"<strong>([^<]+)</strong><span>([^<]+)</span>", ageing))
    assert shown == {
        "CN¥1,400.00": "Not yet due",
        "CN¥525.00": "0–30 days",
        "CN¥350.00": "31–60 days",
        "CN¥630.00": "61–90 days",
        "CN¥420.00": "over 90 days",
    }
    totals = dict(
        (v, k) for k, v in re.findall(r"<strong>([^<]+)</strong><span>([^<]+)</span>", _block(page, "totals"))
    )
    assert totals == {
        "Invoices": "9",
        "Invoiced": "CN¥4,060.00",
        "Paid": "CN¥735.00",
        "Outstanding": "CN¥3,325.00",
    }
    chinese = client.get("/staff/invoices?lang=zh").get_data(as_text=True)
    assert "0–30 天" in chinese and "超过 90 天" in chinese and "尚未到期" in chinese


# --- filters --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query, which",
    [
        ("", lambda b: [b.by_age[d] for d in (91, 90, 61, 60, 31, 30, 0)] + [b.invoice, b.their_invoice]),
        ("status=open", lambda b: [b.by_age[d] for d in (91, 90, 61, 60, 31, 30, 0)] + [b.invoice]),
        ("status=due", lambda b: [b.by_age[0], b.invoice]),
        ("status=overdue", lambda b: [b.by_age[d] for d in (91, 90, 61, 60, 31, 30)]),
        ("status=paid", lambda b: [b.their_invoice]),
        (f"buyer={CEMENT}", lambda b: [b.their_invoice]),
        (f"buyer={STEEL}&status=due", lambda b: [b.by_age[0], b.invoice]),
        ("owner=OTHER", lambda b: [b.their_invoice]),
        ("owner=SALES&status=paid", lambda b: []),
    ],
)
def test_filters(book, client, query, which):
    query = query.replace("OTHER", str(book.other_sales.id)).replace("SALES", str(book.sales.id))
    sign_in(client, "operator")
    page = client.get(f"/staff/invoices?lang=en&{query}").get_data(as_text=True)
    assert _numbers(page) == [i.number for i in which(book)]
    count = re.search(r"<strong>(\d+)</strong><span>Invoices</span>", page)[1]
    assert int(count) == len(which(book))
    if not which(book):
        assert "No invoices match." in page
    # The downloads keep the filters.
    for fmt in ("csv", "xlsx"):
        assert f"format={fmt}" in page
    csv_link = re.search(r'href="([^"]*format=csv[^"]*)"', page)[1].replace("&amp;", "&")
    rows = list(csv.reader(io.StringIO(client.get(csv_link).get_data(as_text=True).lstrip("\ufeff"))))
    assert [r[0] for r in rows[1:-1]] == [i.number for i in which(book)]


def test_filtered_totals_and_buckets(book):
    query = services.invoice_query(today=TODAY, status="overdue", organisation=book.steel)
    totals = services.invoice_totals(query, TODAY)
    assert totals.count == 6 and totals.not_due == 0
    assert totals.ageing[(0, 30)] == Decimal("35.00")  # due today is not overdue
    assert totals.outstanding == Decimal("35.00") + Decimal("350.00") + Decimal("630.00") + Decimal("420.00")
    paid = services.invoice_totals(services.invoice_query(today=TODAY, status="paid"), TODAY)
    assert (paid.count, paid.outstanding, paid.paid) == (1, 0, book.their_invoice.amount)
    assert sum(paid.ageing.values()) == 0


@pytest.mark.parametrize(
    "query",
    ["status=late", "status=%E2%80%AE", "buyer=91350100M000100Y44", "buyer=x", "owner=abc", "owner=999999",
     "owner=BUYER", "owner=99999999999999999999"],
)  # fmt: skip
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_a_filter_not_from_the_lists_is_a_translated_400(book, client, query, lang):
    from portal.buyers import services as buyers

    query = query.replace("BUYER", str(buyers.find_user(EMAILS["buyer"]).id))
    sign_in(client, "sales")
    for fmt in ("", "&format=csv", "&format=xlsx"):
        response = client.get(f"/staff/invoices?lang={lang}&{query}{fmt}")
        assert response.status_code == 400, (query, fmt)
        message = (
            "Choose a status, a buyer and a sales owner from the lists."
            if lang == "en"
            else "请从列表中选择状态、买方和销售负责人。"
        )
        assert message in response.get_data(as_text=True)


# --- who may see it -------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["anonymous", "buyer", "other_buyer", "sales", "operator", "auditor"])
def test_staff_read_it_and_buyers_may_not(book, client, role):
    sign_in(client, role)
    for path in ("/staff/invoices", "/staff/invoices?format=csv", "/staff/invoices?format=xlsx&status=open"):
        response = client.get(path)
        if role == "anonymous":
            assert response.status_code == 302 and "/login" in response.headers["Location"]
        elif role in ("buyer", "other_buyer"):
            assert response.status_code == 403
        else:
            assert response.status_code == 200, (role, path)
    nav = client.get("/?lang=en").get_data(as_text=True)
    assert ('href="/staff/invoices"' in nav) == (role in ("sales", "operator", "auditor"))


def test_the_auditor_reads_the_list_and_changes_nothing(book, client):
    sign_in(client, "auditor")
    page = client.get("/staff/invoices?lang=en").get_data(as_text=True)
    assert 'method="post"' not in page.split("<main")[1]  # the only form is the GET filter
    assert client.get(f"/staff/invoices/{book.invoice.number}").status_code == 200


def test_the_back_office_and_contracts_pages_link_the_list(book, client):
    sign_in(client, "sales")
    assert 'href="/staff/invoices"' in client.get("/staff/").get_data(as_text=True)
    assert 'href="/staff/invoices"' in client.get("/staff/contracts").get_data(as_text=True)


# --- downloads ------------------------------------------------------------------------------------

HEADER = [
    "Invoice",
    "Contract",
    "Buyer organisation",
    "Unified social credit code",
    "Sales owner",
    "Issued on",
    "Due on",
    "Status",
    "Days past due",
    "Age",
    "Tonnes",
    "Amount (yuan)",
    "Paid (yuan)",
    "Outstanding (yuan)",
]
AGE_LABELS = {0: "0–30 days", 30: "0–30 days", 31: "31–60 days", 60: "31–60 days", 61: "61–90 days"}
AGE_LABELS |= {90: "61–90 days", 91: "over 90 days"}


def _expected_rows(book):
    """Every row of the download, as values: dates as dates, amounts as Decimals, None empty."""
    rows = []
    for days in (91, 90, 61, 60, 31, 30, 0):
        i = book.by_age[days]
        rows.append(
            [i.number, book.active.number, "Test Steel Co.", STEEL, EMAILS["sales"], i.issued_on, i.due_on]
            + ["Overdue" if days else "Open", days, AGE_LABELS[days], AGES[days]]
            + [i.amount, i.paid_amount, i.amount - i.paid_amount]
        )
    i = book.invoice
    rows.append(
        [i.number, book.active.number, "Test Steel Co.", STEEL, EMAILS["sales"], i.issued_on, i.due_on]
        + ["Open", None, "not yet due", 20, Decimal("1400.00"), Decimal("0.00"), Decimal("1400.00")]
    )
    i = book.their_invoice
    rows.append(
        [i.number, book.theirs.number, "测试水泥", CEMENT, EMAILS["other_sales"], i.issued_on, i.due_on]
        + ["Paid", None, "", 10, i.amount, i.amount, Decimal("0.00")]
    )
    rows.append(
        ["Total", "", "", "", "", None, None, "", None, "", None]
        + [Decimal("4060.00"), Decimal("735.00"), Decimal("3325.00")]
    )
    return rows


def _as_csv_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def test_the_csv_download_whole_and_every_cell(book, client):
    sign_in(client, "sales")
    response = client.get("/staff/invoices?format=csv&lang=en")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert f"invoices-all-{TODAY.isoformat()}.csv" in response.headers["Content-Disposition"]
    text = response.get_data(as_text=True)
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text[1:])))
    assert rows[0] == HEADER
    assert rows[1:] == [[_as_csv_text(v) for v in row] for row in _expected_rows(book)]
    for row in rows[1:]:  # amounts are plain numbers a spreadsheet adds up
        for cell in row[11:]:
            assert re.fullmatch(r"\d+\.\d\d", cell), cell


def test_the_csv_download_in_chinese_names_the_buyer_in_chinese(book, client):
    sign_in(client, "sales")
    text = client.get("/staff/invoices?format=csv&lang=zh&status=overdue").get_data(as_text=True)
    rows = list(csv.reader(io.StringIO(text[1:])))
    assert rows[0][:3] == ["发票", "合同", "买方机构"]
    assert {r[2] for r in rows[1:-1]} == {"测试钢铁"} and {r[7] for r in rows[1:-1]} == {"逾期"}
    assert rows[-1][0] == "合计"


def test_the_xlsx_download_whole_and_every_cell(book, client):
    from openpyxl import load_workbook

    sign_in(client, "operator")
    response = client.get("/staff/invoices?format=xlsx&lang=en")
    assert response.status_code == 200
    assert response.mimetype == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert f"invoices-all-{TODAY.isoformat()}.xlsx" in response.headers["Content-Disposition"]
    book_ = load_workbook(io.BytesIO(response.get_data()))
    assert book_.sheetnames == ["Invoices"]
    sheet = book_.active
    assert [c.value for c in sheet[1]] == HEADER
    expected = _expected_rows(book)
    assert sheet.max_row == 1 + len(expected) and sheet.max_column == len(HEADER)
    for row, values in zip(sheet.iter_rows(min_row=2), expected, strict=True):
        for cell, value in zip(row, values, strict=True):
            where = (cell.coordinate, value)
            if isinstance(value, date):
                assert cell.is_date and isinstance(cell.value, datetime), where
                assert cell.value.date() == value and cell.number_format == "yyyy-mm-dd", where
            elif isinstance(value, Decimal):
                assert isinstance(cell.value, int | float) and Decimal(str(cell.value)) == value, where
                assert cell.number_format == "0.00", where
            elif isinstance(value, int):
                assert cell.value == value and isinstance(cell.value, int), where
            elif value in (None, ""):
                assert cell.value is None, where
            else:
                assert cell.value == value, where


def test_downloads_neutralise_formulas(book, client):
    from openpyxl import load_workbook

    book.sales.email = "=cmd@portal.cn"
    db.session.commit()
    sign_in(client, "operator")
    text = client.get(f"/staff/invoices?format=csv&owner={book.sales.id}").get_data(as_text=True)
    assert "'=cmd@portal.cn" in text
    sheet = load_workbook(
        io.BytesIO(client.get(f"/staff/invoices?format=xlsx&owner={book.sales.id}").get_data())
    ).active
    assert {sheet.cell(row=r, column=5).value for r in range(2, sheet.max_row)} == {"'=cmd@portal.cn"}


def test_the_list_pages(book, client, monkeypatch):
    from portal.contracts import views_invoices

    monkeypatch.setattr(views_invoices, "INVOICES_PER_PAGE", 4)
    sign_in(client, "sales")
    first = client.get("/staff/invoices?lang=en&status=open").get_data(as_text=True)
    second = client.get("/staff/invoices?lang=en&status=open&page=2").get_data(as_text=True)
    third = client.get("/staff/invoices?lang=en&status=open&page=3").get_data(as_text=True)
    everything = [i.number for i in db.session.scalars(services.invoice_query(today=TODAY, status="open"))]
    assert _numbers(first) + _numbers(second) + _numbers(third) == everything
    assert len(_numbers(first)) == 4 and len(_numbers(second)) == 4 and _numbers(third) == []
    next_page = re.search(r'href="([^"]+)" rel="next"', first)[1].replace("&amp;", "&")
    assert _numbers(client.get(next_page).get_data(as_text=True)) == _numbers(second)  # the filter kept
    assert re.search(r"<strong>(\d+)</strong><span>Invoices</span>", third)[1] == "8"  # totals: all pages
    assert client.get("/staff/invoices?page=x").status_code == 200  # a bad page number is page 1


def test_owners_and_buyers_in_the_filters_are_those_invoiced(book, client):
    factories.user("idle@portal.cn", role="sales")
    db.session.commit()
    sign_in(client, "sales")
    page = client.get("/staff/invoices?lang=en").get_data(as_text=True)
    owners = page[page.index('name="owner"') :].split("</select>")[0]
    assert EMAILS["sales"] in owners and EMAILS["other_sales"] in owners and "idle@portal.cn" not in owners
    assert "(me)" in owners
    buyers_ = page[page.index('name="buyer"') :].split("</select>")[0]
    assert "Test Steel Co." in buyers_ and "测试水泥" in buyers_
    assert db.session.scalar(select(Invoice.id).where(Invoice.organisation_id == book.steel.id)) is not None
