"""Inbound mail: one RFC 5322 message from stdin (`flask inbound`, for an MTA
pipe) or many over LMTP (`flask inbound serve`), both handed to
`handle_message`.

Each package registers a handler for the mail it understands (mailto
unsubscribes, delivery reports, calendar replies). The first handler that
recognises the message consumes it. A message nobody recognises is logged and
dropped: answering the MTA with an error would only make it bounce the mail
back to its sender. A handler that fails is a temporary error instead (exit
status 75 on the pipe, 451 over LMTP), so the MTA keeps the message and
tries again later.
"""
import asyncio
import email
import email.policy
import logging
import signal
import sys
from concurrent.futures import ThreadPoolExecutor

import click
from flask import current_app
from flask.cli import with_appcontext
from flask_babel import gettext as _

from core.database import needs_schema
from core.extensions import db

log = logging.getLogger(__name__)

# sysexits.h EX_TEMPFAIL: Postfix, Exim and sendmail keep the message queued and retry.
EX_TEMPFAIL = 75
DEFAULT_PRIORITY = 100

_handlers = []  # (priority, handler); handler(message) -> True when it consumed the message


def register(handler=None, *, priority=DEFAULT_PRIORITY):
    """Register a handler (`@register` or `@register(priority=10)`); lower priorities are asked first."""

    def add(function):
        _handlers.append((priority, function))
        _handlers.sort(key=lambda entry: entry[0])  # stable: equal priorities keep their import order
        return function

    return add if handler is None else add(handler)


def handle_message(data):
    """Parse `data` and give it to the first handler that takes it; commits. Returns the handler's name or None."""
    message = email.message_from_bytes(data, policy=email.policy.default)
    _load_handlers()
    for _priority, handler in list(_handlers):
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
    import events.inbound  # noqa: F401
    import newsletter.bounces  # noqa: F401
    import subscribers.inbound  # noqa: F401


# --- LMTP ----------------------------------------------------------------------


class LMTPHandler:
    """aiosmtpd handler: each message in its own app context, off the event loop.

    One worker thread handles the messages in turn, so the listener never
    runs two database transactions at once (SQLite has one writer anyway)
    while the event loop keeps talking to the MTA.
    """

    def __init__(self, app):
        self.app = app
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="inbound")

    async def handle_DATA(self, server, session, envelope):
        loop = asyncio.get_running_loop()
        reply = await loop.run_in_executor(self.executor, self.deliver, envelope.original_content)
        # LMTP answers DATA once per accepted recipient (RFC 2033 4.2); the
        # message is handled once, so every recipient gets the same answer.
        return "\r\n".join([reply] * len(envelope.rcpt_tos))

    def deliver(self, data):
        try:
            with self.app.app_context():
                handled = handle_message(data)
        except Exception:
            log.exception("inbound message could not be handled; the MTA will retry")
            return "451 4.3.0 Local error in processing, try again later"
        return f"250 2.0.0 {'Handled' if handled else 'Ignored'}"


def start_lmtp(app, host="127.0.0.1", port=8025):
    """Start the LMTP listener in a background thread; returns the controller (call `.stop()`)."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.lmtp import LMTP

    class LMTPController(Controller):
        def factory(self):
            return LMTP(self.handler, **self.SMTP_kwargs)

        def stop(self, no_assert=False):
            super().stop(no_assert=no_assert)
            self.handler.executor.shutdown(wait=True)

    controller = LMTPController(LMTPHandler(app), hostname=host, port=port)
    controller.start()
    return controller


# --- commands ------------------------------------------------------------------


@click.group("inbound", invoke_without_command=True)
@click.pass_context
def inbound_command(ctx):
    """Eingehende E-Mail verarbeiten; ohne Unterbefehl eine Nachricht von der Standardeingabe.

    Ohne Unterbefehl für die Pipe des Mailservers; `serve` nimmt E-Mail per LMTP an.
    """
    if ctx.invoked_subcommand is None:
        ctx.invoke(_read_stdin)


@with_appcontext
@needs_schema
def _read_stdin():
    try:
        handled = handle_message(sys.stdin.buffer.read())
    except Exception:
        log.exception("inbound message could not be handled")
        click.echo(
            _("Die Nachricht konnte nicht verarbeitet werden; der Mailserver versucht es später erneut."), err=True
        )
        raise click.exceptions.Exit(EX_TEMPFAIL) from None
    click.echo(handled or "ignored")


@inbound_command.command("serve")
@click.option(
    "--host", default="127.0.0.1", show_default=True,
    help="Adresse, auf der der LMTP-Dienst lauscht; ohne Anmeldung, also nur für den eigenen Mailserver erreichbar.",
)
@click.option("--port", default=8025, show_default=True, type=int, help="Port des LMTP-Dienstes.")
@with_appcontext
@needs_schema
def inbound_serve_command(host, port):
    """Eingehende E-Mail per LMTP annehmen, bis SIGINT oder SIGTERM.

    Im Mailserver z. B. Postfix: `transport_maps` mit `lmtp:inet:127.0.0.1:8025`
    für die Eingangsadresse.
    """
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stop_signals = {signal.SIGINT, signal.SIGTERM}
    # Blocked before the listener's threads start, so they inherit the mask
    # and the signals reach only the sigwait below.
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
    try:
        try:
            controller = start_lmtp(current_app._get_current_object(), host, port)
        except Exception as error:
            raise click.ClickException(
                _("Der LMTP-Dienst auf %(host)s:%(port)s startet nicht: %(error)s", host=host, port=port, error=error)
            ) from error
        click.echo(_("LMTP-Dienst auf %(host)s:%(port)s – Strg+C beendet.", host=host, port=port))
        try:
            signal.sigwait(stop_signals)
        finally:
            controller.stop()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
