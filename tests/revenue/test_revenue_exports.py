"""The revenue statement's downloads, fetched whole as a browser fetches them (each request on its
own, its body read after the request has ended) and read back cell by cell: every line of the
statement, its dates, its amounts, and totals that agree with the statement to the fen."""

import csv
import io
from datetime import UTC, date, datetime
from decimal import Decimal
from itertools import groupby
from types import SimpleNamespace

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from portal.audit.models import AuditEvent
from portal.certificates.models import Certificate, CertificateBlock
from portal.extensions import db
from portal.ledger.models import LedgerEntry
from portal.revenue import services as revenue
from tests import factories
from tests.production import production_client
from tests.revenue.helpers import paid_order, setup_market

OPS = "ops@example.com"
JULY = (date(2026, 7, 1), date(2026, 7, 31))
HEADER = {
    "en": [
        "Paid on",
        "Sale",
        "County",
        "County code",
        "Batch",
        "Amount (yuan)",
        "City share (yuan)",
        "County share (yuan)",
        "Rule in force from",
        "City share (per cent)",
        "County share (per cent)",
    ],
    "zh": [
        "付款日期",
        "销售",
        "旗县区",
        "旗县区代码",
        "批次",
        "金额（元）",
        "市级分成（元）",
        "旗县区分成（元）",
        "适用规则生效日期",
        "市级分成（百分比）",
        "旗县区分成（百分比）",
    ],
}


@pytest.fixture
def july(app):
    """Sales in July in both counties (Aohan and Linxi), one at 23:59 on 31 July in Beijing, one
    partly refunded; and one at 00:30 on 1 August in Beijing (still 31 July in UTC): August's."""
    steel = setup_market()
    factories.user(OPS, role="operator")
    db.session.commit()
    paid_order(steel, 3, when=datetime(2026, 7, 1, 2, 0, tzinfo=UTC))  # Aohan
    big = paid_order(steel, 1000, when=datetime(2026, 7, 10, 8, 0, tzinfo=UTC))  # 997 Aohan, 3 Linxi
    late = paid_order(steel, 50, when=datetime(2026, 7, 31, 15, 59, tzinfo=UTC))  # Linxi, 23:59 Beijing
    revenue.reverse_sale("order", big.public_id, datetime(2026, 7, 20, tzinfo=UTC), refunded_fen=123456)
    august = paid_order(steel, 20, when=datetime(2026, 7, 31, 16, 30, tzinfo=UTC))  # 00:30 on 1 August
    db.session.commit()
    found = revenue.statement(*JULY)
    lines = [
        SimpleNamespace(
            paid_on=line.paid_on,
            sale_ref=line.sale_ref,
            region_id=line.region_id,
            region=SimpleNamespace(
                code=line.region.code, name_zh=line.region.name_zh, name_en=line.region.name_en
            ),
            batch=SimpleNamespace(code=line.batch.code),
            amount_fen=line.amount_fen,
            city_fen=line.city_fen,
            county_fen=line.county_fen,
            rule=SimpleNamespace(
                effective_from=line.rule.effective_from,
                city_pct=line.rule.city_pct,
                county_pct=line.rule.county_pct,
            ),
        )
        for line in found.lines
    ]
    refs = {line.sale_ref for line in lines}
    assert late.public_id in refs and august.public_id not in refs
    assert any(line.amount_fen < 0 for line in lines)
    assert len({line.region_id for line in lines}) == 2
    # The requests run as in production, on connections of their own: this session lets go of
    # the database (SQLite's write lock is taken when a transaction begins).
    db.session.rollback()
    return SimpleNamespace(
        lines=lines, amount_fen=found.amount_fen, city_fen=found.city_fen, county_fen=found.county_fen
    )


def _client(app):
    client = production_client(app)
    assert client.post("/login", data={"email": OPS, "password": factories.PASSWORD}).status_code == 302
    return client


def _yuan(fen: int) -> Decimal:
    return Decimal(fen).scaleb(-2)


def test_the_revenue_csv_downloads_whole_and_adds_up_to_the_statement(july, app):
    response = _client(app).get("/staff/revenue/?period=2026-07&format=csv&lang=en")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"] == "attachment; filename=revenue-all-2026-07.csv"
    text = response.get_data(as_text=True)
    assert text.startswith("\ufeff")  # for Excel and WPS
    header, *rows, total = list(csv.reader(io.StringIO(text[1:])))
    assert header == HEADER["en"]
    assert len(rows) == len(july.lines)
    for row, line in zip(rows, july.lines, strict=True):
        assert row == [
            line.paid_on.isoformat(),
            line.sale_ref,
            line.region.name_en,
            line.region.code,
            line.batch.code,
            f"{_yuan(line.amount_fen):.2f}",
            f"{_yuan(line.city_fen):.2f}",
            f"{_yuan(line.county_fen):.2f}",
            line.rule.effective_from.isoformat(),
            str(line.rule.city_pct),
            str(line.rule.county_pct),
        ]
        assert JULY[0] <= date.fromisoformat(row[0]) <= JULY[1]
        assert Decimal(row[6]) + Decimal(row[7]) == Decimal(row[5])
    assert total[0] == "Total" and total[1:5] == ["", "", "", ""] and total[8:] == ["", "", ""]
    statement = [_yuan(july.amount_fen), _yuan(july.city_fen), _yuan(july.county_fen)]
    assert [Decimal(cell) for cell in total[5:8]] == statement
    assert [sum(Decimal(row[column]) for row in rows) for column in (5, 6, 7)] == statement


