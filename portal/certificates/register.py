"""The public retirement register: every certificate, newest first, searchable, with totals."""

from dataclasses import dataclass, field
from datetime import datetime, time

from flask_babel import gettext as _
from sqlalchemy import and_, exists, func, or_, select

from portal.catalog.models import Project, Region
from portal.certificates.models import (
    CERTIFICATE_STATUS_LABELS,
    PURPOSE_LABELS,
    Certificate,
    CertificateBlock,
    CertificateStatus,
)
from portal.certificates.services import public_purpose_detail
from portal.core.i18n import iso_beijing, localized
from portal.core.numbers import whole
from portal.extensions import db
from portal.ledger.models import Batch
from portal.registry import instructions as registry
from portal.registry.models import REGISTRY_STATUS_LABELS
from portal.timeutil import BEIJING

PER_PAGE = 50
MAX_PAGE = 10_000
TEXT_MAX = 100


@dataclass
class RegisterFilters:
    q: str = ""
    county: str = ""
    year: int | None = None
    batch: str = ""
    serial: int | None = None
    page: int = 1
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, args) -> "RegisterFilters":
        f = cls()
        f.q = (args.get("q") or "").strip()[:TEXT_MAX]
        f.county = (args.get("county") or "").strip()[:32]
        f.batch = (args.get("batch") or "").strip()[:80]
        f.year = _whole(
            args.get("year"), 2000, 2100, "year", _("Year must be between 2000 and 2100."), f.errors
        )
        f.serial = _whole(
            args.get("serial"), 1, 2**31 - 1, "serial", _("A serial is a whole number from 1."), f.errors
        )
        if f.serial is not None and not f.batch:
            f.errors["serial"] = _("Name the batch whose serial you are looking for.")
            f.serial = None
        f.page = _whole(args.get("page"), 1, MAX_PAGE, "page", _("No such page."), f.errors) or 1
        return f

    def args(self, **changes) -> dict:
        values = {
            "q": self.q,
            "county": self.county,
            "year": self.year,
            "batch": self.batch,
            "serial": self.serial,
        }
        values.update(changes)
        return {k: v for k, v in values.items() if v not in (None, "")}


def _whole(raw, low, high, name, message, errors):
    if raw is None or raw.strip() == "":
        return None
    value = whole(raw, low, high)
    if value is None:
        errors[name] = message
    return value


def _conditions(f: RegisterFilters) -> list:
    conditions = []
    if f.q:
        pattern = "%" + f.q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        conditions.append(
            or_(
                Certificate.beneficiary.ilike(pattern, escape="\\"),
                Certificate.number == f.q.upper(),
                exists().where(
                    CertificateBlock.certificate_id == Certificate.id,
                    Batch.id == CertificateBlock.batch_id,
                    Project.id == Batch.project_id,
                    or_(
                        Project.code.ilike(pattern, escape="\\"),
                        Project.name_zh.ilike(pattern, escape="\\"),
                        Project.name_en.ilike(pattern, escape="\\"),
                    ),
                ),
            )
        )
    if f.county:
        conditions.append(
            exists().where(
                CertificateBlock.certificate_id == Certificate.id,
                Batch.id == CertificateBlock.batch_id,
                Project.id == Batch.project_id,
                Region.id == Project.region_id,
                Region.code == f.county,
            )
        )
    if f.year is not None:
        start = datetime.combine(datetime(f.year, 1, 1), time(), BEIJING)
        end = datetime.combine(datetime(f.year + 1, 1, 1), time(), BEIJING)
        conditions.append(and_(Certificate.retired_at >= start, Certificate.retired_at < end))
    if f.batch:
        block = [CertificateBlock.certificate_id == Certificate.id, Batch.id == CertificateBlock.batch_id]
        block.append(Batch.code == f.batch)
        if f.serial is not None:
            block += [CertificateBlock.serial_start <= f.serial, CertificateBlock.serial_end >= f.serial]
        conditions.append(exists().where(*block))
    return conditions


@dataclass(frozen=True)
class RegisterPage:
    certificates: list
    total: int
    page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // PER_PAGE))


