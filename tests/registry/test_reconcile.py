"""Registry statements: read strictly (every refusal names the line or the reason and changes
nothing), reconciled by serial range, and serials the registry does not show withheld from sale
until staff resolve the difference."""

import io
import itertools

import pytest
from flask_babel import force_locale
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from portal.audit.models import AuditEvent
from portal.buyers import services as buyers
from portal.certificates import services as certificates
from portal.extensions import db
from portal.ledger import services as ledger
from portal.ledger.errors import LedgerError
from portal.ledger.models import Account, AccountKind, LedgerEntry
from portal.ledger.verify import verify_ledger
from portal.offsets import services as orders
from portal.registry import instructions, reconcile
from portal.registry.models import RegistryInstruction, RegistryStatement, Withholding
from portal.timeutil import beijing_today
from tests import factories
from tests.concurrency import race
from tests.registry.conftest import numbered

PREFIX = "CN-CCER-14-2024001-2021-"
HEADER = "serial_start,serial_end,quantity,status\n"


def s(unit: int) -> str:
    return f"{PREFIX}{unit:09d}"


def row(first: int, last: int, status="active") -> str:
    return f"{s(first)},{s(last)},{last - first + 1},{status}\n"


def inventory() -> int:
    return ledger.balance(ledger.system_account(AccountKind.INVENTORY))


def world():
    """A 100 t CCER batch, registry units 1001–1100: serials 1–10 retired (instruction
    pending), 11–20 retired (confirmed), 21–30 in steel's holding, 31–100 for sale."""
    steel, _cement = factories.steel_and_cement()
    batch = numbered(
        factories.batch(quantity=100, code="CCER-A-2021", vintage=2021),
        series=PREFIX.rstrip("-"),
        first=1001,
        start=s(1001),
        end=s(1100),
    )
    buyers.deliver_from_inventory(steel, 30, batch_codes=[batch.code])
    certificates.retire_from_holding(steel, 10, beneficiary="甲", purpose="voluntary", actor="t")
    second, _ = certificates.retire_from_holding(steel, 10, beneficiary="乙", purpose="voluntary", actor="t")
    (instruction,) = db.session.scalars(
        select(RegistryInstruction).where(RegistryInstruction.certificate_id == second.id)
    )
    instructions.confirm(
        instruction,
        reference="ZX-1",
        registry_date=beijing_today(),
        serial_start=s(1011),
        serial_end=s(1020),
        actor="t",
    )
    factories.user("operator@portal.cn", role="operator")
    db.session.commit()
    return steel, batch


EVERY_KIND = (
    HEADER
    + row(1001, 1030)  # retired 1–20 here (10 pending, 10 confirmed), 21–30 held: all shown active
    # 1031–1040 not shown at all: for sale here
    + row(1041, 1050, "retired")  # retired there, for sale here
    + row(1051, 1100)
    + row(5000, 5009)  # no portal batch numbers these
)


def import_(data: str | bytes, registry="ccer", account="赤峰农投-CCER-001"):
    report = reconcile.import_statement(
        data.encode() if isinstance(data, str) else data,
        registry=registry,
        account=account,
        filename="statement.csv",
        actor="t",
    )
    db.session.commit()
    return report


def test_each_kind_of_difference_is_reported_and_sellable_ones_withheld(app):
    steel, batch = world()
    assert inventory() == 70
    report = import_(EVERY_KIND)
    found = {
        (d.kind, d.serial_start, d.serial_end, d.unit_first, d.unit_last, d.withheld)
        for d in report.differences
    }
    assert found == {
        (
            "retired_here_active_there",
            11,
            20,
            1011,
            1020,
            False,
        ),  # 1–10: the pending instruction, not a difference
        ("portal_only", 31, 40, 1031, 1040, True),
        ("retired_there_live_here", 41, 50, 1041, 1050, True),
        ("registry_only", None, None, 5000, 5009, False),
    }
    assert report.withheld == 20 and inventory() == 50
    assert ledger.balance(ledger.system_account(AccountKind.WITHHELD)) == 20
    assert verify_ledger().ok
    actions = db.session.scalars(select(AuditEvent.action)).all()
    assert actions.count("registry.withhold") == 2 and "registry.statement" in actions

    # Withheld serials cannot be sold: the catalog, checkout and offline delivery all skip them.
    assert factories_available(batch.code) == 50
    with pytest.raises(LedgerError):
        buyers.deliver_from_inventory(steel, 51)
    db.session.rollback()
    order, _ = orders.create_order(steel, 50, beneficiary="甲", purpose="voluntary", actor="t")
    db.session.commit()
    held = ledger.find_account(AccountKind.HOLD, order.hold_ref)
    taken = [(b.serial_start, b.serial_end) for b in ledger.blocks_of(held)]
    assert taken == [(51, 100)]
    assert verify_ledger().ok


