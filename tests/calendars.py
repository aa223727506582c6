"""Checks every calendar the service sends must pass, shared by the event tests.

Each calendar is read by two parsers other than `icalendar` (vobject and
ical), which fail on what real clients stumble over: bad offsets, missing
time zones, malformed properties.
"""
import re

import icalendar
import vobject
from ical.calendar_stream import IcsCalendarStream

TZID_PARAM = re.compile(r";TZID=(\"[^\"]+\"|[^;:]+)")


def unfold(text):
    return re.sub(r"\n[ \t]", "", text.replace("\r\n", "\n"))


def check_calendar(text, method=None, attendees=1):
    """Parse `text` three ways and check the invariants; returns the icalendar Calendar."""
    vobject.readOne(text)  # raises on anything it can not read
    IcsCalendarStream.calendar_from_ics(text)
    calendar = icalendar.Calendar.from_ical(text)
    flat = unfold(text)
    if method is not None:
        assert str(calendar["METHOD"]) == method
    used = {value.strip('"') for value in TZID_PARAM.findall(flat)}
    defined = {str(tz["TZID"]) for tz in calendar.walk("VTIMEZONE")}
    assert used <= defined, f"TZID without VTIMEZONE: {used - defined}"
    events = calendar.walk("VEVENT")
    assert events
    for vevent in events:
        assert re.search(r"^DTSTAMP:\d{8}T\d{6}Z$", flat, re.MULTILINE), "DTSTAMP must be UTC"
        assert vevent["DTSTAMP"].dt.utcoffset().total_seconds() == 0
        found = vevent.get("ATTENDEE", [])
        found = found if isinstance(found, list) else [found]
        if attendees is not None:
            assert len(found) == attendees
    return calendar


def imip(message, method):
    """Check one mail's iMIP structure (RFC 6047) and its calendar; returns (Calendar, calendar text)."""
    assert message.get_content_type() == "multipart/mixed"
    alternative, attachment = list(message.iter_parts())
    assert alternative.get_content_type() == "multipart/alternative"
    parts = list(alternative.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html", "text/calendar"]
    calendar_part = parts[2]
    assert calendar_part.get_param("method") == method
    assert calendar_part.get_content_charset().upper() == "UTF-8"
    text = calendar_part.get_content()
    assert attachment.get_content_type() == "application/ics"
    assert attachment.get_filename().endswith(".ics")
    assert attachment.get_payload(decode=True).decode("utf-8") == text
    calendar = check_calendar(text, method)
    assert str(calendar["METHOD"]) == calendar_part.get_param("method")
    return calendar, text


def calendar_texts(message):
    """The text of every calendar part in a mail (for mails whose structure is checked elsewhere)."""
    return [part.get_content() if part.get_content_maintype() == "text" else part.get_payload(decode=True).decode()
            for part in message.walk() if part.get_content_type() in ("text/calendar", "application/ics")]


def vevent(calendar):
    return calendar.walk("VEVENT")[0]


def attendee(calendar):
    value = vevent(calendar)["ATTENDEE"]
    return value[0] if isinstance(value, list) else value
