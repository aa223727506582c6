"""Inbound mail: `flask inbound` reads one RFC 5322 message from stdin (an MTA pipe).

Each package registers a handler for the mail it understands (mailto
unsubscribes here; bounces and calendar replies with their issues). The
first handler that recognises the message consumes it. A message nobody
recognises is logged and dropped: answering the MTA with an error would only
make it bounce the mail back to its sender.
"""
import email
import email.policy
import logging
import sys

import click
from flask.cli import with_appcontext

from app import db
from core.database import needs_schema

log = logging.getLogger(__name__)

_handlers = []  # functions(message) -> True when they consumed it


def register(handler):
    _handlers.append(handler)
    return handler


def handle_message(data):
    """Parse `data` and give it to the first handler that takes it; commits. Returns the handler's name or None."""
    message = email.message_from_bytes(data, policy=email.policy.default)
    _load_handlers()
    for handler in _handlers:
        try:
            consumed = handler(message)
        except Exception:
            db.session.rollback()
            raise
        if consumed:
            db.session.commit()
            return handler.__name__
    db.session.rollback()
    log.info("inbound message %s not recognised", message.get("Message-ID", "(no Message-ID)"))
    return None


def _load_handlers():
    # Importing registers them; kept here so `core` does not import domain packages at import time.
    import subscribers.inbound  # noqa: F401


@click.command("inbound")
@with_appcontext
@needs_schema
def inbound_command():
    """Eine eingehende E-Mail von der Standardeingabe verarbeiten (für die Pipe des Mailservers)."""
    handled = handle_message(sys.stdin.buffer.read())
    click.echo(handled or "ignored")