def factories_available(code: str) -> int:
    from portal.catalog import services as catalog

    return catalog.find_batch(code).available


def test_resolving_withheld_serials_releases_or_cancels_them(app):
    world()
    import_(EVERY_KIND)
    missing, retired_there = sorted(db.session.scalars(select(Withholding)), key=lambda w: w.serial_start)
    with pytest.raises(instructions.RegistryError):
        reconcile.resolve(missing, outcome="released", note=" ", actor="t")
    reconcile.resolve(missing, outcome="released", note="登记系统账户中有这批序号，是导出遗漏", actor="t")
    reconcile.resolve(retired_there, outcome="cancelled", note="登记系统已注销，核销", actor="t")
    db.session.commit()
    assert inventory() == 60
    assert ledger.balance(ledger.system_account(AccountKind.CANCELLED)) == 10
    with pytest.raises(instructions.RegistryError) as again:
        reconcile.resolve(missing, outcome="cancelled", note="x", actor="t")
    assert again.value.code == "already_resolved"
    assert db.session.scalars(select(AuditEvent.action)).all().count("registry.resolve") == 2
    assert verify_ledger().ok
    # Reconciling again: the released serials are reported once more (the registry still lacks
    # them in this statement) and withheld again; the cancelled ones are no longer a difference.
    report = reconcile.reconcile(db.session.scalar(select(RegistryStatement)))
    assert {d.kind for d in report.differences} == {
        "portal_only",
        "retired_here_active_there",
        "registry_only",
    }


def test_verra_public_export_columns_are_read(app):
    steel, _ = factories.steel_and_cement()
    project = factories.project(standard="VCS", type="grassland", methodology="VM0032")
    block = "19309-{}-{}-VCS-VCU-1491-VER-CN-14-4150-01012022-31122022-0"
    numbered(
        factories.batch(quantity=100, code="VCS-B-2022", vintage=2022, project_=project),
        series="VCS-VCU",
        first=936487601,
        start=block.format(936487601, 936487700),
    )
    db.session.commit()
    export = (
        "Issuance Date,Vintage Start,Vintage End,ID,Name,Country/Area,Project Type,Methodology,"
        "Total Vintage Quantity,Quantity Issued,Serial Number,Additional Certifications,"
        "Retirement/Cancellation Date,Retirement Beneficiary,Retirement Reason,Retirement Details\n"
        f"01/03/2023,01/01/2022,31/12/2022,4150,Chifeng grassland,China,AFOLU,VM0032,100,90,"
        f"{block.format(936487601, 936487690)},,,,,\n"
        f"01/03/2023,01/01/2022,31/12/2022,4150,Chifeng grassland,China,AFOLU,VM0032,100,10,"
        f'{block.format(936487691, 936487700)},,15/06/2024,"Steel, Ltd.",Cancellation by registry,\n'
    )
    report = import_(export, registry="verra", account="Verra 12345")
    assert report.statement.format == "verra"
    assert {(d.kind, d.serial_start, d.serial_end) for d in report.differences} == {
        ("retired_there_live_here", 91, 100)
    }
    assert inventory() == 90
    with pytest.raises(instructions.RegistryError) as wrong:
        import_(export, registry="ccer")
    assert wrong.value.code == "statement_registry"


def _gbk() -> bytes:
    return (HEADER + row(1001, 1100)).replace("active", "持有").encode("gbk")


