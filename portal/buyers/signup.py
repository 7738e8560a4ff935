"""Self-service registration: a pending organisation and its first user, and what the people
entitled to know are told when the details are known here already."""

from datetime import timedelta

from flask_babel import gettext as _
from sqlalchemy import select
from werkzeug.security import generate_password_hash

from portal.audit import services as audit
from portal.buyers.accounts import _check_user, create_user, operator_emails
from portal.buyers.errors import OrganisationError
from portal.buyers.models import Organisation, Role, User
from portal.buyers.organisations import _check_organisation, create_organisation
from portal.buyers.tokens import send_confirmation
from portal.core import mail, throttle
from portal.core.errors import ServiceError
from portal.core.i18n import absolute_url
from portal.core.text import has_hidden_characters
from portal.extensions import db

#: Sign-ups per client address, and per e-mail address and per USCC named, in the window. The
#: first stops one client filling the database with pending organisations and the outbox with
#: mail; the others stop many clients flooding one mailbox or one organisation's admins.
SIGNUPS_PER_ADDRESS = 10
SIGNUPS_PER_EMAIL = 3
SIGNUPS_PER_USCC = 3
SIGNUP_WINDOW = timedelta(hours=1)
SIGNUPS_FROM_ADDRESS = throttle.Rule("signup.address", SIGNUPS_PER_ADDRESS, SIGNUP_WINDOW)
SIGNUPS_FOR_EMAIL = throttle.Rule("signup.email", SIGNUPS_PER_EMAIL, SIGNUP_WINDOW)
SIGNUPS_FOR_USCC = throttle.Rule("signup.uscc", SIGNUPS_PER_USCC, SIGNUP_WINDOW)


def register(
    *,
    name_zh: str,
    name_en: str,
    uscc: str,
    sector: str,
    contact_name: str,
    contact_phone: str,
    email: str,
    password: str,
    address: str,
) -> None:
    """Self-service registration: a pending organisation, its first (buyer) user, and the
    confirmation e-mail. Nothing is created if any part is refused.

    What the visitor sees never tells whether the e-mail address or the USCC is known here: once
    the details are well-formed, every registration costs the same password hash and gets the
    same answer, and whatever differs goes by e-mail to the people entitled to know:

    * an address that has an account: its owner is told that someone tried to register with it
      (the visitor, if it is the owner, reads it there);
    * a USCC that is registered already: nothing is created (an organisation has one account
      here, and a stranger must not join it by naming its code). The organisation's admins, or
      the operators when it has none, are told who tried, so that a colleague can be added by
      the operator and a stranger is noticed; the attempt is audited. The visitor is told only
      that the registration must be checked before an account is opened: the code is public
      (business licences, the national credit register), but whether its holder trades here is
      not;
    * an address or USCC named too often: nothing more happens and nobody is mailed again (the
      mailbox and the admins are not flooded), and the visitor is not told.

    Only a client address that registers too often is refused openly (ServiceError, 429).
    """
    if len(contact_name) > 100 or len(contact_phone) > 40:
        raise OrganisationError("invalid_contact", _("The contact name or telephone is too long."))
    for label, value in ((_("Contact person"), contact_name), (_("Contact telephone"), contact_phone)):
        if has_hidden_characters(value):  # they are printed in e-mail to others (see below)
            raise OrganisationError(
                "invalid_contact",
                _("%(field)s contains control or direction-override characters.", field=label),
            )
    code = _check_organisation(name_zh=name_zh, name_en=name_en, uscc=uscc, sector=sector)
    email = _check_user(email=email, password=password)
    if throttle.take((SIGNUPS_FROM_ADDRESS, address[:64])) is not None:
        raise ServiceError(
            "too_many_signups", _("Too many registrations from your address. Please try again later."), 429
        )
    password_hash = generate_password_hash(password)  # whatever happens next: the same work
    if throttle.take((SIGNUPS_FOR_EMAIL, email), (SIGNUPS_FOR_USCC, code)) is not None:
        return
    if db.session.scalar(select(User.id).filter_by(email=email)) is not None:
        _tell_account_owner(email)
        return
    existing = db.session.scalar(select(Organisation).filter_by(uscc=code))
    if existing is not None:
        _tell_organisation(existing, email=email, contact_name=contact_name, contact_phone=contact_phone)
        return
    with db.session.begin_nested():
        org = create_organisation(name_zh=name_zh, name_en=name_en, uscc=code, sector=sector, actor="self")
        org.contact_name = contact_name.strip()
        org.contact_phone = contact_phone.strip()
        user = create_user(
            email=email,
            password=password,
            password_hash=password_hash,
            role=Role.BUYER,
            organisation=org,
            actor="self",
            confirmed=False,
        )
        user.is_org_admin = True  # the one who registers manages the organisation's keys
    send_confirmation(user)


def _tell_account_owner(email: str) -> None:
    """Someone tried to register with an address that has an account: tell its owner."""
    mail.send(
        email,
        _("Someone tried to register with your e-mail address"),
        _(
            "Someone tried to register a new organisation with this address, which already has an "
            "account. If it was you, sign in, or reset your password:\n\n%(link)s",
            link=absolute_url("buyers.request_reset"),
        ),
    )


def _tell_organisation(org: Organisation, *, email: str, contact_name: str, contact_phone: str) -> None:
    """Someone tried to register an organisation that has an account: tell the visitor only that
    the registration will be checked, and tell the organisation's admins (or the operators) who
    it was."""
    mail.send(
        email,
        _("Your registration on the Chifeng Carbon Sink Marketplace"),
        _(
            "Thank you for registering. We cannot open an account for this registration straight "
            "away: it has to be checked first. If we need anything more from you, we will write to "
            "this address.\n\nIf you did not register, you can ignore this message."
        ),
    )
    admins = list(
        db.session.scalars(
            select(User.email).filter_by(organisation_id=org.id, is_org_admin=True, is_active=True)
        )
    )
    recipients = admins or operator_emails()
    body = _(
        "Someone tried to register %(name)s (%(code)s), which already has an account, on the Chifeng "
        "Carbon Sink Marketplace. No account was opened. They gave these details, which we have not "
        "checked:\n\nE-mail: %(email)s\nContact person: %(contact)s\nTelephone: %(phone)s\n\n"
        "If they work for the organisation, the operator can add them as a user. If not, you need "
        "do nothing.",
        name=org.name_zh,
        code=org.uscc,
        email=email,
        contact=contact_name.strip(),
        phone=contact_phone.strip(),
    )
    for recipient in recipients:
        mail.send(recipient, _("Someone tried to register your organisation"), body)
    audit.record(
        "self",
        "organisation.registration_attempt",
        "organisation",
        org.uscc,
        after={"email": email, "contact_name": contact_name.strip(), "contact_phone": contact_phone.strip()},
    )
