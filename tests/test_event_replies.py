"""Calendar replies: Accept/Tentative/Decline pressed in Outlook or Google Calendar come
back as iTIP REPLY mails through `flask inbound` (stdin and LMTP)."""
import email.policy
import smtplib
from email.message import EmailMessage

import pytest
from sqlalchemy import select

from core.extensions import db
from core.inbound import handle_message, start_lmtp
from events import services
from events.models import EventMail, Registration
from tests.conftest import free_port
from tests.test_district_isolation import all_stored


def reply_calendar(uid, address, partstat, name="Anna Beispiel", sequence=0, organizer=False):
    lines = [
        "BEGIN:VCALENDAR", "PRODID:Microsoft Exchange Server 2010", "VERSION:2.0", "METHOD:REPLY",
        "BEGIN:VTIMEZONE", "TZID:W. Europe Standard Time",
        "BEGIN:STANDARD", "DTSTART:16010101T030000", "TZOFFSETFROM:+0200", "TZOFFSETTO:+0100",
        "RRULE:FREQ=YEARLY;INTERVAL=1;BYDAY=-1SU;BYMONTH=10", "END:STANDARD",
        "BEGIN:DAYLIGHT", "DTSTART:16010101T020000", "TZOFFSETFROM:+0100", "TZOFFSETTO:+0200",
        "RRULE:FREQ=YEARLY;INTERVAL=1;BYDAY=-1SU;BYMONTH=3", "END:DAYLIGHT", "END:VTIMEZONE",
        "BEGIN:VEVENT",
        f'ATTENDEE;PARTSTAT={partstat};CN="{name}":mailto:{address}',
        "SUMMARY;LANGUAGE=de-DE:Zugesagt: Workshop E-Rechnung",
        "DTSTART;TZID=W. Europe Standard Time:20261203T090000",
        "DTEND;TZID=W. Europe Standard Time:20261203T120000",
        f"UID:{uid}", "CLASS:PUBLIC", "PRIORITY:5", "DTSTAMP:20261121T101500Z", "TRANSP:OPAQUE",
        f"SEQUENCE:{sequence}", "LOCATION;LANGUAGE=de-DE:Landratsamt Böblingen",
    ]
    if organizer:
        lines.append("ORGANIZER;CN=E-Government-Koordination:mailto:inbound@localhost")
    lines += ["END:VEVENT", "END:VCALENDAR", ""]
    return "\r\n".join(lines)


def outlook_reply(uid, address, partstat, sender=None, **kwargs):
    """As Outlook sends it: multipart/alternative with `text/calendar; method=REPLY`, no ORGANIZER."""
    message = EmailMessage()
    message["From"] = sender or f"Anna Beispiel <{address}>"
    message["To"] = "inbound@localhost"
    message["Subject"] = "Zugesagt: Workshop E-Rechnung"
    message.set_content("Zugesagt")
    message.add_alternative("<p>Zugesagt</p>", subtype="html")
    message.add_alternative(reply_calendar(uid, address, partstat, **kwargs), subtype="calendar",
                            params={"method": "REPLY"})
    return message.as_bytes(policy=email.policy.SMTP)


def google_reply(uid, address, partstat, sender=None, **kwargs):
    """As Google sends it: `text/calendar` without the method parameter, plus an application/ics file."""
    calendar = reply_calendar(uid, address, partstat, **kwargs).replace("Microsoft Exchange Server 2010",
                                                                         "-//Google Inc//Google Calendar 70.9054//EN")
    message = EmailMessage()
    message["From"] = sender or "Google Calendar <calendar-notification@google.com>"
    message["Reply-To"] = address
    message["To"] = "inbound@localhost"
    message["Subject"] = "Invitation: Workshop E-Rechnung - accepted"
    message.set_content("Anna Beispiel has accepted this invitation.")
    message.add_alternative(calendar, subtype="calendar")
    message.add_attachment(calendar.encode("utf-8"), maintype="application", subtype="ics", filename="invite.ics")
    return message.as_bytes(policy=email.policy.SMTP)


@pytest.fixture
def invited(two_districts, make_subscriber, make_event):
    make_subscriber("anna.beispiel@boeblingen.de", "08115", ags="08115003", name="Anna Beispiel")
    make_subscriber("joerg.mueller@sindelfingen.de", "08115", ags="08115045", name="Jörg Müller")
    event = make_event()
    services.invite(event)
    db.session.commit()
    anna, joerg = sorted(services.holders(event), key=lambda r: r.email)
    return event, anna, joerg


def calendar_uid(event):
    from events import ical

    return ical.uid(event)


def status_of(registration):
    db.session.expire_all()
    row = db.session.get(Registration, registration.id)
    return row.status, row.partstat


