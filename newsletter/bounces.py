"""Reports about newsletter mail that come back: bounces and abuse complaints.

Bounces are delivery status notifications (RFC 3464: a `multipart/report`
with a `message/delivery-status` part) and, leniently, the plain-text
bounces some MTAs still send (Exim's `X-Failed-Recipients`, qmail's
"failure notice"). Complaints are feedback reports (RFC 5965, ARF) from
mailbox providers' feedback loops.

A report names the mail it is about by the Message-ID of the returned
original, which the sending pipeline stored on the delivery row; that, not
an address in the report, says whose delivery it was. A hard bounce marks
the delivery bounced and takes the address off the list; a delay or a
temporary failure only gets logged, since the sending MTA is still trying.
A report about mail we do not know is consumed and dropped.
"""
import email.policy
import logging
import re
from dataclasses import dataclass, field
from email.parser import HeaderParser

from sqlalchemy import select

from core.extensions import db
from core.inbound import register
from core.models import SentMail
from newsletter.models import Delivery
from newsletter.sending import delivery_rows
from subscribers import services as subscriber_services

log = logging.getLogger(__name__)

# Asked before handlers that look at the subject: a report's structure is
# unambiguous, while a bounce's subject quotes whatever the original said.
REPORT_PRIORITY = 10

STATUS_TYPES = ("message/delivery-status", "message/global-delivery-status")
FEEDBACK_TYPES = ("message/feedback-report",)
ORIGINAL_TYPES = (
    "message/rfc822", "text/rfc822-headers", "message/rfc822-headers", "message/global", "message/global-headers",
)
# RFC 3463 enhanced status codes; the lookarounds keep IP addresses and version numbers out.
ENHANCED_STATUS = re.compile(r"(?<![\d.])([245])\.\d{1,3}\.\d{1,3}(?![\d.])")
BASIC_REPLY = re.compile(r"^([245])\d\d(?![\d.])")
ANGLE_ID = re.compile(r"<([^<>]+)>")
ID_IN_TEXT = re.compile(r"^[ \t]*Message-ID:[ \t]*(<[^<>\s]+>)", re.IGNORECASE | re.MULTILINE)
SMTP_REPLY_LINE = re.compile(r"^.*\b5\d\d[ -]\S.*$", re.MULTILINE)
DAEMON_SENDER = re.compile(r"\b(mailer-daemon|mailerdaemon|mail-daemon|postmaster)\b", re.IGNORECASE)
BOUNCE_SUBJECT = re.compile(
    r"undeliver|returned mail|failure notice|delivery (status notification|failure|failed|has failed)"
    r"|mail delivery failed|unzustellbar|nicht zustellbar|nicht zugestellt",
    re.IGNORECASE,
)
# Where a plain-text bounce starts quoting the original: our own text must not count as the verdict.
COPY_MARKER = re.compile(
    r"^.*(copy of the (original )?message|below this line is a copy|original message follows"
    r"|undelivered message headers|original message headers).*$",
    re.IGNORECASE | re.MULTILINE,
)
PERMANENT_WORDS = re.compile(r"permanent (error|failure)|permanently|given up|gave up", re.IGNORECASE)
DELAY_WORDS = re.compile(r"delayed|will (continue|keep) trying|still trying|temporar|not yet been delivered",
                         re.IGNORECASE)
# 5.7.x is the receiving system refusing our mail by policy (spam filter,
# blocklist, DMARC), not a dead address: suppressing would drop every
# subscriber behind a server that blocked us once. The delivery is still
# recorded as bounced, with the reply for the coordinator to read.
KEEPS_ADDRESS = ("5.7.",)
COMPLAINT_TYPES = ("abuse", "fraud", "")
REPLY_LENGTH = 500


@dataclass
class Outcome:
    """What a report says about the one delivery it concerns."""

    kind: str  # "hard", "soft" or "none" (delivered, relayed …)
    reply: str = ""
    status: str = ""
    addresses: set = field(default_factory=set)


# --- handlers ------------------------------------------------------------------


@register(priority=REPORT_PRIORITY)
def bounce_report(message):
    status_part = _report_part(message, STATUS_TYPES)
    if status_part is not None:
        blocks = _field_blocks(status_part)
        outcome = _dsn_outcome(blocks)
        envelope_ids = [_field(block, "Original-Envelope-Id") for block in blocks[:1]]
    elif _looks_like_bounce(message):
        outcome = _plain_outcome(message)
        envelope_ids = []
    else:
        return False
    delivery = _find_delivery(_original_ids(message) + envelope_ids)
    if delivery is None:
        log.info("bounce (%s) for a message we did not send (or no longer know) ignored", outcome.kind)
    elif outcome.kind == "hard":
        _hard_bounce(delivery, outcome)
    elif outcome.kind == "soft":
        log.info("delivery %s delayed or failed temporarily (%s); the sending MTA keeps trying",
                 delivery.id, outcome.status or "no status")
    else:
        log.info("delivery %s reported as delivered or relayed", delivery.id)
    return True