def search(f: RegisterFilters) -> RegisterPage:
    conditions = _conditions(f)
    total = db.session.scalar(select(func.count()).select_from(Certificate).where(*conditions))
    rows = db.session.scalars(
        select(Certificate)
        .where(*conditions)
        .order_by(Certificate.retired_at.desc(), Certificate.id.desc())
        .offset((f.page - 1) * PER_PAGE)
        .limit(PER_PAGE)
    )
    return RegisterPage(list(rows), total, f.page)


def iter_all(f: RegisterFilters, chunk: int = 1000):
    """Every matching certificate, newest first, fetched in chunks (for the CSV export)."""
    statement = (
        select(Certificate)
        .where(*_conditions(f))
        .order_by(Certificate.retired_at.desc(), Certificate.id.desc())
        .execution_options(yield_per=chunk)
    )
    yield from db.session.scalars(statement)


@dataclass(frozen=True)
class Total:
    code: str
    name_zh: str
    name_en: str
    tonnes: int


def totals() -> tuple[list[Total], list[Total]]:
    """Tonnes retired under valid certificates, per project and per county, largest first."""
    tonnes = func.sum(CertificateBlock.serial_end - CertificateBlock.serial_start + 1)
    base = (
        select(tonnes)
        .select_from(CertificateBlock)
        .join(Certificate, Certificate.id == CertificateBlock.certificate_id)
        .join(Batch, Batch.id == CertificateBlock.batch_id)
        .join(Project, Project.id == Batch.project_id)
        .where(Certificate.status == CertificateStatus.VALID)
    )
    by_project = db.session.execute(
        base.add_columns(Project.code, Project.name_zh, Project.name_en)
        .group_by(Project.code, Project.name_zh, Project.name_en)
        .order_by(tonnes.desc(), Project.code)
    )
    by_county = db.session.execute(
        base.join(Region, Region.id == Project.region_id)
        .add_columns(Region.code, Region.name_zh, Region.name_en)
        .group_by(Region.code, Region.name_zh, Region.name_en)
        .order_by(tonnes.desc(), Region.code)
    )
    return (
        [Total(code, zh, en, int(t)) for t, code, zh, en in by_project],
        [Total(code, zh, en, int(t)) for t, code, zh, en in by_county],
    )


def csv_rows(f: RegisterFilters):
    """The register as CSV rows: one per retired block, newest certificate first. The codes
    (status, purpose, registry status) stay as they are, for programs; the last columns name
    them, and the project, in the request's language, for people."""
    yield [
        "number",
        "status",
        "retired_at_utc+08:00",  # ISO 8601 in Beijing time, with its offset
        "beneficiary",
        "purpose",
        "purpose_detail",
        "quantity",
        "batch_code",
        "project_code",
        "serial_start",
        "serial_end",
        "block_quantity",
        "registry_status",
        "registry_reference",
        "registry_confirmed_at",
        "status_name",
        "purpose_name",
        "project_name",
        "registry_status_name",
    ]
    chunk: list = []
    for c in iter_all(f):
        chunk.append(c)
        if len(chunk) == 1000:
            yield from _csv_chunk(chunk)
            chunk = []
    yield from _csv_chunk(chunk)


def _csv_chunk(certificates):
    registry_of = registry.registry_summaries([c.id for c in certificates])
    for c in certificates:
        official = registry_of[c.id]
        for b in c.blocks:
            yield [
                c.number,
                c.status,
                iso_beijing(c.retired_at),
                c.beneficiary,
                c.purpose,
                public_purpose_detail(c),
                c.quantity,
                b.batch.code,
                b.batch.project.code,
                b.serial_start,
                b.serial_end,
                b.quantity,
                official["status"],
                official["reference"] or "",
                official["confirmed_at"] or "",
                str(CERTIFICATE_STATUS_LABELS.get(c.status, c.status)),
                str(PURPOSE_LABELS.get(c.purpose, c.purpose)),
                localized(b.batch.project, "name"),
                str(REGISTRY_STATUS_LABELS.get(official["status"], official["status"])),
            ]
