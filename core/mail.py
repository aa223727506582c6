"""Mail transport: SMTP through Flask-Mail, or the outbox folder.

Without MAIL_SERVER every message is written as an `.eml` file into the outbox
(instance/outbox), where an admin can read it in the web interface. Senders
use `mail_connection()` so that a batch of messages shares one SMTP session.
"""
import os
import uuid
from contextlib import contextmanager
from datetime import datetime, timezone
from email.utils import make_msgid, parseaddr

from flask import current_app, render_template
from flask_mail import Message

from app import mail

__all__ = ["Message", "mail_connection", "send_message", "OutboxConnection", "render_mjml", "sender_address", "new_message_id"]


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


def render_mjml(template_name, **context):
    """Render a Jinja template of MJML and compile it to mail-client-proof HTML."""
    from mjml import mjml2html

    return mjml2html(render_template(template_name, **context))


def sender_address(app=None):
    """The bare address of MAIL_DEFAULT_SENDER (mails set their own display name)."""
    return parseaddr((app or current_app).config["MAIL_DEFAULT_SENDER"])[1] or "noreply@localhost"


def new_message_id():
    # make_msgid's default asks DNS for the host name on every call.
    from core.urls import base_host

    return make_msgid(domain=base_host())