@pytest.mark.parametrize(
    ("data", "code", "english"),
    [
        (
            "account,first,last\n" + s(1001) + "," + s(1100) + "\n",
            "statement_columns",
            "Line 1 must name the columns",
        ),
        (
            HEADER + row(1001, 1060) + row(1050, 1100),
            "statement_overlap",
            "Lines 2 and 3 overlap: serials 1050 to 1060",
        ),
        (
            HEADER + row(1001, 1050) + f"{s(1100)},{s(1051)},50,active\n",
            "statement_serial",
            "Line 3: the range is reversed",
        ),
        (HEADER + f"{PREFIX}00000100X,{s(1100)},,active\n", "statement_serial", "Line 2:"),
        (
            HEADER + f"{s(1001)},{s(1100)},99,active\n",
            "statement_quantity",
            "Line 2: the quantity 99 does not equal the 100",
        ),
        (
            HEADER + f"{s(1001)},{s(1100)},100,sold\n",
            "statement_status",
            "Line 2: the status must be active, retired or cancelled",
        ),
        (HEADER + f'"{s(1001)},{s(1100)},100,active\n', "statement_row", "not valid CSV"),
        (HEADER, "statement_empty", "names no serial blocks"),
        ("", "statement_empty", "The statement is empty"),
        (_gbk(), "statement_encoding", "Line 2 is not UTF-8 text"),
        (
            HEADER + "".join(row(10_000 + i, 10_000 + i) for i in range(100_000)),
            "statement_too_large",
            "larger than 2 MB",
        ),
        (
            HEADER + "CN-1,CN-1,,active\n" * 100_000,
            "statement_too_many_rows",
            "has 100000 rows; at most 20000",
        ),
        (b"\x00\x01" * 100, "statement_binary", "not a CSV text file"),
    ],
)
def test_malformed_statements_are_refused_naming_the_line_and_change_nothing(app, data, code, english):
    world()
    entries = db.session.scalar(select(func.count()).select_from(LedgerEntry))
    with force_locale("en"), pytest.raises(instructions.RegistryError) as refused:
        import_(data)
    assert refused.value.code == code and english in refused.value.message, refused.value.message
    db.session.rollback()
    with pytest.raises(instructions.RegistryError) as in_chinese:  # the default language
        import_(data)
    assert in_chinese.value.code == code and in_chinese.value.message != refused.value.message
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(RegistryStatement)) == 0
    assert db.session.scalar(select(func.count()).select_from(LedgerEntry)) == entries
    assert inventory() == 70


@pytest.mark.parametrize(
    ("account", "filename", "code"),
    [
        ("\u202eA-1", "ok.csv", "invalid_account"),
        ("A-1", "\u202evsc.exe", "invalid_file"),
        ("A-1", "s\x07.csv", "invalid_file"),
    ],
)
def test_an_account_or_file_name_with_hidden_characters_is_refused(app, account, filename, code):
    world()
    with pytest.raises(instructions.RegistryError) as refused:
        reconcile.import_statement(
            EVERY_KIND.encode(), registry="ccer", account=account, filename=filename, actor="t"
        )
    assert refused.value.code == code and refused.value.message
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(RegistryStatement)) == 0