@register(priority=REPORT_PRIORITY)
def complaint_report(message):
    report = _report_part(message, FEEDBACK_TYPES)
    if report is None:
        return False
    blocks = _field_blocks(report)
    feedback_type = _field(blocks[0], "Feedback-Type").lower() if blocks else ""
    delivery = _find_delivery(_original_ids(message))
    if feedback_type not in COMPLAINT_TYPES:
        log.info("feedback report of type %r ignored", feedback_type)
    elif delivery is None:
        log.info("complaint about a message we did not send (or no longer know) ignored")
    elif delivery.subscriber is None:
        log.info("complaint about delivery %s of an erased subscriber", delivery.id)
    elif delivery.subscriber.status != "complained":
        subscriber_services.mark_undeliverable(delivery.subscriber, "complained")
        log.info("delivery %s: subscriber complained, address suppressed", delivery.id)
    return True


# --- what the report says ----------------------------------------------------------


def _dsn_outcome(blocks):
    """The verdict over the per-recipient blocks: a hard failure wins over a delay over a delivery."""
    outcomes = [_recipient_outcome(block) for block in blocks if _is_recipient_block(block)]
    for kind in ("hard", "soft"):
        matching = [outcome for outcome in outcomes if outcome.kind == kind]
        if matching:
            first = matching[0]
            first.addresses = set().union(*(outcome.addresses for outcome in matching))
            return first
    return Outcome("none")


def _is_recipient_block(block):
    return bool(_field(block, "Action") or _field(block, "Final-Recipient"))


def _recipient_outcome(block):
    action = _field(block, "Action").lower()
    diagnostic = _strip_type(_field(block, "Diagnostic-Code"))
    status = _status_code(_field(block, "Status")) or _status_code(diagnostic)
    addresses = {_address(_field(block, name)) for name in ("Final-Recipient", "Original-Recipient")} - {None}
    reply = (diagnostic or status or action)[:REPLY_LENGTH]
    if action in ("delivered", "relayed", "expanded"):
        kind = "none"
    elif status.startswith("4") or action == "delayed":
        kind = "soft"
    elif status.startswith("5") or action == "failed":
        kind = "hard"
    else:
        kind = "none"
    return Outcome(kind, reply, status, addresses)


def _plain_outcome(message):
    """A bounce without a status part: judged from its text, up to where it quotes the original."""
    text = COPY_MARKER.split(_notification_text(message), maxsplit=1)[0]
    failed = {address.strip().lower() for address in _field(message, "X-Failed-Recipients").split(",")} - {""}
    codes = [match.group(0) for match in ENHANCED_STATUS.finditer(text)]
    status = next((code for code in codes if code.startswith("5")), codes[0] if codes else "")
    permanent = status.startswith("5") or PERMANENT_WORDS.search(text)
    if failed or (permanent and not DELAY_WORDS.search(text) and not status.startswith("4")):
        line = SMTP_REPLY_LINE.search(text)
        reply = " ".join(line.group(0).split()) if line else (status or _header(message, "Subject"))
        return Outcome("hard", reply[:REPLY_LENGTH], status or "5.0.0", failed)
    return Outcome("soft", status=status)


def _looks_like_bounce(message):
    if _field(message, "X-Failed-Recipients"):
        return True
    return bool(DAEMON_SENDER.search(_header(message, "From")) and BOUNCE_SUBJECT.search(_header(message, "Subject")))


def _status_code(text):
    """`5.1.1` from a Status field or a diagnostic; a bare `550` becomes `5.0.0`."""
    match = ENHANCED_STATUS.search(text)
    if match:
        return match.group(0)
    match = BASIC_REPLY.match(text)
    return f"{match.group(1)}.0.0" if match else ""


def _strip_type(value):
    """`smtp; 550 5.1.1 …` → `550 5.1.1 …`, as the sending pipeline records SMTP replies; other types stay."""
    kind, sep, rest = value.partition(";")
    return rest.strip() if sep and kind.strip().lower() == "smtp" else value


def _address(value):
    kind, sep, rest = value.partition(";")
    if not sep or kind.strip().lower() not in ("rfc822", "utf-8"):
        return None
    return rest.strip().strip("<>").lower() or None


# --- acting on it -------------------------------------------------------------------


