"""Mail transport: SMTP through Flask-Mail, or the outbox folder.

Without MAIL_SERVER every message is written as an `.eml` file into the outbox
(instance/outbox), where an admin can read it in the web interface. Senders
use `mail_connection()` so that a batch of messages shares one SMTP session.
"""
import os
import re
import smtplib
import uuid
from contextlib import contextmanager
from datetime import datetime, timezone
from email import charset as email_charset
from email import policy as email_policy
from email.mime.text import MIMEText
from email.utils import make_msgid, parseaddr

import flask_mail
from flask import current_app, render_template

from core.extensions import mail

__all__ = [
    "Message", "mail_connection", "send_message", "OutboxConnection", "render_mjml", "sender_address",
    "new_message_id", "KINDS", "KIND_HEADER", "DISTRICT_HEADER", "service_headers",
]

# Every mail the service builds says what it is and for which district, so
# the outbox can filter by kind and show a coordinator only their districts'
# mails. Both values are plain ASCII and name no person (a district key is
# public), so the headers travel over real SMTP as well without harm.
KIND_HEADER = "X-EGov-Kind"
DISTRICT_HEADER = "X-EGov-District"
# newsletter: an issue to its subscribers; test: a newsletter's test send;
# invitation: every mail about an event (invitation, booking, confirmation,
# waiting list, change, cancellation, reminder); confirmation: a
# subscription's double opt-in mail and its "already subscribed" notice.
KINDS = ("newsletter", "test", "invitation", "confirmation")


def service_headers(kind, district_key):
    """The (name, value) pairs that mark a mail's kind and district."""
    if kind not in KINDS:
        raise ValueError(f"unknown mail kind {kind!r}")
    return [(KIND_HEADER, kind), (DISTRICT_HEADER, str(district_key))]


# Quoted-printable keeps every body line short: compiled MJML has lines of
# thousands of characters, which SMTP servers refuse (RFC 5321 limits a line
# to 1000 octets) and Flask-Mail would send as 8bit.
UTF8_QP = email_charset.Charset("utf-8")
UTF8_QP.body_encoding = email_charset.QP
# Headers are folded only beyond RFC 5322's hard limit: folding at 78
# characters made Python re-encode long List-Unsubscribe values as RFC 2047
# words (which mail clients then can not use) and split encoded names.
MAIL_POLICY = email_policy.SMTP.clone(max_line_length=998)


class Message(flask_mail.Message):
    """Flask-Mail's message with bodies and headers that survive real mail servers."""

    def _mimetext(self, text, subtype="plain"):
        return MIMEText(text, _subtype=subtype, _charset=UTF8_QP)

    def _message(self):
        message = super()._message()
        message.policy = MAIL_POLICY
        return message


class OutboxConnection:
    """Writes each message as an RFC 5322 file; same `send` as Flask-Mail's Connection."""

    def __init__(self, directory):
        self.directory = directory
        os.makedirs(directory, exist_ok=True)

    def send(self, message, envelope_from=None):
        return self.send_raw(None, None, message.as_bytes())

    def send_raw(self, envelope_from, recipient, data):
        """Same as an SMTP transaction of ready-made bytes (the envelope is not kept)."""
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
        name = f"{stamp}-{uuid.uuid4().hex[:12]}.eml"
        tmp = os.path.join(self.directory, f".{name}.tmp")
        with open(tmp, "wb") as fh:
            fh.write(data)
        # Rename is atomic: the outbox page never shows a half-written file.
        os.replace(tmp, os.path.join(self.directory, name))
        return name

    def submit(self, envelope_from, recipient, data, then=None):
        """As `SMTPRawConnection.submit`: the file is written at once, `result` has nothing to wait for."""
        self._written = self.send_raw(envelope_from, recipient, data)

    def result(self):
        return self._written

    def connect(self):
        return self

    reconnect = connect

    def close(self):
        pass


def uses_outbox(app=None):
    return not (app or current_app).config.get("MAIL_SERVER")


@contextmanager
def mail_connection():
    if uses_outbox():
        yield OutboxConnection(current_app.config["OUTBOX_DIR"])
    else:
        with mail.connect() as connection:
            yield connection


