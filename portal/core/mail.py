"""The one mailer. Every message is written to the outbox table (in the caller's transaction, so
a rolled-back request sends nothing) and to the log; ``flask mail send`` delivers pending
messages by SMTP when ``PORTAL_SMTP_HOST`` is set."""

import logging
import re
import smtplib
from contextlib import contextmanager
from datetime import datetime
from email.message import EmailMessage

from flask import current_app
from sqlalchemy import String, Text, insert, select
from sqlalchemy.orm import Mapped, mapped_column

from portal.core.database import checkpoint
from portal.extensions import db
from portal.timeutil import UTCDateTime, utcnow

log = logging.getLogger(__name__)


class OutboxMessage(db.Model):
    __tablename__ = "outbox_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    to: Mapped[str] = mapped_column(String(254), index=True)
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


#: Built once. A message is written at once, as a row (no object to flush: nothing in the
#: transaction reads it back).
_QUEUE = insert(OutboxMessage.__table__)


def send(to: str, subject: str, body: str) -> None:
    db.session.execute(_QUEUE, {"to": to, "subject": subject[:200], "body": body, "created_at": utcnow()})
    if outbox_page_enabled():  # the demo: no mail goes out, so the log shows it whole
        log.info("mail queued to %s: %s\n%s", to, subject, body)
    else:
        # The address and subject only: bodies carry sign-in links, which are secrets.
        log.info("mail queued to %s: %s", to, subject)


def outbox_page_enabled() -> bool:
    """The demo's outbox page (and whole messages in the log): only when turned on, and never
    where mail really goes out."""
    config = current_app.config
    return bool(config.get("MAIL_OUTBOX_PAGE")) and not config.get("SMTP_HOST")


def recent(limit: int = 100) -> list[OutboxMessage]:
    return list(db.session.scalars(select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(limit)))


_LINK = re.compile(r"https?://[^\s<>\"'）)，。]+")


def body_parts(body: str) -> list[tuple[str, bool]]:
    """A message body as (text, is_link) pieces, so that a page can link the addresses in it
    and escape everything else."""
    parts, at = [], 0
    for match in _LINK.finditer(body):
        if match.start() > at:
            parts.append((body[at : match.start()], False))
        parts.append((match.group(0), True))
        at = match.end()
    if at < len(body):
        parts.append((body[at:], False))
    return parts


@contextmanager
def in_recipient_language(user):
    """Write a message to ``user`` in the user's language: users keep no language preference, so
    in the portal's default language (Chinese), never in the language of the request that
    happens to send it (a member of staff reading in English delivers to a buyer, a webhook pays
    an invoice). Text to translate for the message is written inside the ``with`` block."""
    from flask_babel import force_locale

    with force_locale(current_app.config["BABEL_DEFAULT_LOCALE"]):
        yield


def deliver_pending(limit: int = 100) -> int:
    """Send queued messages by SMTP; returns how many were sent. Without SMTP, does nothing."""
    host = current_app.config.get("SMTP_HOST")
    if not host:
        return 0
    pending = list(
        db.session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.sent_at.is_(None))
            .order_by(OutboxMessage.id)
            .limit(limit)
        )
    )
    sent = 0
    with smtplib.SMTP(host, int(current_app.config.get("SMTP_PORT", 25)), timeout=30) as smtp:
        for message in pending:
            email = EmailMessage()
            email["From"] = current_app.config.get("MAIL_FROM", "noreply@localhost")
            email["To"] = message.to
            email["Subject"] = message.subject
            email.set_content(message.body)
            smtp.send_message(email)
            message.sent_at = utcnow()
            checkpoint()  # marked sent as soon as it has left: never sent twice
            sent += 1
    return sent


def register_cli(app) -> None:
    import click
    from flask.cli import AppGroup

    mail_cli = AppGroup("mail", help="The e-mail outbox.")

    @mail_cli.command("send")
    def send_command():
        """Deliver queued messages by SMTP (PORTAL_SMTP_HOST, PORTAL_SMTP_PORT, PORTAL_MAIL_FROM)."""
        if not current_app.config.get("SMTP_HOST"):
            click.echo("PORTAL_SMTP_HOST is not set: messages stay in the outbox (and the log)")
            return
        click.echo(f"sent {deliver_pending()} message(s)")

    app.cli.add_command(mail_cli)
