"""The mails about events: their text, and their bytes as iMIP messages (RFC 6047).

A mail with a calendar is

    multipart/mixed
      multipart/alternative
        text/plain
        text/html
        text/calendar; method=REQUEST|CANCEL; charset=UTF-8
      application/ics; name="einladung.ics"   (the same calendar, as a file)

which is what Outlook, Google, Apple Mail and Thunderbird all turn into a
calendar entry with Accept/Decline. The attachment is `application/ics`, as
Google sends it, so that a client does not process the calendar twice.
Mails without a calendar (waiting list, office-hours invitation with its
booking link) are a plain multipart/alternative.
"""
import base64
import secrets

from flask import render_template

from core.mail import render_mjml, service_headers
from core.tokens import make_token
from core.urls import base_host, external_url
from directory.identity import district_sender, inbound_address, mail_context
from events import ical
from events.services import local
from newsletter import message
from subscribers.mail import list_id, subscriber_links

WEEKDAYS = ("Montag", "Dienstag", "Mittwoch", "Donnerstag", "Freitag", "Samstag", "Sonntag")
CRLF = b"\r\n"


def format_day(value):
    """'Dienstag, 01.12.2026' in Europe/Berlin."""
    value = local(value)
    return f"{WEEKDAYS[value.weekday()]}, {value:%d.%m.%Y}"


def format_when(start, end):
    """'Dienstag, 01.12.2026, 09:00–12:00 Uhr' in Europe/Berlin."""
    start_local, end_local = local(start), local(end)
    if start_local.date() == end_local.date():
        return f"{format_day(start)}, {start_local:%H:%M}–{end_local:%H:%M} Uhr"
    return f"{format_day(start)}, {start_local:%H:%M} Uhr – {format_day(end)}, {end_local:%H:%M} Uhr"


def format_date(value):
    return f"{local(value):%d.%m.%Y}"


def subject(kind, event, slot, registration=None):
    title, day = event.title, format_date(slot.starts_at)
    if kind == "invitation" and event.kind == "office_hours" and registration is None:
        # "Sprechstunde: Sprechstunde DMS" says it twice.
        kind_first = "" if title.casefold().startswith("sprechstunde") else "Sprechstunde: "
        return f"{kind_first}{title} – Termin buchen"
    if kind == "decline" and registration is not None and registration.status == "removed":
        return f"Anmeldung aufgehoben: {title} am {day}"
    return {
        "invitation": f"Einladung: {title} am {day}",
        "confirmation": f"Anmeldung bestätigt: {title} am {day}",
        "waiting": f"Warteliste: {title} am {day}",
        "promotion": f"Platz frei – Sie sind angemeldet: {title} am {day}",
        "update": f"Geändert: {title} am {day}",
        "cancel": f"Abgesagt: {title} am {day}",
        "decline": f"Abmeldung bestätigt: {title} am {day}",
        "reminder": f"Erinnerung: {title} am {day}",
    }[kind]


def rsvp_token(registration):
    return make_token("event-rsvp", {"r": registration.public_id})


def rsvp_links(registration):
    token = rsvp_token(registration)
    return {answer: external_url("events_public.rsvp", token=token, answer=answer)
            for answer in ("accept", "tentative", "decline")}


def booking_url(event, subscriber):
    token = make_token("event-booking", {"e": event.id, "s": subscriber.public_id})
    return external_url("events_public.book", token=token)


def _part(content_type, data, extra=""):
    body = base64.encodebytes(data).replace(b"\n", CRLF)
    return f"Content-Type: {content_type}\r\nContent-Transfer-Encoding: base64\r\n{extra}\r\n".encode("ascii") + body


