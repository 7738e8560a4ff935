"""The outbox, and delivery by SMTP to a real (minimal, local) SMTP server."""

import socketserver
import threading

from sqlalchemy import select

from portal.core import mail
from portal.extensions import db


class _SMTPHandler(socketserver.StreamRequestHandler):
    """Just enough of RFC 5321 for smtplib: greets, accepts one message at a time, records it."""

    received: list[bytes] = []

    def reply(self, line):
        self.wfile.write(line.encode() + b"\r\n")

    def handle(self):
        self.reply("220 test")
        while line := self.rfile.readline():
            command = line.strip().upper()
            if command.startswith((b"EHLO", b"HELO")):
                self.reply("250 test")
            elif command == b"DATA":
                self.reply("354 go on")
                data = b""
                while (chunk := self.rfile.readline()) != b".\r\n":
                    data += chunk
                self.received.append(data)
                self.reply("250 queued")
            elif command == b"QUIT":
                self.reply("221 bye")
                return
            else:
                self.reply("250 ok")


def test_without_smtp_messages_stay_in_the_outbox(app):
    mail.send("a@example.cn", "Subject", "Body")
    db.session.commit()
    result = app.test_cli_runner().invoke(args=["mail", "send"])
    assert "stay in the outbox" in result.output
    assert db.session.scalar(select(mail.OutboxMessage)).sent_at is None


def test_smtp_delivery_marks_messages_sent(app):
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _SMTPHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        app.config.update(
            SMTP_HOST="127.0.0.1", SMTP_PORT=server.server_address[1], MAIL_FROM="portal@example.cn"
        )
        mail.send("buyer@example.cn", "确认您的地址", "正文 body")
        db.session.commit()
        result = app.test_cli_runner().invoke(args=["mail", "send"])
        assert "sent 1 message(s)" in result.output, result.output
        assert db.session.scalar(select(mail.OutboxMessage)).sent_at is not None
        assert b"To: buyer@example.cn" in _SMTPHandler.received[-1]
        assert app.test_cli_runner().invoke(args=["mail", "send"]).output.strip() == "sent 0 message(s)"
    finally:
        server.shutdown()
        server.server_close()
