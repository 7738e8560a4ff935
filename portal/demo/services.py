"""Loading the demo data set through the same services production uses."""

import logging
import random
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import select

from portal.buyers import services as buyers
from portal.buyers.models import Organisation
from portal.catalog.models import Listing, Project, ProjectStatus, Region
from portal.certificates import services as certificates
from portal.certificates.models import Source
from portal.demo import data
from portal.extensions import db
from portal.ledger import services as ledger
from portal.ledger.models import Batch
from portal.timeutil import beijing_today

log = logging.getLogger(__name__)


def database_is_empty() -> bool:
    return db.session.scalar(select(Region.id).limit(1)) is None


def load(scale: int = 1, seed: int = 20241226, progress=None) -> dict:
    """Create regions, ``20 × scale`` projects with five vintages each, listings, ``6 × scale``
    buyer organisations, offline deliveries and retirements. Returns counts."""
    rng = random.Random(seed)
    regions = {}
    for row in data.regions():
        region = Region(**row)
        db.session.add(region)
        regions[row["code"]] = region
    db.session.flush()

    counts = {
        "regions": len(regions),
        "projects": 0,
        "batches": 0,
        "organisations": 0,
        "deliveries": 0,
        "retirements": 0,
    }
    batches: list[Batch] = []
    for copy in range(scale):
        for template in data.PROJECTS:
            project = _project(rng, template, copy, regions)
            db.session.add(project)
            db.session.flush()
            counts["projects"] += 1
            for vintage in data.VINTAGES:
                batch = _batch(rng, project, template, vintage)
                db.session.add(batch)
                db.session.flush()
                low, high = data.BUFFER_SHARE.get(template.type, (0, 0))
                buffer_quantity = int(batch.quantity * rng.uniform(low, high))
                ledger.issue_batch(
                    batch, buffer_quantity=buffer_quantity, reference=f"issuance:{batch.code}", actor="demo"
                )
                db.session.add(Listing(batch_id=batch.id, price_per_t=data.price(rng, project.standard)))
                batches.append(batch)
                counts["batches"] += 1
        if progress:
            progress(copy + 1, scale)

    for n in range(6 * scale):
        name_zh, name_en, sector, alliance, ets = data.ORGS[n % len(data.ORGS)]
        suffix = "" if n < len(data.ORGS) else f"（{n // len(data.ORGS) + 1}）"
        org = buyers.create_organisation(
            name_zh=name_zh + suffix,
            name_en=name_en + (f" ({n // len(data.ORGS) + 1})" if suffix else ""),
            uscc=data.uscc_for(n + 1),
            sector=sector,
            alliance_member=alliance,
            ets_entity=ets,
            approve=True,
        )
        counts["organisations"] += 1
        # Offline sales of older vintages, some of which the buyer has already retired.
        for _ in range(2):
            chosen = rng.choice(batches)
            quantity = rng.randint(1, 40) * 50
            buyers.deliver_from_inventory(org, quantity, batch_codes=[chosen.code], actor="demo")
            counts["deliveries"] += 1
            retired = quantity // rng.choice((2, 4, 5))
            if retired:
                _certify(rng, org, retired, [chosen.code])
                counts["retirements"] += 1
    # Many small offsets (events, office years) so the register and verification pages have
    # realistic volume: 1,000 certificates per unit of scale.
    organisations = list(db.session.scalars(select(Organisation).order_by(Organisation.id)))
    for org in organisations:
        buyers.deliver_from_inventory(org, 4000 * (1 + scale // 10), actor="demo")
    remaining = CERTIFICATES_PER_SCALE * scale - counts["retirements"]
    n = 0
    while remaining > 0:
        # One ledger movement per 100 certificates, as an event retiring for each guest would.
        chunk = min(100, remaining)
        org = organisations[n % len(organisations)]
        certificates.retire_into_certificates(
            buyers.holding_account(org),
            org,
            [_part(rng, org, rng.randint(1, 6)) for _ in range(chunk)],
            source=Source.HOLDING,
            actor="demo",
        )
        counts["retirements"] += chunk
        remaining -= chunk
        n += 1
    counts["users"] = _demo_users()
    counts["contracts"] = _contracts(rng, scale)
    db.session.flush()
    log.info("demo data loaded: %s", counts)
    return counts


CERTIFICATES_PER_SCALE = 1000


def _contracts(rng, scale: int) -> int:
    """``6 + 2 × scale`` offtake contracts of the alliance's heavy emitters, run by the demo sales
    user: quarterly tranches over three years, most signed (reserving stock), the tranches already
    due delivered and most of their invoices paid; a few still drafts."""
    from portal.buyers.models import User
    from portal.contracts import services as contracts

    owner = db.session.scalar(select(User).filter_by(email="sales@demo.local"))
    buyers_ = list(
        db.session.scalars(
            select(Organisation).where(Organisation.alliance_member.is_(True)).order_by(Organisation.id)
        )
    ) or list(db.session.scalars(select(Organisation).order_by(Organisation.id)))
    today = beijing_today()  # the portal's business days are Beijing's, not the server's
    made = 0
    for n in range(6 + 2 * scale):
        org = buyers_[n % len(buyers_)]
        start = today - timedelta(days=rng.randint(60, 300))
        tranches = [
            {"due": (start + timedelta(days=91 * (q + 1))).isoformat(), "quantity": rng.randint(4, 16) * 50}
            for q in range(12)
        ]
        retire = n % 3 == 2
        terms = {
            "title": f"{org.name_zh} {start.year}–{start.year + 3} 碳汇承购",
            "start": start.isoformat(),
            "end": (start + timedelta(days=3 * 365 + 60)).isoformat(),
            "price_per_t": str(rng.choice((62, 65, 68, 70, 72))) + ".00",
            "escalation_pct_per_year": rng.choice(("0", "2", "3")),
            "standard": rng.choice(("", "CCER", "CCER", "VCS")),
            "delivery": "retire" if retire else "holding",
            "beneficiary": org.name_zh if retire else "",
            "payment_days": 30,
            "tranches": tranches,
        }
        contract, _ = contracts.create_draft(org, terms, owner=owner, actor="demo")
        made += 1
        if n % 7 == 6:
            continue  # still a draft
        contracts.sign(contract, actor="demo")
        for cover in contracts.cover(contract):
            tranche = cover.tranche
            if tranche.due > today or cover.reserved < tranche.remaining:
                break
            delivery, _ = contracts.deliver(contract, tranche.seq, tranche.remaining, actor="demo")
            invoice = delivery.invoice
            if rng.random() < 0.7:
                contracts.record_payment(
                    invoice, invoice.amount, today.isoformat(), f"DEMO-{invoice.number}", actor="demo"
                )
    return made


def _part(rng, org, quantity) -> certificates.Part:
    purpose = rng.choice(("voluntary", "event", "voluntary"))
    if purpose == "event":
        beneficiary, detail = rng.choice(data.EVENTS)
    else:
        beneficiary, detail = org.name_zh, f"抵销{rng.choice(data.VINTAGES)}年度运营碳排放"
    return certificates.Part(quantity, beneficiary, purpose, detail)


def _certify(rng, org, quantity, batch_codes):
    part = _part(rng, org, quantity)
    certificates.retire_into_certificate(
        buyers.holding_account(org),
        org,
        part.quantity,
        beneficiary=part.beneficiary,
        purpose=part.purpose,
        purpose_detail=part.purpose_detail,
        batch_codes=batch_codes,
        source=Source.HOLDING,
        actor="demo",
    )


#: Sign-in accounts for trying the demo portal. Demo data only: never load it into production.
DEMO_PASSWORD = "demo-password-2026"
DEMO_USERS = (
    ("operator@demo.local", "operator", None),
    ("sales@demo.local", "sales", None),
    ("auditor@demo.local", "auditor", None),
    ("buyer@demo.local", "buyer", 1),  # the first demo organisation (steel)
)


def _demo_users() -> int:
    for email, role, org_number in DEMO_USERS:
        organisation = buyers.find_by_uscc(data.uscc_for(org_number)) if org_number else None
        user = buyers.create_user(
            email=email, password=DEMO_PASSWORD, role=role, organisation=organisation, actor="demo"
        )
        user.is_org_admin = organisation is not None
    return len(DEMO_USERS)


def _project(rng, template, copy, regions) -> Project:
    standard, methodology = data.METHODOLOGY[template.type]
    code = template.code if copy == 0 else f"{template.code}-{copy + 1:03d}"
    area = Decimal(round(template.area_ha * rng.uniform(0.8, 1.2)))
    start_year = rng.choice((2020, 2021)) if standard == "CCER" else rng.choice((2019, 2020, 2021))
    crediting_start = date(start_year, 9, 23) if standard == "CCER" else date(start_year, 1, 1)
    years = 30 if template.type == "forestry" else (20 if template.type in ("grassland", "wetland") else 10)
    validator = rng.choice(data.VALIDATORS if standard == "CCER" else data.VCS_VALIDATORS)
    verifier = rng.choice(
        [v for v in (data.VALIDATORS if standard == "CCER" else data.VCS_VALIDATORS) if v != validator]
    )
    suffix_zh = "" if copy == 0 else f"（第{copy + 1}期）"
    suffix_en = "" if copy == 0 else f" (phase {copy + 1})"
    region = regions[template.region]
    return Project(
        code=code,
        name_zh=template.name_zh + suffix_zh,
        name_en=template.name_en + suffix_en,
        description_zh=(
            f"{template.name_zh}位于{region.name_zh}，面积约{area}公顷，"
            f"按{methodology}方法学开发，由赤峰市农投集团统一开发经营。"
        ),
        description_en=(
            f"{template.name_en} in {region.name_en}, about {area} ha, developed under "
            f"{methodology} by the Chifeng Agricultural Investment Group."
        ),
        standard=standard,
        methodology=methodology,
        type=template.type,
        region=region,
        area_ha=area,
        crediting_start=crediting_start,
        crediting_end=date(crediting_start.year + years, crediting_start.month, crediting_start.day)
        - timedelta(days=1),
        status=ProjectStatus.ISSUING,
        validation_body=validator,
        verification_body=verifier,
        registry_id=(
            f"CCER-14-{rng.randint(2024000, 2026999)}"
            if standard == "CCER"
            else f"VCS{rng.randint(4000, 5999)}"
        ),
        boundary_geojson=data.boundary(rng, template.region, float(area)),
    )


def _batch(rng, project, template, vintage) -> Batch:
    low, high = data.YIELD[template.type]
    quantity = max(500, int(float(project.area_ha) * rng.uniform(low, high)))
    first = rng.randint(10_000_000, 900_000_000)
    start, end = date(vintage, 1, 1), date(vintage, 12, 31)
    if project.standard == "CCER":
        serial_start = f"CN-CCER-{project.registry_id}-{vintage}-{first:09d}"
        serial_end = f"CN-CCER-{project.registry_id}-{vintage}-{first + quantity - 1:09d}"
    else:
        issuance = rng.randint(10000, 99999)
        tail = f"VCS-VCU-{project.registry_id[3:]}-VER-CN-14-{project.registry_id[3:]}-{start:%d%m%Y}-{end:%d%m%Y}-0"
        serial_start = f"{issuance}-{first}-{first + quantity - 1}-{tail}"
        serial_end = serial_start
    return Batch(
        code=f"{project.standard}-{project.code}-{vintage}",
        project_id=project.id,
        vintage_start=start,
        vintage_end=end,
        quantity=quantity,
        issued_on=data.issued_on(rng, vintage),
        registry_reference=(
            f"CCER-ISS-{vintage + 1}-{rng.randint(1000, 9999)}"
            if project.standard == "CCER"
            else f"VCU issuance {serial_start.split('-')[0]}"
        ),
        registry_serial_start=serial_start,
        registry_serial_end=serial_end,
        registry_unit_offset=first - 1,
    )