def build(headers, text, html, calendar=None, method=None):
    """RFC 5322 bytes: the alternative of text and HTML, with the iMIP calendar and its file when given."""
    if calendar is None:
        return message.build(headers, text, html)
    mixed, alternative = "=_m" + secrets.token_hex(12), "=_a" + secrets.token_hex(12)
    head = "".join(f"{name}: {value}\r\n" for name, value in headers)
    head += f'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="{mixed}"\r\n\r\n'
    filename = "absage.ics" if method == "CANCEL" else "einladung.ics"
    parts = [
        head.encode("ascii"),
        f"--{mixed}\r\nContent-Type: multipart/alternative; boundary=\"{alternative}\"\r\n\r\n".encode("ascii"),
        f"--{alternative}\r\n".encode("ascii"), _part("text/plain; charset=utf-8", text.encode("utf-8")), CRLF,
        f"--{alternative}\r\n".encode("ascii"), _part("text/html; charset=utf-8", html.encode("utf-8")), CRLF,
        f"--{alternative}\r\n".encode("ascii"),
        _part(f"text/calendar; method={method}; charset=UTF-8", calendar), CRLF,
        f"--{alternative}--\r\n".encode("ascii"), CRLF,
        f"--{mixed}\r\n".encode("ascii"),
        _part(f'application/ics; name="{filename}"', calendar,
              f'Content-Disposition: attachment; filename="{filename}"\r\n'), CRLF,
        f"--{mixed}--\r\n".encode("ascii"),
    ]
    return b"".join(parts)


class EventMailer:
    """What a sending job prepares once per event: sender, organizer, layout context."""

    def __init__(self, event):
        district = event.district
        self.event = event
        self.context = mail_context(district)
        coordinator = self.context["coordinator"]
        sender_name, sender_email = district_sender(district)
        self.organizer = ((coordinator.name if coordinator and coordinator.name else sender_name), inbound_address())
        self.envelope_from = inbound_address()
        self.fixed_headers = [("From", message.address(sender_name, sender_email))]
        if coordinator:
            self.fixed_headers.append(("Reply-To", coordinator.email))
        self.list_id = list_id(district)
        self.domain = base_host()
        # Every event mail is of the outbox's kind "invitation" (see core.mail.KINDS).
        self.service_headers = service_headers("invitation", district.key)

    def build(self, mail, registration=None, subscriber=None):
        """(recipient, Message-ID, bytes) of one event mail."""
        event = self.event
        if registration is not None:
            slot, recipient, name = registration.slot, registration.email, registration.name
        else:
            slot, recipient, name = event.slots[0], subscriber.email, subscriber.name
        context = {
            **self.context, "kind": mail.kind, "event": event, "slot": slot, "registration": registration,
            "name": name, "when": format_when(slot.starts_at, slot.ends_at),
            "series_when": format_when(event.starts_at, event.ends_at), "links": None,
        }
        if subscriber is not None:
            context["links"] = subscriber_links(subscriber)
        if registration is not None and mail.kind not in ("cancel", "decline"):
            context["rsvp"] = rsvp_links(registration)
        if registration is None:
            context["booking_url"] = booking_url(event, subscriber)
        if event.public and event.status == "published":
            context["public_url"] = external_url("events_public.register", key=event.district_key, id=event.id)
        title = subject(mail.kind, event, slot, registration)
        text = render_template("email/event.txt", subject=title, **context)
        html = render_mjml("email/event.mjml", subject=title, **context)
        msg_id = message.message_id(self.domain)
        headers = [
            *self.fixed_headers,
            ("To", message.address(name, recipient)),
            ("Subject", message.encode_header(title)),
            ("Date", message.date_header()),
            ("Message-ID", msg_id),
            *self.service_headers,
        ]
        if mail.kind == "invitation" and subscriber is not None:
            # Invitations are list mail: the list's headers and one-click unsubscribe.
            links = context["links"]
            mailto = f"mailto:{inbound_address()}?subject=unsubscribe%20{links['unsubscribe'].rsplit('/', 1)[1]}"
            headers += [
                ("List-Id", self.list_id),
                ("List-Unsubscribe", f"<{links['unsubscribe']}>, <{mailto}>"),
                ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
            ]
        calendar = None
        if mail.method:
            calendar = ical.invitation(mail.method, event, slot, registration, mail.sequence, *self.organizer)
        return recipient, msg_id, build(headers, text, html, calendar, mail.method)
