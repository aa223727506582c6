"""Mail transport: SMTP through Flask-Mail, or the outbox folder.

Without MAIL_SERVER every message is written as an `.eml` file into the outbox
(instance/outbox), where an admin can read it in the web interface. Senders
use `mail_connection()` so that a batch of messages shares one SMTP session.
"""
import os
import uuid
from contextlib import contextmanager
from datetime import datetime, timezone

from flask import current_app
from flask_mail import Message

from app import mail

__all__ = ["Message", "mail_connection", "send_message", "OutboxConnection"]


class OutboxConnection:
    """Writes each message as an RFC 5322 file; same `send` as Flask-Mail's Connection."""

    def __init__(self, directory):
        self.directory = directory
        os.makedirs(directory, exist_ok=True)

    def send(self, message, envelope_from=None):
        data = message.as_bytes()
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
        name = f"{stamp}-{uuid.uuid4().hex[:12]}.eml"
        tmp = os.path.join(self.directory, f".{name}.tmp")
        with open(tmp, "wb") as fh:
            fh.write(data)
        # Rename is atomic: the outbox page never shows a half-written file.
        os.replace(tmp, os.path.join(self.directory, name))
        return name


def uses_outbox(app=None):
    return not (app or current_app).config.get("MAIL_SERVER")


@contextmanager
def mail_connection():
    if uses_outbox():
        yield OutboxConnection(current_app.config["OUTBOX_DIR"])
    else:
        with mail.connect() as connection:
            yield connection


def send_message(message):
    with mail_connection() as connection:
        connection.send(message)
