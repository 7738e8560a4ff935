"""Buyer organisations: their details (USCC, sector, names), creation and their holding."""

import logging

from flask_babel import gettext as _
from sqlalchemy import select

from portal.alliance import services as alliance
from portal.audit import services as audit
from portal.buyers import uscc as uscc_rules
from portal.buyers.errors import OrganisationError
from portal.buyers.models import Organisation, OrgStatus, Sector, org_status_label
from portal.extensions import db
from portal.ledger import services as ledger
from portal.ledger.models import Account, AccountKind
from portal.timeutil import utcnow

log = logging.getLogger(__name__)


def uscc_error(code: str) -> str | None:
    """A translated sentence saying what is wrong with a USCC, or None when it is valid."""
    reason = uscc_rules.problem(code)
    if reason is None:
        return None
    return {
        "length": _("A unified social credit code has exactly 18 characters (got %(n)s).", n=len(code)),
        "characters": _(
            "A unified social credit code uses only digits and the letters A–Y except I, O, S, V and Z."
        ),
        "division": _(
            "Characters 3 to 8 of a unified social credit code are the administrative division code (digits)."
        ),
        "check": _(
            "The last character of %(code)s does not match its check character: please check the code.",
            code=code,
        ),
    }[reason]


def _check_organisation(*, name_zh: str, name_en: str, uscc: str, sector: str) -> str:
    """The normalised USCC, or OrganisationError saying what is wrong with the details."""
    code = uscc_rules.normalise(uscc)
    message = uscc_error(code)
    if message:
        raise OrganisationError("invalid_uscc", message)
    if sector not in set(Sector):
        raise OrganisationError("invalid_sector", _("Unknown sector %(sector)s.", sector=sector))
    if not name_zh.strip() or len(name_zh) > 200 or len(name_en) > 200:
        raise OrganisationError("invalid_name", _("The name must have 1 to 200 characters."))
    return code


def create_organisation(
    *,
    name_zh: str,
    uscc: str,
    sector: str,
    name_en: str = "",
    alliance_member: bool = False,
    ets_entity: bool = False,
    approve: bool = False,
    actor: str = "cli",
) -> Organisation:
    code = _check_organisation(name_zh=name_zh, name_en=name_en, uscc=uscc, sector=sector)
    if db.session.scalar(select(Organisation.id).filter_by(uscc=code)) is not None:
        raise OrganisationError(
            "duplicate_uscc", _("An organisation with code %(code)s already exists.", code=code)
        )
    org = Organisation(
        name_zh=name_zh.strip(),
        name_en=name_en.strip(),
        uscc=code,
        sector=sector,
        alliance_member=alliance_member,
        ets_entity=ets_entity,
        status=OrgStatus.APPROVED if approve else OrgStatus.PENDING,
        status_since=utcnow(),
    )
    db.session.add(org)
    db.session.flush()
    if alliance_member:  # a member from the start: its membership is recorded as such
        alliance.enrol(org, actor=actor)
    audit.record(
        actor,
        "organisation.create",
        "organisation",
        code,
        after={
            "name_zh": org.name_zh,
            "name_en": org.name_en,
            "sector": sector,
            "status": org.status,
            "alliance_member": alliance_member,
            "ets_entity": ets_entity,
        },
    )
    log.info("organisation %s created (%s)", code, org.status)
    return org


def find_by_uscc(code: str) -> Organisation:
    org = db.session.scalar(select(Organisation).filter_by(uscc=uscc_rules.normalise(code)))
    if org is None:
        raise OrganisationError(
            "unknown_organisation", _("There is no organisation with code %(code)s.", code=code)
        )
    return org


def holding_account(org: Organisation) -> Account:
    return ledger.open_account(AccountKind.HOLDING, org.holding_ref)


def holding_blocks(org: Organisation):
    """The organisation's blocks, in allocation order (read-only: no account is opened)."""
    account = db.session.scalar(select(Account).filter_by(kind=AccountKind.HOLDING, ref=org.holding_ref))
    return [] if account is None else ledger.blocks_of(account)


def deliver_from_inventory(org: Organisation, quantity: int, *, batch_codes=None, actor: str = "cli"):
    """An offline sale: the operator moves credits from inventory to the organisation's holding."""
    if org.status in (OrgStatus.SUSPENDED, OrgStatus.BARRED):
        raise OrganisationError(
            "organisation_not_allowed",
            _(
                "%(name)s cannot receive credits (status: %(status)s).",
                name=org.name_zh,
                status=org_status_label(org.status),
            ),
        )
    return ledger.transfer(
        quantity,
        source=ledger.system_account(AccountKind.INVENTORY),
        destination=holding_account(org),
        batch_codes=batch_codes,
        reference=f"delivery:{org.uscc}",
        actor=actor,
    )