def _hard_bounce(delivery, outcome):
    delivery.status = "bounced"
    delivery.smtp_reply = outcome.reply or outcome.status
    subscriber = delivery.subscriber
    if subscriber is None:
        log.info("delivery %s bounced (%s); the subscriber has been erased", delivery.id, outcome.status)
    elif outcome.status.startswith(KEEPS_ADDRESS):
        log.warning("delivery %s refused by policy (%s); address kept", delivery.id, outcome.status)
    elif subscriber.status in ("bounced", "unsubscribed", "complained"):
        log.info("delivery %s bounced (%s); the address is already off the list", delivery.id, outcome.status)
    elif not _same_address(subscriber, delivery, outcome.addresses):
        log.warning("delivery %s bounced (%s), but the subscriber changed since it was sent; address kept",
                    delivery.id, outcome.status)
    else:
        subscriber_services.mark_undeliverable(subscriber, "bounced")
        log.info("delivery %s bounced (%s); address suppressed", delivery.id, outcome.status)


def _same_address(subscriber, delivery, reported):
    """Whether the bounced address is still the subscriber's.

    A report naming the subscriber's address settles it. One naming another
    address may come from an alias or a forward of the address we sent to,
    or from an address the coordinator has corrected since: only a
    subscriber unchanged since the send can be the former.
    """
    if subscriber.email_key in reported:
        return True
    if delivery.sent_at is None or subscriber.updated_at is None:
        return not reported
    return subscriber.updated_at <= delivery.sent_at


def _find_delivery(candidates):
    for candidate in candidates:
        core = _id_core(candidate)
        if not core:
            continue
        # A mail whose record still sits in the journal of sent mails (its job
        # died before applying it, or the bounce came back within the batch).
        delivery_rows.apply_sent(SentMail.message_id.in_((f"<{core}>", core)))
        delivery = db.session.execute(
            select(Delivery).where(Delivery.message_id.in_((f"<{core}>", core)))
        ).scalars().first()
        if delivery is not None:
            return delivery
    return None


def _id_core(value):
    """A Message-ID without brackets and without the whitespace folding may have put into it."""
    value = value or ""
    match = ANGLE_ID.search(value)
    if match:
        value = match.group(1)
    return "".join(value.split())


# --- reading the report ---------------------------------------------------------------


def _report_parts(message):
    """The message and its MIME parts, without descending into a returned original."""
    yield message
    if message.get_content_maintype() == "multipart":
        payload = message.get_payload()
        for part in payload if isinstance(payload, list) else ():
            yield from _report_parts(part)


def _report_part(message, content_types):
    return next((part for part in _report_parts(message) if part.get_content_type() in content_types), None)


def _original_ids(message):
    """Message-IDs naming the returned original, best first."""
    ids = []
    for part in _report_parts(message):
        if part.get_content_type() in ORIGINAL_TYPES:
            headers = _original_headers(part)
            ids += [_field(headers, "Message-ID"), _field(headers, "X-Original-Message-ID")]
    ids.append(_field(message, "X-Original-Message-ID"))
    # Last resort: a report that quotes the original's headers in its text.
    ids += ID_IN_TEXT.findall(_notification_text(message))
    return [value for value in ids if value]


def _original_headers(part):
    payload = part.get_payload()
    if isinstance(payload, list):
        return payload[0] if payload else HeaderParser(policy=email.policy.default).parsestr("")
    return HeaderParser(policy=email.policy.default).parsestr(_part_text(part))


def _field_blocks(part):
    """The field groups of a status or feedback part, each as a message whose headers are the fields."""
    payload = part.get_payload()
    if isinstance(payload, list) and part.get_content_type() in ("message/delivery-status",) + FEEDBACK_TYPES:
        return payload
    text = "\n".join(item.as_string() for item in payload) if isinstance(payload, list) else _part_text(part)
    parser = HeaderParser(policy=email.policy.default)
    return [parser.parsestr(block) for block in re.split(r"\r?\n[ \t]*\r?\n", text.strip()) if block.strip()]


def _notification_text(message):
    return "\n".join(
        _part_text(part) for part in _report_parts(message)
        if part.get_content_type() == "text/plain" and not part.is_attachment()
    )


def _part_text(part):
    try:
        return part.get_content()
    except Exception:  # unknown charset, odd transfer encoding: read what can be read
        raw = part.get_payload(decode=True)
        return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else ""


def _field(message, name):
    """A field's raw value, unfolded; raw so that a malformed value can not stop the handler."""
    for key, value in message.raw_items():
        if key.lower() == name.lower():
            return " ".join(str(value).split())
    return ""


def _header(message, name):
    """A header decoded (RFC 2047), for the subject and sender a person would read."""
    try:
        return str(message.get(name, ""))
    except Exception:
        return _field(message, name)
