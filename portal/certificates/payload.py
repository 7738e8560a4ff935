"""A certificate's signed content (schema v1), and what of it pages, the PDF and the public JSON
show."""

from zoneinfo import ZoneInfo

from flask import current_app

from portal.certificates.models import Certificate, Source
from portal.core.seller import PLATFORM_EN, PLATFORM_ZH
from portal.ledger.models import Batch


def payload(
    number, organisation, ranges, batches, beneficiary, purpose, detail, retired_at, retired_by=None
) -> dict:
    """The signed content of a certificate (schema v1; see the PDF and API docs). ``retired_by``
    (name, USCC or "") when it is not ``organisation`` (a guest checkout's buyer)."""
    by_name, by_uscc = retired_by or (organisation.name_zh, organisation.uscc)
    projects: dict[str, dict] = {}
    blocks = []
    for r in ranges:
        batch = batches[r.batch_id]
        project = batch.project
        if project.code not in projects:
            projects[project.code] = {
                "code": project.code,
                "name_zh": project.name_zh,
                "name_en": project.name_en,
                "type": project.type,
                "standard": project.standard,
                "methodology": project.methodology,
                "county_zh": project.region.name_zh,
                "county_en": project.region.name_en,
                "registry_id": project.registry_id,
            }
        blocks.append(
            {
                "batch_code": batch.code,
                "project_code": project.code,
                "vintage_start": batch.vintage_start.isoformat(),
                "vintage_end": batch.vintage_end.isoformat(),
                "serial_start": r.serial_start,
                "serial_end": r.serial_end,
                "quantity": r.quantity,
                "label": batch.block_label(r.serial_start, r.serial_end),
                "registry_serial_start": _registry_serial(batch, r.serial_start),
                "registry_serial_end": _registry_serial(batch, r.serial_end),
            }
        )
    return {
        "v": 1,
        "number": number,
        "portal": current_app.config["BASE_URL"].rstrip("/"),
        "issuer": {"zh": PLATFORM_ZH, "en": PLATFORM_EN},
        "beneficiary": beneficiary,
        "purpose": str(purpose),
        "purpose_detail": detail,
        "quantity": sum(r.quantity for r in ranges),
        "unit": "tCO2e",
        "retired_at": retired_at.astimezone(ZoneInfo("UTC")).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "retired_by": {"name": by_name, "uscc": by_uscc},
        "projects": list(projects.values()),
        "blocks": blocks,
    }


def _registry_serial(batch: Batch, serial: int) -> str:
    unit = batch.registry_unit(serial)
    return "" if unit is None else str(unit)


def public_document(document: dict, source: str | None = None) -> dict:
    """What pages, the PDF and the public JSON show of a certificate's signed ``document``.

    A contract delivery's certificate says it came from an offtake contract, not which: older
    ones signed the contract's number, tranche and title as their purpose details, and those
    stay out of sight (the signed payload itself cannot change without breaking its
    signature). ``source`` is the certificate's recorded source, when the portal knows it."""
    if source != Source.CONTRACT and document.get("source") != Source.CONTRACT:
        return document
    return {**document, "purpose_detail": "", "source": str(Source.CONTRACT)}


def public_purpose_detail(certificate: Certificate) -> str:
    """The purpose details a certificate shows in public (see ``public_document``)."""
    return "" if certificate.source == Source.CONTRACT else certificate.purpose_detail