class SMTPRawConnection:
    """One SMTP session for ready-made message bytes (the newsletter's fast path).

    It owns its `smtplib.SMTP` (`host`) and can `reconnect()`: the pipeline
    opens a new session on the same object after the server dropped one.
    Unlike Flask-Mail's connection it has a socket timeout
    (SEND_SMTP_TIMEOUT_SECONDS), so a server that stops answering raises
    instead of blocking the job for ever.

    With PIPELINING (RFC 2920) a mail costs one round trip: `submit(...,
    then=next envelope)` writes the message and, in the same write, MAIL,
    RCPT and DATA of the next mail; `result()` reads the answer to the
    message; the next `submit` finds the answers to its commands waiting.
    The sender builds the next mail between `submit` and `result`, while
    the server takes the message, instead of waiting for it.
    """

    def __init__(self, open_host):
        self.open_host = open_host
        self.host = None
        self.announced = None  # (from, to) of the next mail whose MAIL/RCPT/DATA went out unanswered
        self.awaiting = False  # a message went out and its answer is not read yet
        self.finished = None  # (what smtplib's sendmail returned,) after a submit without PIPELINING

    def connect(self):
        self.close()
        self.host = self.open_host()
        return self

    reconnect = connect

    def close(self):
        """Say goodbye if the session still stands; never raises."""
        host, self.host = self.host, None
        announced, self.announced, self.awaiting = self.announced, None, False
        if host is None:
            return
        try:
            # After an announced DATA the server may be reading a message:
            # a QUIT would become its text. Closing discards the transaction.
            if host.sock is not None and announced is None:
                host.quit()
        except (smtplib.SMTPException, OSError):
            pass
        finally:
            host.close()

    def send_raw(self, envelope_from, recipient, data):
        """Send `data` (bytes with CRLF line ends) to one recipient and wait for the answer.

        Raises smtplib's exceptions, as `sendmail` does; the caller maps them
        to the row's state.
        """
        self.submit(envelope_from, recipient, data)
        return self.result()

    def submit(self, envelope_from, recipient, data, then=None):
        """Send one mail up to the end of its message; `result()` reads the server's answer to it.

        Refusals of the sender or the recipient raise here, as `sendmail`
        does. `then` is the (envelope from, recipient) of the mail the caller
        will `submit` next; with PIPELINING its commands go out with this
        message. A `submit` of another mail than the one announced ends the
        session (SMTPServerDisconnected), so that nothing half-announced stays.
        """
        host = self.host
        if host is None:
            raise smtplib.SMTPServerDisconnected("not connected")
        if self.awaiting:
            raise RuntimeError("submit() before result() of the previous mail")
        host.ehlo_or_helo_if_needed()
        self.finished = None
        if not _pipelinable(host, envelope_from, recipient):
            if self.announced is not None:
                self.close()
                raise smtplib.SMTPServerDisconnected("the announced mail was not sent; session ended")
            self.finished = (host.sendmail(envelope_from, [recipient], data),)
            self.awaiting = True
            return
        if self.announced is None:
            host.send(_envelope_commands(envelope_from, recipient))
        elif self.announced != (envelope_from, recipient):
            self.close()
            raise smtplib.SMTPServerDisconnected("another mail than the announced one; session ended")
        self.announced = None
        _read_envelope_replies(host, envelope_from, recipient)
        if data.startswith(b"."):
            data = b"." + data
        data = data.replace(b"\r\n.", b"\r\n..")  # dot-stuffing (RFC 5321 4.5.2)
        if not data.endswith(b"\r\n"):
            data += b"\r\n"
        data += b".\r\n"
        if then is not None and _pipelinable(host, *then):
            data += _envelope_commands(*then)
            self.announced = tuple(then)
        host.send(data)
        self.awaiting = True

    def result(self):
        """The server's answer to the last submitted message: {} when taken, else SMTPDataError."""
        if not self.awaiting:
            raise RuntimeError("result() without submit()")
        self.awaiting = False
        if self.finished is not None:
            return self.finished[0]
        host = self.host
        code, reply = host.getreply()
        if code != 250:
            # The transaction is over either way (no RSET: commands of the
            # next mail may be on their way); 421 closes the session.
            if code == 421:
                self.close()
            raise smtplib.SMTPDataError(code, reply)
        return {}