def test_every_csv_download_is_read_whole_with_times_in_beijing(july, app):
    """The other downloads (the public register, the ledger journal, the audit log): whole, one
    row per record, and their times ISO 8601 in Beijing time with the offset, as the heading says."""
    client = _client(app)
    register = _csv(client, "/register.csv")
    journal = _csv(client, "/staff/journal.csv")
    audit = _csv(client, "/staff/audit.csv")
    assert register[0][2] == "retired_at_utc+08:00"
    blocks = db.session.scalar(select(func.count()).select_from(CertificateBlock))
    assert len(register) - 1 == blocks > 0
    retired = {c.number: c.retired_at for c in db.session.scalars(select(Certificate))}
    for row in register[1:]:
        assert row[2].endswith("+08:00") and datetime.fromisoformat(row[2]) == retired[row[0]]
    assert journal[0][1] == "time_utc+08:00"
    assert len(journal) - 1 == db.session.scalar(select(func.count()).select_from(LedgerEntry))
    assert audit[0][1] == "time_utc+08:00"
    assert len(audit) - 1 == db.session.scalar(select(func.count()).select_from(AuditEvent))
    for row in journal[1:] + audit[1:]:
        assert row[1].endswith("+08:00") and datetime.fromisoformat(row[1]).tzinfo is not None


def _csv(client, path) -> list[list[str]]:
    response = client.get(path)
    assert response.status_code == 200 and response.mimetype == "text/csv", path
    return list(csv.reader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))


@pytest.mark.parametrize(
    ("lang", "subtotal", "total", "date_format"),
    [("zh", "小计", "合计", 'yyyy"年"m"月"d"日"'), ("en", "Subtotal", "Total", "d mmm yyyy")],
)
def test_the_revenue_xlsx_lists_counties_by_name_with_subtotals_and_a_total(
    july, app, lang, subtotal, total, date_format
):
    response = _client(app).get(f"/staff/revenue/?period=2026-07&format=xlsx&lang={lang}")
    assert response.status_code == 200
    assert response.headers["Content-Disposition"] == "attachment; filename=revenue-all-2026-07.xlsx"
    sheet = load_workbook(io.BytesIO(response.get_data())).active
    rows = list(sheet.iter_rows())
    assert [c.value for c in rows[0]] == HEADER[lang]
    expected = []  # county by county (in the counties' order), each county's subtotal after its lines
    for _region, lines in groupby(
        sorted(july.lines, key=lambda line: line.region_id), lambda line: line.region_id
    ):
        lines = list(lines)
        expected += [("line", line) for line in lines] + [("subtotal", lines)]
    assert len(rows) == 1 + len(expected) + 1
    subtotals = []
    for row, (kind, what) in zip(rows[1:], expected, strict=False):
        region = what.region if kind == "line" else what[0].region
        name = region.name_zh if lang == "zh" else region.name_en
        if kind == "line":
            line = what
            assert row[0].is_date and row[0].value.date() == line.paid_on, "a real date, not text"
            assert row[0].number_format == date_format
            assert [c.value for c in row[1:5]] == [line.sale_ref, name, region.code, line.batch.code]
            fens = [line.amount_fen, line.city_fen, line.county_fen]
            assert row[8].is_date and row[8].value.date() == line.rule.effective_from
            assert [Decimal(str(c.value)) for c in row[9:11]] == [line.rule.city_pct, line.rule.county_pct]
        else:
            assert [c.value for c in row[:5]] == [subtotal, None, name, region.code, None]
            assert all(c.font.bold for c in row[:8])
            fens = [sum(getattr(line, f) for line in what) for f in ("amount_fen", "city_fen", "county_fen")]
            subtotals.append(fens)
        for cell, fen in zip(row[5:8], fens, strict=True):
            assert cell.data_type == "n" and cell.number_format == "#,##0.00"
            assert Decimal(str(cell.value)) * 100 == fen
    last = rows[-1]
    assert [c.value for c in last[:5]] == [total, None, None, None, None]
    grand = [Decimal(str(c.value)) * 100 for c in last[5:8]]
    assert grand == [july.amount_fen, july.city_fen, july.county_fen]
    assert grand == [sum(column) for column in zip(*subtotals, strict=True)]
    assert all(c.data_type != "f" for row in rows for c in row)  # numbers, not formulas
    assert sheet.freeze_panes == "A2"
