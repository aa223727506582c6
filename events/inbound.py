"""Calendar replies: a calendar's Accept/Tentative/Decline (iTIP METHOD:REPLY) arriving by mail.

The reply is a `text/calendar` or `application/ics` part (Outlook sends
`method=REPLY` on the MIME type, Google omits it; neither needs ORGANIZER).
It is matched by the VEVENT's UID and the ATTENDEE's address, never by the
From header, and applied by `services.respond`, the function behind the
RSVP links. The UIDs are random, so only someone who received the
invitation can answer for it. A reply for an address that was not invited
changes nothing and is logged.
"""
import logging

import icalendar
from sqlalchemy import select

from core.extensions import db
from core.inbound import register
from events import ical, services
from events.jobs import enqueue_senders
from events.models import Event, Registration

log = logging.getLogger(__name__)

# After the delivery reports (10): a bounce of an invitation quotes our own
# calendar, which must never count as an answer.
REPLY_PRIORITY = 20
CALENDAR_TYPES = ("text/calendar", "application/ics", "text/x-vcalendar")
PARTSTAT_ANSWERS = {"ACCEPTED": "accept", "TENTATIVE": "tentative", "DECLINED": "decline"}


def calendar_parts(message):
    """The calendar parts of the message itself (not of messages attached to it)."""
    stack = [message]
    while stack:
        part = stack.pop(0)
        content_type = part.get_content_type()
        if part.get_content_maintype() == "message":
            continue
        if part.is_multipart():
            stack.extend(part.iter_parts())
        elif content_type in CALENDAR_TYPES:
            yield part


def _calendar(part):
    data = part.get_payload(decode=True) or b""
    try:
        return icalendar.Calendar.from_ical(data.decode(part.get_content_charset() or "utf-8", "replace"))
    except (ValueError, IndexError, KeyError):
        log.info("unreadable calendar part in an inbound message")
        return None


def replies(message):
    """[(uid, attendee address, PARTSTAT)] of the REPLY calendars in the message; None when it has none."""
    found = None
    seen = set()
    for part in calendar_parts(message):
        calendar = _calendar(part)
        if calendar is None or str(calendar.get("method", "")).upper() != "REPLY":
            continue
        found = found or []
        for vevent in calendar.walk("VEVENT"):
            attendees = vevent.get("attendee", [])
            if not isinstance(attendees, list):
                attendees = [attendees]
            for attendee in attendees:
                address = str(attendee)
                if address.lower().startswith("mailto:"):
                    address = address[7:]
                partstat = str(attendee.params.get("PARTSTAT", "")).upper()
                entry = (str(vevent.get("uid", "")), address.strip().lower(), partstat)
                if entry not in seen:  # Google sends the calendar twice (inline and as a file)
                    seen.add(entry)
                    found.append(entry)
    return found


def find_registration(uid, email_key):
    key = ical.uid_key(uid)
    if not key:
        return None
    event = db.session.execute(select(Event).where(Event.uid == key)).scalar_one_or_none()
    if event is not None and event.kind == "workshop":
        query = select(Registration).where(Registration.event_id == event.id)
    else:
        query = select(Registration).where(Registration.uid == key)
    return db.session.execute(query.where(Registration.email_key == email_key)).scalar_one_or_none()


@register(priority=REPLY_PRIORITY)
def calendar_reply(message):
    found = replies(message)
    if found is None:
        return False
    changed = set()
    for uid, address, partstat in found:
        answer = PARTSTAT_ANSWERS.get(partstat)
        registration = find_registration(uid, address)
        if registration is None:
            log.warning("calendar reply for %s from an address that was not invited; ignored", uid)
            continue
        if answer is None:
            log.info("calendar reply with PARTSTAT %r for registration %s; nothing to do", partstat, registration.id)
            continue
        try:
            status = services.respond(registration, answer, via="calendar")
        except services.EventError as error:
            log.info("calendar reply for registration %s not applied: %s", registration.id, error)
            continue
        log.info("calendar reply: registration %s is %s", registration.id, status)
        changed.add(registration.event_id)
    # Committed here, not by the inbound channel, so the mails it queued can be sent right away.
    db.session.commit()
    for event_id in changed:
        try:
            enqueue_senders(event_id)
        except Exception:  # Redis away: the answer is recorded, the reconciler sends the mails later
            log.exception("could not enqueue the mails of event %s", event_id)
    return True
