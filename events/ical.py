"""iCalendar for events: iMIP invitations, updates and cancellations (RFC 5546/6047), and the feed.

A mail's calendar holds one VEVENT for one attendee: the recipient. Its UID
is stable (the workshop's, or the office-hours booking's), SEQUENCE is the
version fixed when the mail was queued, DTSTAMP is UTC, and times carry
TZID=Europe/Berlin with the matching VTIMEZONE. The ORGANIZER is the
service's inbound address, so a calendar's Accept/Decline (METHOD:REPLY)
comes back to `flask inbound`, where `events.inbound` reads it.
"""
from datetime import datetime, timedelta, timezone

import icalendar

from core.urls import base_host, external_url
from events.services import local

PRODID = "-//E-Government-Koordination Baden-Württemberg//egov-reach//DE"


def _berlin_timezone():
    """Europe/Berlin with the EU rules as RRULEs, the form Outlook and Google write themselves."""
    tz = icalendar.Timezone()
    tz.add("tzid", "Europe/Berlin")
    for name, start, offset_from, offset_to, month in (
        ("CEST", datetime(1970, 3, 29, 2, 0), timedelta(hours=1), timedelta(hours=2), 3),
        ("CET", datetime(1970, 10, 25, 3, 0), timedelta(hours=2), timedelta(hours=1), 10),
    ):
        part = icalendar.TimezoneDaylight() if name == "CEST" else icalendar.TimezoneStandard()
        part.add("tzname", name)
        part.add("dtstart", start)
        part.add("tzoffsetfrom", offset_from)
        part.add("tzoffsetto", offset_to)
        part.add("rrule", {"freq": "yearly", "bymonth": month, "byday": "-1su"})
        tz.add_component(part)
    return tz


def _calendar(method=None, name=None):
    calendar = icalendar.Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    if method:
        calendar.add("method", method)
    if name:
        calendar.add("x-wr-calname", name)
        calendar.add("x-wr-timezone", "Europe/Berlin")
    calendar.add_component(_berlin_timezone())
    return calendar


def _address(email, name):
    address = icalendar.vCalAddress(f"mailto:{email}")
    if name:
        address.params["cn"] = icalendar.vText(name)
    return address


def uid(event, registration=None):
    """The calendar UID: per workshop, per booking for office hours."""
    own = registration.uid if event.kind == "office_hours" and registration is not None else event.uid
    return f"{own}@{base_host()}"


def uid_key(value):
    """The stored uid a calendar UID stands for (the part before '@')."""
    return str(value or "").strip().partition("@")[0]


def _description(event):
    lines = [event.description.strip()] if event.description.strip() else []
    if event.online_url:
        lines.append(f"Online-Teilnahme: {event.online_url}")
    return "\n\n".join(lines)


def _when(vevent, start, end):
    vevent.add("dtstart", local(start))
    vevent.add("dtend", local(end))


def _common(vevent, event, meeting_link=True):
    """Title, description, place. The meeting link only goes to attendees, never into the public feed."""
    vevent.add("summary", event.title)
    description = _description(event) if meeting_link else event.description.strip()
    if description:
        vevent.add("description", description)
    if meeting_link:
        vevent.add("location", event.location or event.online_url)
        if event.online_url:
            vevent.add("url", event.online_url)
    else:
        vevent.add("location", event.location or "Online")


def invitation(method, event, slot, registration, sequence, organizer_name, organizer_email, now=None):
    """The calendar of one iMIP mail to `registration`'s attendee: METHOD REQUEST or CANCEL, as bytes."""
    calendar = _calendar(method)
    vevent = icalendar.Event()
    vevent.add("uid", uid(event, registration))
    vevent.add("sequence", sequence or 0)
    vevent.add("dtstamp", now or datetime.now(timezone.utc))
    _when(vevent, slot.starts_at, slot.ends_at)
    _common(vevent, event)
    vevent.add("organizer", _address(organizer_email, organizer_name))
    attendee = _address(registration.email, registration.name)
    attendee.params["role"] = "REQ-PARTICIPANT"
    attendee.params["cutype"] = "INDIVIDUAL"
    attendee.params["partstat"] = "NEEDS-ACTION" if method == "CANCEL" else registration.partstat
    attendee.params["rsvp"] = "FALSE" if method == "CANCEL" else "TRUE"
    vevent.add("attendee", attendee)
    vevent.add("status", "CANCELLED" if method == "CANCEL" else "CONFIRMED")
    vevent.add("transp", "OPAQUE")
    calendar.add_component(vevent)
    return calendar.to_ical()


def feed(district, events, now=None):
    """A subscribable calendar (no METHOD, no attendees) of the district's upcoming public events."""
    calendar = _calendar(name=f"E-Government {district.kind} {district.name}")
    stamp = now or datetime.now(timezone.utc)
    for event in events:
        vevent = icalendar.Event()
        # Not the invitations' UID: a feed entry must not replace an attendee's own copy.
        vevent.add("uid", f"feed-{event.uid}@{base_host()}")
        vevent.add("sequence", event.sequence)
        vevent.add("dtstamp", stamp)
        _when(vevent, event.starts_at, event.ends_at)
        if event.kind == "office_hours":
            vevent.add("rrule", icalendar.vRecur.from_ical(event.rrule))
            vevent.add("categories", "Sprechstunde")
        else:
            vevent.add("categories", "Workshop")
        _common(vevent, event, meeting_link=False)
        if event.public:
            vevent.add("url", external_url("events_public.register", key=event.district_key, id=event.id))
        vevent.add("status", "CONFIRMED")
        calendar.add_component(vevent)
    return calendar.to_ical()