def smtp_host(app=None):
    """A new SMTP session with Flask-Mail's settings (SSL, STARTTLS, login) and a socket timeout."""
    app = app or current_app
    config = app.config
    timeout = config["SEND_SMTP_TIMEOUT_SECONDS"]
    server, port = config["MAIL_SERVER"], config["MAIL_PORT"]
    if config.get("MAIL_USE_SSL"):
        host = smtplib.SMTP_SSL(server, port, timeout=timeout)
    else:
        host = smtplib.SMTP(server, port, timeout=timeout)
    try:
        if config.get("MAIL_USE_TLS"):
            host.starttls()
        if config.get("MAIL_USERNAME") and config.get("MAIL_PASSWORD"):
            host.login(config["MAIL_USERNAME"], config["MAIL_PASSWORD"])
    except BaseException:
        host.close()
        raise
    return host


def is_connection_fault(error):
    """True when `error` ends the SMTP session rather than saying something about one recipient.

    A dropped connection (reset, broken pipe, EOF), a timeout, a refused
    connection and a 421 answer (the server closes the session, RFC 5321
    3.8) are faults of the connection: the same mail can go out on a new one.
    """
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return any(code == 421 for code, _text in error.recipients.values())
    if isinstance(error, smtplib.SMTPResponseException):
        return error.smtp_code == 421
    return isinstance(error, (smtplib.SMTPServerDisconnected, smtplib.SMTPConnectError, OSError))


# Printable ASCII without spaces and angle brackets: safe to put in a command
# as it is; anything else takes smtplib's own path.
PLAIN_ADDRESS = re.compile(r"[!-;=?-~]+")


def _pipelinable(host, envelope_from, recipient):
    return bool(host.has_extn("pipelining") and PLAIN_ADDRESS.fullmatch(envelope_from)
                and PLAIN_ADDRESS.fullmatch(recipient))


def _envelope_commands(sender, recipient):
    return f"MAIL FROM:<{sender}>\r\nRCPT TO:<{recipient}>\r\nDATA\r\n".encode("ascii")


def _reset_or_close(host, code):
    # As smtplib does: 421 means the server is closing the connection.
    if code == 421:
        host.close()
        return
    try:
        host.rset()
    except smtplib.SMTPServerDisconnected:
        pass


def _read_envelope_replies(host, sender, recipient):
    """Read the answers to MAIL, RCPT and DATA; raise as `sendmail` does unless DATA got 354."""
    (mail_code, mail_reply), (rcpt_code, rcpt_reply), (data_code, data_reply) = (
        host.getreply(), host.getreply(), host.getreply())
    refused = mail_code != 250 or rcpt_code not in (250, 251)
    if data_code == 354 and refused:
        host.send(b".\r\n")  # the server wants a message although it refused: an empty one
        host.getreply()
    if mail_code != 250:
        _reset_or_close(host, mail_code)
        raise smtplib.SMTPSenderRefused(mail_code, mail_reply, sender)
    if rcpt_code not in (250, 251):
        _reset_or_close(host, rcpt_code)
        raise smtplib.SMTPRecipientsRefused({recipient: (rcpt_code, rcpt_reply)})
    if data_code != 354:
        _reset_or_close(host, data_code)
        raise smtplib.SMTPDataError(data_code, data_reply)


def new_raw_connection():
    """A not yet connected `send_raw(envelope_from, recipient, bytes)` transport: SMTP or the outbox."""
    if uses_outbox():
        return OutboxConnection(current_app.config["OUTBOX_DIR"])
    return SMTPRawConnection(smtp_host)


@contextmanager
def raw_connection():
    """A connected `new_raw_connection()`, closed afterwards."""
    connection = new_raw_connection().connect()
    try:
        yield connection
    finally:
        connection.close()


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
