"""Loading the demo data set through the same services production uses."""

import dataclasses
import logging
import random
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from sqlalchemy import select

from portal.buyers import services as buyers
from portal.buyers.models import Organisation
from portal.catalog.models import Listing, Project, ProjectStatus, Region
from portal.certificates import services as certificates
from portal.certificates.models import Source
from portal.demo import data, pipeline, quotes
from portal.extensions import db
from portal.ledger import services as ledger
from portal.ledger.models import AccountKind, Batch
from portal.timeutil import BEIJING, as_of, utcnow

log = logging.getLogger(__name__)


def database_is_empty() -> bool:
    return db.session.scalar(select(Region.id).limit(1)) is None


def load(scale: int = 1, seed: int = 20241226, progress=None, now: datetime | None = None) -> dict:
    """Create regions, ``20 × scale`` projects with five vintages each, listings, ``6 × scale``
    buyer organisations and the demo users, then a year of trading up to ``now`` (this moment by
    default): offline deliveries and retirements, many small offsets, checkout orders and offtake
    contracts with their deliveries and payments, spread over each of the last twelve months
    (Beijing months, the current one included) so that the dashboard and the statements show a
    year. Deterministic for a given day. Returns counts."""
    rng = random.Random(seed)
    now = (now or utcnow()).astimezone(UTC)
    months = trading_months(now)
    counts = {
        "regions": 0,
        "projects": 0,
        "batches": 0,
        "organisations": 0,
        "deliveries": 0,
        "retirements": 0,
        "orders": 0,
    }
    # Everything issued, listed and signed up a month before the year of trading begins.
    with as_of(months[0][0] - timedelta(days=30)):
        batches = _catalog(rng, scale, counts, progress)
        organisations = _organisations(scale, counts)
        counts["users"] = _demo_users()
        for org in organisations:
            # Stock for the many small offsets below.
            buyers.deliver_from_inventory(org, 4000 * (1 + scale // 10), actor="demo")

    events: list[tuple[datetime, int, object]] = []

    def at(moment: datetime, action) -> None:
        events.append((moment, len(events), action))

    _plan_offline_sales(rng, organisations, batches, months, counts, at)
    _plan_small_offsets(rng, organisations, months, scale, counts, at)
    _plan_orders(rng, organisations, months, counts, at)
    counts["contracts"] = _plan_contracts(rng, scale, now, at)
    for moment, _n, action in sorted(events, key=lambda e: (e[0], e[1])):
        with as_of(moment):
            action()
    from portal.demo import registry

    counts["registry_confirmed"] = registry.hand_off(rng, now)
    counts["quote_requests"] = quotes.load()
    # The pipeline of projects not yet issued, with its own random numbers (the trading above
    # stays as it was), and a county reviewer for each county-level unit.
    counts.update(
        pipeline.load(random.Random(seed + 16), scale, now.astimezone(BEIJING).date(), DEMO_PASSWORD)
    )
    db.session.flush()
    log.info("demo data loaded: %s", counts)
    return counts


CERTIFICATES_PER_SCALE = 1000
#: Checkout orders a month (whatever the scale: they show the months, not volume).
ORDERS_PER_MONTH = 2


def trading_months(now: datetime) -> list[tuple[datetime, datetime]]:
    """The last twelve Beijing months up to ``now``, as (start, end) moments. The current month's
    trading ends at the start of the day (Beijing), so that the plan depends on the day alone
    (every load on one day makes the same data); on the first of a month, its trading is at that
    midnight."""
    local = now.astimezone(BEIJING)
    midnight = datetime(local.year, local.month, local.day, tzinfo=BEIJING)
    year, month = local.year, local.month
    starts = []
    for _ in range(12):
        starts.append(datetime(year, month, 1, tzinfo=BEIJING))
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    starts.reverse()
    return [(start, starts[i + 1] if i + 1 < len(starts) else midnight) for i, start in enumerate(starts)]


def _within(rng, months, n: int) -> datetime:
    """A moment in month ``n % 12`` (round the year, so that every month has its share)."""
    start, end = months[n % len(months)]
    return start + (end - start) * rng.uniform(0.02, 0.98)


def _catalog(rng, scale, counts, progress) -> list[Batch]:
    regions = {}
    for row in data.regions():
        region = Region(**row)
        db.session.add(region)
        regions[row["code"]] = region
    db.session.flush()
    counts["regions"] = len(regions)
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
    return batches


def _organisations(scale, counts) -> list[Organisation]:
    made = []
    for n in range(6 * scale):
        name_zh, name_en, sector, alliance, ets = data.ORGS[n % len(data.ORGS)]
        suffix = "" if n < len(data.ORGS) else f"（{n // len(data.ORGS) + 1}）"
        made.append(
            buyers.create_organisation(
                name_zh=name_zh + suffix,
                name_en=name_en + (f" ({n // len(data.ORGS) + 1})" if suffix else ""),
                uscc=data.uscc_for(n + 1),
                sector=sector,
                alliance_member=alliance,
                ets_entity=ets,
                approve=True,
            )
        )
        counts["organisations"] += 1
    return made


def _plan_offline_sales(rng, organisations, batches, months, counts, at) -> None:
    """Offline sales of older vintages (two per organisation), most of which the buyer retires
    in part a few days later; one of those certificates is revoked months on (a registry
    reversal)."""
    last = months[-1][1]
    retired = []
    for i, org in enumerate(organisations):
        for k in range(2):
            chosen = rng.choice(batches)
            quantity = rng.randint(1, 40) * 50
            part = quantity // rng.choice((2, 4, 5))
            moment = _within(rng, months, 2 * i + k)
            counts["deliveries"] += 1

            def sale(org=org, quantity=quantity, batch=chosen):
                # At larger scales earlier trading may have sold the batch down: sell what is left.
                left = ledger.balance(ledger.system_account(AccountKind.INVENTORY), batch)
                if min(quantity, left) > 0:
                    buyers.deliver_from_inventory(
                        org, min(quantity, left), batch_codes=[batch.code], actor="demo"
                    )

            at(moment, sale)
            if part:
                counts["retirements"] += 1
                certificate_part = _part(rng, org, part)

                def retire(org=org, p=certificate_part, batch=chosen):
                    held = ledger.balance(buyers.holding_account(org), batch)
                    if held > 0:
                        p = dataclasses.replace(p, quantity=min(p.quantity, held))
                        retired.append(_certify(org, p, [batch.code]))

                # After the sale (planned first, so first at the same moment), not after today.
                at(max(moment, min(moment + timedelta(days=rng.randint(1, 6)), last)), retire)

    def revoke():
        if retired:
            certificates.revoke(retired[0], REVOCATION_REASON, actor="demo")

    at(months[-3][0] + timedelta(days=9, hours=10, minutes=24), revoke)


#: Why the demo's one revoked certificate was revoked.
REVOCATION_REASON = (
    "登记机构更正：该批次部分减排量经复核后被冲销（更正通知 CCER-R-2025-0042），"
    "本证明作废；受益方已另行注销等量碳信用。"
)


def _plan_small_offsets(rng, organisations, months, scale, counts, at) -> None:
    """Many small offsets (events, office years) so that the register and the verification pages
    have realistic volume: 1,000 certificates per unit of scale, at most 100 to a ledger movement
    (as an event retiring for each guest would), spread over the year."""
    remaining = CERTIFICATES_PER_SCALE * scale - counts["retirements"]
    chunk = min(100, -(-remaining // 24))  # at least two movements a month
    n = 0
    while remaining > 0:
        size = min(chunk, remaining)
        org = organisations[n % len(organisations)]
        parts = [_part(rng, org, rng.randint(1, 6)) for _ in range(size)]

        def retire(org=org, parts=parts):
            certificates.retire_into_certificates(
                buyers.holding_account(org), org, parts, source=Source.HOLDING, actor="demo"
            )

        at(_within(rng, months, n), retire)
        counts["retirements"] += size
        remaining -= size
        n += 1


def _plan_orders(rng, organisations, months, counts, at) -> None:
    """Checkout orders, paid and so retired at once, every month: the first organisation (the
    demo buyer's) places one in three."""
    from portal.buyers.models import User

    for n in range(ORDERS_PER_MONTH * len(months)):
        org = organisations[0] if n % 3 == 0 else organisations[rng.randrange(len(organisations))]
        quantity = rng.randint(2, 60) * 5
        part = _part(rng, org, quantity)

        def order(org=org, part=part, number=n):
            user = db.session.scalar(select(User).filter_by(organisation_id=org.id, is_org_admin=True))
            _paid_order(org, part, user, number)

        at(_within(rng, months, n), order)
        counts["orders"] += 1
        counts["retirements"] += 1


def _paid_order(org, part, user, number: int) -> None:
    """A checkout order as the buyer places it, paid by card: the payment is applied as Stripe's
    ``payment_intent.succeeded`` would be (the demo data talks to no payment service)."""
    from portal.offsets import services as offsets
    from portal.payments import services as payments

    order, _created = offsets.create_order(
        org,
        part.quantity,
        beneficiary=part.beneficiary,
        purpose=part.purpose,
        purpose_detail=part.purpose_detail,
        actor=f"user:{user.id}" if user else "demo",
        user=user,
    )
    order.payment_intent_id = f"pi_demo_{number:06d}"
    offsets.payment_succeeded(
        {
            "id": order.payment_intent_id,
            "amount": payments.to_fen(order.amount),
            "currency": "cny",
            "metadata": {"portal_order": order.public_id},
        }
    )
    if number == 0 and user is not None:  # the first buyer asks for a VAT fapiao for its first order
        from portal.fapiao import services as fapiao

        fapiao.request_fapiao(
            order, org, "normal", {"title": org.name_zh, "taxpayer_id": org.uscc}, actor=f"user:{user.id}"
        )


def _plan_contracts(rng, scale: int, now: datetime, at) -> int:
    """``6 + 2 × scale`` offtake contracts of the alliance's heavy emitters, run by the demo sales
    user: quarterly tranches over three years, most signed a few weeks before they start
    (reserving stock), each tranche delivered on its due date and most invoices paid within
    weeks; a few still drafts."""
    from portal.buyers.models import User
    from portal.contracts import services as contracts

    buyers_ = list(
        db.session.scalars(
            select(Organisation).where(Organisation.alliance_member.is_(True)).order_by(Organisation.id)
        )
    ) or list(db.session.scalars(select(Organisation).order_by(Organisation.id)))
    today = now.astimezone(BEIJING).date()

    def on(day: date, hour: int) -> datetime:
        # Today's work is planned at its midnight, like the rest of the year's (trading_months).
        return datetime.combine(day, time(hour if day < today else 0), tzinfo=BEIJING)

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
        draft = n % 7 == 6
        signed_on = start - timedelta(days=rng.randint(7, 21))
        # Each delivered tranche's payment: whether it has come in, and how many days after the
        # delivery (some are still open, a few overdue).
        payments_ = [(rng.random() < 0.85, rng.randint(8, 40)) for _ in tranches]
        made += 1
        state = {}

        def sign(org=org, terms=terms, draft=draft, state=state):
            owner = db.session.scalar(select(User).filter_by(email="sales@demo.local"))
            contract, _ = contracts.create_draft(org, terms, owner=owner, actor="demo")
            state["contract"] = contract
            if not draft:
                contracts.sign(contract, actor="demo")

        at(on(signed_on, 10), sign)
        if draft:
            continue
        for seq, tranche in enumerate(tranches, start=1):
            due = date.fromisoformat(tranche["due"])
            if due > today:
                break

            def deliver(seq=seq, state=state):
                contract = state.get("contract")
                if contract is None or state.get("stalled"):
                    return
                cover = next(c for c in contracts.cover(contract) if c.tranche.seq == seq)
                if cover.reserved < cover.tranche.remaining:
                    state["stalled"] = True  # not enough matching stock: the rest waits
                    return
                delivery, _ = contracts.deliver(contract, seq, cover.tranche.remaining, actor="demo")
                state[seq] = delivery.invoice

            at(on(due, 9), deliver)
            paid, after = payments_[seq - 1]
            paid_on = due + timedelta(days=after)
            if paid and paid_on <= today:

                def pay(seq=seq, state=state, paid_on=paid_on):
                    invoice = state.get(seq)
                    if invoice is not None:
                        contracts.record_payment(
                            invoice,
                            invoice.amount,
                            paid_on.isoformat(),
                            f"DEMO-{invoice.number}",
                            actor="demo",
                        )

                at(on(paid_on, 15), pay)
    return made


def _part(rng, org, quantity) -> certificates.Part:
    purpose = rng.choice(("voluntary", "event", "voluntary"))
    if purpose == "event":
        beneficiary, detail = rng.choice(data.EVENTS)
    else:
        beneficiary, detail = org.name_zh, f"抵销{rng.choice(data.VINTAGES)}年度运营碳排放"
    return certificates.Part(quantity, beneficiary, purpose, detail)


def _certify(org, part: certificates.Part, batch_codes):
    return certificates.retire_into_certificate(
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
        registry_series=serial_start.rsplit("-", 1)[0] if project.standard == "CCER" else "VCS-VCU",
    )
