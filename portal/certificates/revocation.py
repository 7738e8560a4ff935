"""Revoking a certificate: the credits stay retired, the certificate says it is no longer valid."""

from flask_babel import gettext as _

from portal.audit import services as audit
from portal.certificates.checks import REASON_MAX, RetirementError, clean_text
from portal.certificates.models import Certificate, CertificateStatus
from portal.extensions import db
from portal.timeutil import utcnow
from portal.transparency import services as transparency
from portal.webhooks import events as webhook_events


def check_revocation(certificate: Certificate, reason) -> str:
    """The reason as it will be kept, if ``certificate`` may be revoked; RetirementError
    otherwise. Changes nothing (the certificate page asks for confirmation next)."""
    reason = clean_text(reason, field="reason", label=_("Reason"), max_length=REASON_MAX, required=True)
    if not certificate.is_valid:
        raise RetirementError("already_revoked", _("This certificate is already revoked."), status=409)
    return reason


def revoke(certificate: Certificate, reason, *, actor: str) -> Certificate:
    """Mark a certificate revoked (e.g. the registry reversed the credits). The credits stay
    retired: they never return to sale."""
    reason = check_revocation(certificate, reason)
    certificate.status = CertificateStatus.REVOKED
    certificate.revoked_at = utcnow()
    certificate.revoked_reason = reason
    certificate.revoked_by = actor
    from portal.catalog import cache

    cache.bump_revision(db.session.connection())  # the register's cached totals change
    transparency.record_revocation(certificate)  # appended to the public log as the transaction commits
    audit.record(
        actor,
        "certificate.revoke",
        "certificate",
        certificate.number,
        before={"status": "valid"},
        after={"status": "revoked", "reason": reason},
    )
    webhook_events.certificate_revoked(certificate)
    db.session.flush()
    return certificate