def test_a_nul_in_an_uploaded_files_name_is_a_400(client, app):
    """PostgreSQL cannot store it: the statement's insert failed with a 500."""
    world()
    client.post("/login", data={"email": "operator@portal.cn", "password": factories.PASSWORD})
    response = client.post(
        "/staff/registry/statements",
        data={"registry": "ccer", "account": "A-1", "file": (io.BytesIO(EVERY_KIND.encode()), "s\x00.csv")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 400
    assert db.session.scalar(select(func.count()).select_from(RegistryStatement)) == 0


def test_the_upload_page_shows_a_translated_error_and_the_report(client, app):
    world()
    client.post("/login", data={"email": "operator@portal.cn", "password": factories.PASSWORD})
    for lang, expected in (("en", "Line 2 is not UTF-8 text"), ("zh", "第 2 行")):
        response = client.post(
            f"/staff/registry/statements?lang={lang}",
            data={"registry": "ccer", "account": "A-1", "file": (io.BytesIO(_gbk()), "gbk.csv")},
            content_type="multipart/form-data",
        )
        assert response.status_code == 400 and expected in response.get_data(as_text=True)
    response = client.post(
        "/staff/registry/statements",
        data={"registry": "ccer", "account": "A-1", "file": (io.BytesIO(EVERY_KIND.encode()), "ok.csv")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 303
    report = client.get(response.headers["Location"] + "?lang=en").get_data(as_text=True)
    for label in (
        "In the portal but not in the registry",
        "In the registry but not in the portal",
        "Retired in the portal but active in the registry",
        "Retired or cancelled in the registry but not here",
        "Withheld (registry difference)",  # where the withheld serials are now
    ):
        assert label in report
    assert client.get("/staff/registry/statements/1/report.csv").get_data(as_text=True).count("\n") == 5
    too_big = client.post(  # refused by its length, unread
        "/staff/registry/statements",
        data=b"x" * (3 * 1024 * 1024),
        content_type="multipart/form-data; boundary=b",
    )
    assert too_big.status_code == 413


def test_the_cli_imports_and_reconciles(app, tmp_path):
    world()
    path = tmp_path / "statement.csv"
    path.write_text(EVERY_KIND, encoding="utf-8")
    runner = app.test_cli_runner()
    imported = runner.invoke(
        args=["registry", "import-statement", str(path), "--registry", "ccer", "--account", "A-1"]
    )
    assert imported.exit_code == 0, imported.output
    assert (
        "portal_only: 10 t in 1 range(s)" in imported.output
        and "withheld from sale now: 20 t" in imported.output
    )
    again = runner.invoke(args=["registry", "reconcile"])
    assert again.exit_code == 1 and "registry_only: 10 t" in again.output
    path.write_bytes(_gbk())
    bad = runner.invoke(
        args=["registry", "import-statement", str(path), "--registry", "ccer", "--account", "A-1"]
    )
    assert bad.exit_code != 0 and "UTF-8" in bad.output


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(1, 100), st.integers(0, 30)), min_size=1, max_size=6))
def test_withholding_and_releasing_any_ranges_keeps_the_ledger_whole(app, pieces):
    """Whatever ranges a statement leaves out, withholding moves exactly those for sale, the
    ledger verifies, and releasing them all restores the inventory."""
    n = next(_examples)
    batch_code = f"PROP-{n}"
    first = 10_000_000 + n * 1000
    series = f"CN-CCER-{n}-2021"
    batch = numbered(
        factories.batch(quantity=100, code=batch_code, vintage=2021),
        series=series,
        first=first,
        start=f"{series}-{first:09d}",
    )
    missing = set()
    for start, length in pieces:
        missing |= set(range(start, min(start + length, 100) + 1))
    shown = [n for n in range(1, 101) if n not in missing]
    runs, start = [], None
    for n in shown:
        if start is None:
            start = previous = n
        elif n == previous + 1:
            previous = n
        else:
            runs.append((start, previous))
            start = previous = n
    if start is not None:
        runs.append((start, previous))
    text = "serial_start,serial_end,status\n" + "".join(
        f"{series}-{first + a - 1:09d},{series}-{first + b - 1:09d},active\n" for a, b in runs
    )
    if not runs:
        text += f"{series}-000000001,{series}-000000001,active\n"
    report = import_(text)  # earlier examples' batches are absent from it: withheld too
    mine = [d for d in report.differences if d.batch_code == batch_code]
    assert sum(d.quantity for d in mine) == len(missing)
    assert all(d.withheld and d.kind == "portal_only" for d in mine)
    assert for_sale(batch) == 100 - len(missing)
    assert verify_ledger().ok
    for w in db.session.scalars(select(Withholding).where(Withholding.status == "withheld")):
        reconcile.resolve(w, outcome="released", note="ok", actor="t")
    db.session.commit()
    assert for_sale(batch) == 100 and verify_ledger().ok


_examples = itertools.count(1)


def for_sale(batch) -> int:
    return ledger.balances_by_batch(ledger.system_account(AccountKind.INVENTORY)).get(batch.id, 0)


@pytest.mark.postgres
def test_withheld_serials_cannot_be_sold_while_buyers_race_on_postgresql(pg_app):
    """Buyers order while the statement is imported: no serial is both sold and withheld, the
    withheld ones never reach a hold, and the ledger verifies."""
    steel, batch = world()
    org_id = steel.id

    def work(i):
        if i == 0:
            report = import_(EVERY_KIND)
            return ("withheld", report.withheld)
        orders.create_order(
            db.session.get(type(steel), org_id), 7, beneficiary=f"b{i}", purpose="voluntary", actor=f"w{i}"
        )
        db.session.commit()
        return "held"

    outcomes = race(pg_app, 9, work, refused=orders.OrderError)
    db.session.expire_all()
    withheld = [(w.serial_start, w.serial_end) for w in db.session.scalars(select(Withholding))]
    holds = db.session.execute(
        select(LedgerEntry.serial_start, LedgerEntry.serial_end)
        .join(Account, Account.id == LedgerEntry.to_account_id)
        .where(Account.kind == AccountKind.HOLD)
    ).all()
    for a, b in withheld:
        for c, d in holds:
            assert b < c or d < a, (withheld, holds)
    assert ledger.balance(ledger.system_account(AccountKind.WITHHELD)) == sum(b - a + 1 for a, b in withheld)
    assert outcomes.count("held") * 7 + ledger.balance(ledger.system_account(AccountKind.WITHHELD)) <= 70
    assert verify_ledger().ok
