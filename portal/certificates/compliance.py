"""National-ETS compliance offsets: CCER may cover at most 5 % of the allowances an entity must
surrender for a compliance year (2020 ETS Measures, Art. 29). Entities declare their allowances
due; every compliance retirement counts against that year's cap and is refused beyond it."""

from dataclasses import dataclass

from flask_babel import gettext as _
from sqlalchemy import func, select

from portal.audit import services as audit
from portal.buyers.models import Organisation
from portal.certificates.models import AllowanceDeclaration, Certificate, CertificateStatus, Purpose
from portal.core.errors import ServiceError
from portal.core.numbers import whole
from portal.extensions import db

#: The cap, as a fraction of the allowances due: 5 %, rounded down to whole tonnes.
CAP_PERCENT = 5
FIRST_YEAR, LAST_YEAR = 2020, 2100
MAX_ALLOWANCES = 10**12


class ComplianceError(ServiceError):
    """A refused declaration or compliance retirement: nothing changed."""


def _whole(value, field: str, low: int, high: int, message: str) -> int:
    found = whole(value, low, high)
    if found is None:
        raise ComplianceError("invalid_" + field, message, field=field)
    return found


def parse_year(value) -> int:
    return _whole(
        value,
        "compliance_year",
        FIRST_YEAR,
        LAST_YEAR,
        _("The compliance year is a year from %(first)s to %(last)s.", first=FIRST_YEAR, last=LAST_YEAR),
    )


def declare(organisation, year, allowances, *, actor: str) -> AllowanceDeclaration:
    """Record (or correct) the allowances due for ``year``; audited."""
    if not organisation.ets_entity:
        raise ComplianceError(
            "not_an_ets_entity", _("Only national-ETS compliance entities declare allowances."), 403
        )
    year = parse_year(year)
    allowances = _whole(
        allowances,
        "allowances_t",
        0,
        MAX_ALLOWANCES,
        _("Allowances due are a whole number of tonnes, zero or more."),
    )
    # Declarations of one organisation take turns, so that two first declarations for a year
    # at once update one row instead of both inserting it (a unique-constraint error). FOR NO
    # KEY UPDATE, as orders lock it: rows referring to the organisation need not wait.
    db.session.execute(
        select(Organisation.id).where(Organisation.id == organisation.id).with_for_update(key_share=True)
    )
    found = db.session.scalar(
        select(AllowanceDeclaration).filter_by(organisation_id=organisation.id, year=year)
    )
    before = None if found is None else {"allowances_t": found.allowances_t}
    if found is None:
        found = AllowanceDeclaration(
            organisation_id=organisation.id, year=year, allowances_t=allowances, declared_by=actor
        )
        db.session.add(found)
    else:
        found.allowances_t = allowances
        found.declared_by = actor
    db.session.flush()
    audit.record(
        actor,
        "compliance.declare",
        "organisation",
        organisation.uscc,
        before=before,
        after={"year": year, "allowances_t": allowances},
    )
    return found


@dataclass(frozen=True)
class Position:
    year: int
    allowances_t: int
    cap_t: int
    used_t: int

    @property
    def remaining_t(self) -> int:
        return max(0, self.cap_t - self.used_t)


def cap_of(allowances_t: int) -> int:
    return allowances_t * CAP_PERCENT // 100


def _used(organisation, year: int) -> int:
    return db.session.scalar(
        select(func.coalesce(func.sum(Certificate.quantity), 0)).where(
            Certificate.organisation_id == organisation.id,
            Certificate.purpose == Purpose.COMPLIANCE,
            Certificate.compliance_year == year,
            Certificate.status == CertificateStatus.VALID,
        )
    )


def positions(organisation) -> list[Position]:
    declared = db.session.scalars(
        select(AllowanceDeclaration)
        .filter_by(organisation_id=organisation.id)
        .order_by(AllowanceDeclaration.year.desc())
    )
    return [
        Position(d.year, d.allowances_t, cap_of(d.allowances_t), _used(organisation, d.year))
        for d in declared
    ]


def check_room(organisation, year, quantity: int) -> int:
    """Lock the organisation's declaration for ``year`` (compliance retirements of one entity and
    year take turns) and refuse ``quantity`` beyond the cap. Returns the year."""
    year = parse_year(year)
    if not organisation.ets_entity:
        raise ComplianceError(
            "not_an_ets_entity", _("Only national-ETS compliance entities can retire for compliance."), 403
        )
    declaration = db.session.scalar(
        select(AllowanceDeclaration).filter_by(organisation_id=organisation.id, year=year).with_for_update()
    )
    if declaration is None:
        raise ComplianceError(
            "no_allowances_declared",
            _(
                "Declare your allowances due for %(year)s first: the 5 %% cap is worked out from them.",
                year=year,
            ),
            409,
            "compliance_year",
        )
    cap, used = cap_of(declaration.allowances_t), _used(organisation, year)
    if used + quantity > cap:
        raise ComplianceError(
            "compliance_cap",
            _(
                "CCER may offset at most 5 %% of the allowances due: %(cap)s t for %(year)s. "
                "%(used)s t are already retired for it, so at most %(left)s t more.",
                cap=cap,
                year=year,
                used=used,
                left=max(0, cap - used),
            ),
            409,
            "quantity",
        )
    return year