@pytest.mark.parametrize("shape", [outlook_reply, google_reply])
def test_reply_accepts_the_right_registration(app, invited, shape):
    event, anna, joerg = invited
    # Upper case in the address, a From that is not the attendee: matched by UID and ATTENDEE only.
    assert handle_message(shape(calendar_uid(event), "Anna.Beispiel@Boeblingen.de", "ACCEPTED")) == "calendar_reply"
    assert status_of(anna) == ("confirmed", "ACCEPTED")
    assert status_of(joerg) == ("invited", "NEEDS-ACTION")
    # A calendar that answered needs no calendar back.
    assert db.session.execute(select(EventMail).where(EventMail.kind == "confirmation")).first() is None


def test_tentative_and_decline_by_reply(app, invited):
    event, anna, joerg = invited
    handle_message(google_reply(calendar_uid(event), anna.email, "TENTATIVE"))
    assert status_of(anna) == ("confirmed", "TENTATIVE")
    handle_message(outlook_reply(calendar_uid(event), anna.email, "DECLINED", organizer=True))
    assert status_of(anna) == ("declined", "DECLINED")
    cancel = db.session.execute(select(EventMail).where(EventMail.kind == "decline")).scalar_one()
    assert cancel.method == "CANCEL" and cancel.registration_id == anna.id


def test_reply_when_full_puts_on_the_waiting_list(app, two_districts, make_subscriber, make_event):
    make_subscriber("anna.beispiel@boeblingen.de", "08115")
    make_subscriber("joerg.mueller@sindelfingen.de", "08115", ags="08115045")
    event = make_event(capacity=1)
    services.invite(event)
    db.session.commit()
    anna, joerg = sorted(services.holders(event), key=lambda r: r.email)
    handle_message(outlook_reply(calendar_uid(event), joerg.email, "ACCEPTED"))
    handle_message(outlook_reply(calendar_uid(event), anna.email, "ACCEPTED"))
    assert status_of(joerg)[0] == "confirmed"
    assert status_of(anna)[0] == "waiting"
    handle_message(google_reply(calendar_uid(event), joerg.email, "DECLINED"))
    assert status_of(anna)[0] == "confirmed"


@pytest.mark.parametrize("shape", [outlook_reply, google_reply])
def test_reply_from_an_address_that_was_not_invited_changes_nothing(app, invited, shape, caplog):
    event, anna, _joerg = invited
    before = all_stored()
    # The invited person's From and UID, but another attendee: not a reply of hers.
    data = shape(calendar_uid(event), "mallory@example.org", "ACCEPTED", sender=f"Anna <{anna.email}>")
    assert handle_message(data) == "calendar_reply"
    assert all_stored() == before
    assert "not invited" in caplog.text


def test_reply_for_an_unknown_uid_or_without_reply_method_changes_nothing(app, invited):
    event, anna, _joerg = invited
    before = all_stored()
    handle_message(outlook_reply("0123456789abcdef@localhost", anna.email, "ACCEPTED"))
    request = outlook_reply(calendar_uid(event), anna.email, "ACCEPTED").replace(b"METHOD:REPLY", b"METHOD:REQUEST")
    assert handle_message(request) is None
    assert handle_message(b"Subject: hello\r\n\r\nBEGIN:VCALENDAR garbage") is None
    broken = outlook_reply(calendar_uid(event), anna.email, "ACCEPTED").replace(b"END:VEVENT", b"")
    handle_message(broken)
    assert all_stored() == before


def test_reply_to_a_cancelled_event_changes_nothing(app, invited):
    event, anna, _joerg = invited
    services.cancel_event(event)
    db.session.commit()
    before = all_stored()
    handle_message(outlook_reply(calendar_uid(event), anna.email, "ACCEPTED"))
    assert all_stored() == before


def test_office_hours_reply_is_matched_by_the_booking_uid(app, two_districts, make_subscriber, make_event):
    from events import ical

    anna = make_subscriber("anna.beispiel@boeblingen.de", "08115")
    event = make_event(kind="office_hours")
    booking = services.book(event, event.slots[2], anna)
    db.session.commit()
    # The series' UID is not the booking's: it matches nothing.
    handle_message(outlook_reply(ical.uid(event), anna.email, "DECLINED"))
    assert status_of(booking)[0] == "confirmed"
    handle_message(outlook_reply(ical.uid(event, booking), anna.email, "DECLINED"))
    assert status_of(booking)[0] == "declined"


def test_reply_through_the_stdin_command(app, invited):
    event, anna, _joerg = invited
    result = app.test_cli_runner().invoke(args=["inbound"], input=google_reply(calendar_uid(event), anna.email,
                                                                                 "ACCEPTED"))
    assert result.exit_code == 0, result.output
    assert "calendar_reply" in result.output
    assert status_of(anna)[0] == "confirmed"


def test_reply_through_lmtp(app, invited):
    event, anna, _joerg = invited
    port = free_port()
    controller = start_lmtp(app, port=port)
    try:
        client = smtplib.LMTP("127.0.0.1", port)
        client.sendmail("anna.beispiel@boeblingen.de", ["inbound@localhost"],
                        outlook_reply(calendar_uid(event), anna.email, "ACCEPTED"))
        client.quit()
    finally:
        controller.stop()
    assert status_of(anna)[0] == "confirmed"
