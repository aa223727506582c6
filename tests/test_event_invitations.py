"""Invitations, updates, cancellations, waiting list and reminders as the recipient's
mail client sees them: real SMTP, every calendar checked by two more parsers.
"""
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from core.extensions import db
from events import jobs, services
from events.models import EventMail, Registration
from subscribers.models import utcnow
from tests.calendars import attendee, calendar_texts, check_calendar, imip, vevent

INBOUND = "inbound@localhost"


@pytest.fixture
def people(two_districts, make_subscriber):
    return [
        make_subscriber("anna.beispiel@boeblingen.de", "08115", ags="08115003", name="Anna Beispiel"),
        make_subscriber("joerg.mueller@sindelfingen.de", "08115", ags="08115045", name="Jörg Müller"),
    ]


def deliver(smtp_server, run_jobs, count):
    """Run the queued jobs and return the next `count` messages the server received."""
    before = len(smtp_server.messages)
    run_jobs()
    messages = smtp_server.wait_for(before + count)
    assert len(messages) == before + count, [m["Subject"] for m in messages[before:]]
    return messages[before:]


def send(event_id):
    db.session.commit()
    jobs.enqueue_senders(event_id)


def by_recipient(messages):
    return {str(m["To"].addresses[0].addr_spec): m for m in messages}


def test_invitation_is_an_imip_request_for_exactly_its_recipient(people, make_event, smtp_app, smtp_server,
                                                                 run_jobs):
    event = make_event(description="XRechnung, ZRE und OZG-Plattform")
    assert services.invite(event) == 2
    send(event.id)
    messages = by_recipient(deliver(smtp_server, run_jobs, 2))
    uids = set()
    for person in people:
        message = messages[person.email]
        assert message["Subject"].startswith("Einladung: Workshop E-Rechnung am ")
        calendar, text = imip(message, "REQUEST")
        entry = vevent(calendar)
        uids.add(str(entry["UID"]))
        assert int(entry["SEQUENCE"]) == 0
        assert str(entry["STATUS"]) == "CONFIRMED"
        assert "Parkstraße 16" in str(entry["LOCATION"])
        assert entry["DTSTART"].dt == event.starts_at and str(entry["DTSTART"].params["TZID"]) == "Europe/Berlin"
        assert entry["DTEND"].dt == event.ends_at
        who = attendee(calendar)
        assert str(who).lower() == f"mailto:{person.email}"
        assert who.params["PARTSTAT"] == "NEEDS-ACTION" and who.params["RSVP"] == "TRUE"
        assert str(entry["ORGANIZER"]) == f"mailto:{INBOUND}"
        assert "VTIMEZONE" in text and "TZID:Europe/Berlin" in text
        # Answer links in both bodies, and the list's headers on this list mail.
        plain = message.get_body(("plain",)).get_content()
        assert plain.count("/rsvp/") == 3
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert message["List-Id"]
    assert len(uids) == 1  # one meeting: every attendee holds a copy of the same UID
    assert db.session.execute(select(func.count()).select_from(Registration)).scalar_one() == 2
    # Inviting again reaches no one twice.
    assert services.invite(event) == 0


def test_update_then_cancel_move_and_remove_the_same_entry(people, make_event, smtp_app, smtp_server, run_jobs):
    event = make_event()
    services.invite(event)
    send(event.id)
    first = by_recipient(deliver(smtp_server, run_jobs, 2))[people[0].email]
    invitation, _text = imip(first, "REQUEST")
    uid, n = str(vevent(invitation)["UID"]), int(vevent(invitation)["SEQUENCE"])

    data = services.event_data(event)
    data.starts_at += timedelta(hours=1)
    data.ends_at += timedelta(hours=1)
    data.location = "Rathaus Sindelfingen, Großer Sitzungssaal"
    assert services.update_event(event, data) == 2
    send(event.id)
    update = by_recipient(deliver(smtp_server, run_jobs, 2))[people[0].email]
    assert update["Subject"].startswith("Geändert: ")
    moved, _text = imip(update, "REQUEST")
    assert str(vevent(moved)["UID"]) == uid
    assert int(vevent(moved)["SEQUENCE"]) == n + 1
    assert vevent(moved)["DTSTART"].dt == event.starts_at
    assert str(vevent(moved)["LOCATION"]) == "Rathaus Sindelfingen, Großer Sitzungssaal"

    assert services.cancel_event(event) == 2
    send(event.id)
    cancel = by_recipient(deliver(smtp_server, run_jobs, 2))[people[0].email]
    assert cancel["Subject"].startswith("Abgesagt: ")
    cancelled, _text = imip(cancel, "CANCEL")
    assert str(vevent(cancelled)["UID"]) == uid
    assert int(vevent(cancelled)["SEQUENCE"]) == n + 2
    assert str(vevent(cancelled)["STATUS"]) == "CANCELLED"


def test_a_change_of_description_only_sends_nothing(people, make_event, smtp_app):
    event = make_event()
    services.invite(event)
    db.session.commit()
    data = services.event_data(event)
    data.description = "Neue Unterlagen folgen."
    assert services.update_event(event, data) == 0
    assert event.sequence == 0


def test_online_event_carries_the_meeting_link(people, make_event, smtp_app, smtp_server, run_jobs):
    event = make_event(location="", online_url="https://konferenz.bw.example/r/e-rechnung")
    services.invite(event)
    send(event.id)
    calendar, _text = imip(deliver(smtp_server, run_jobs, 2)[0], "REQUEST")
    assert str(vevent(calendar)["LOCATION"]) == "https://konferenz.bw.example/r/e-rechnung"
    assert str(vevent(calendar)["URL"]) == "https://konferenz.bw.example/r/e-rechnung"


def test_waiting_list_decline_and_promotion(people, make_event, smtp_app, smtp_server, run_jobs):
    anna, joerg = people
    event = make_event(capacity=1)
    services.invite(event)
    send(event.id)
    deliver(smtp_server, run_jobs, 2)
    first, second = sorted(services.holders(event), key=lambda r: r.email != anna.email)

    assert services.respond(first, "accept") == "confirmed"
    assert services.respond(second, "accept") == "waiting"
    send(event.id)
    mails = by_recipient(deliver(smtp_server, run_jobs, 2))
    confirmation, _text = imip(mails[anna.email], "REQUEST")
    assert attendee(confirmation).params["PARTSTAT"] == "ACCEPTED"
    assert int(vevent(confirmation)["SEQUENCE"]) == 1
    waiting = mails[joerg.email]
    assert waiting["Subject"].startswith("Warteliste: ")
    assert "Platz 1" in waiting.get_body(("plain",)).get_content()
    assert calendar_texts(waiting) == []

    assert services.respond(first, "decline") == "declined"
    send(event.id)
    mails = by_recipient(deliver(smtp_server, run_jobs, 2))
    cancel, _text = imip(mails[anna.email], "CANCEL")
    assert int(vevent(cancel)["SEQUENCE"]) == 2  # after her confirmation's 1: her copy moves forward
    promotion, _text = imip(mails[joerg.email], "REQUEST")
    assert mails[joerg.email]["Subject"].startswith("Platz frei")
    assert attendee(promotion).params["PARTSTAT"] == "ACCEPTED"
    db.session.refresh(second)
    assert second.status == "confirmed" and second.waiting_position is None

    # Anna changes her mind: the seat is gone, she waits; her new copy is newer than the CANCEL.
    assert services.respond(first, "accept") == "waiting"
    assert first.sequence == 2  # a waiting notice carries no calendar


def test_removed_attendee_gets_a_cancel_for_their_copy(people, make_event, smtp_app, smtp_server, run_jobs):
    event = make_event()
    services.invite(event)
    send(event.id)
    deliver(smtp_server, run_jobs, 2)
    registration = services.holders(event)[0]
    services.remove(registration)
    send(event.id)
    (mail,) = deliver(smtp_server, run_jobs, 1)
    assert mail["Subject"].startswith("Anmeldung aufgehoben: ")
    calendar, _text = imip(mail, "CANCEL")
    assert int(vevent(calendar)["SEQUENCE"]) == 1
    assert str(attendee(calendar)).lower() == f"mailto:{registration.email}"


def test_office_hours_invite_with_booking_link_and_one_uid_per_booking(people, make_event, smtp_app, smtp_server,
                                                                       run_jobs):
    anna, joerg = people
    event = make_event(kind="office_hours")
    assert len(event.slots) == 3 * 6  # three Tuesdays, 09:00–12:00 in 30-minute slots
    assert services.invite(event) == 2
    send(event.id)
    invitations = by_recipient(deliver(smtp_server, run_jobs, 2))
    assert calendar_texts(invitations[anna.email]) == []
    assert "/book/" in invitations[anna.email].get_body(("plain",)).get_content()

    first, second = event.slots[0], event.slots[1]
    services.book(event, first, anna)
    services.book(event, second, joerg)
    send(event.id)
    mails = by_recipient(deliver(smtp_server, run_jobs, 2))
    calendars = {email: imip(message, "REQUEST")[0] for email, message in mails.items()}
    assert vevent(calendars[anna.email])["DTSTART"].dt == first.starts_at
    assert vevent(calendars[anna.email])["DTEND"].dt - vevent(calendars[anna.email])["DTSTART"].dt == \
        timedelta(minutes=30)
    assert vevent(calendars[joerg.email])["DTSTART"].dt == second.starts_at
    uids = {str(vevent(c)["UID"]) for c in calendars.values()}
    assert len(uids) == 2 and not any(uid.startswith(event.uid) for uid in uids)


def test_reminder_is_due_once_and_again_after_a_move(people, make_event, smtp_app, smtp_server, run_jobs):
    soon = utcnow().replace(minute=0, second=0, microsecond=0) + timedelta(days=1, hours=3)
    event = make_event(starts_at=soon, reminder_hours=30)
    services.invite(event)
    db.session.commit()
    registration = services.holders(event)[0]
    # Accepted just now, inside the reminder window: the confirmation is the reminder.
    services.respond(registration, "accept")
    db.session.commit()
    assert services.queue_due_reminders() == 0

    data = services.event_data(event)
    data.reminder_hours = 24
    services.update_event(event, data)
    data = services.event_data(event)
    data.starts_at, data.ends_at = soon - timedelta(hours=4), soon - timedelta(hours=1)
    services.update_event(event, data)
    db.session.commit()
    # The reconciler of every worker runs this; only one reminder results.
    assert services.queue_due_reminders() == 1
    assert services.queue_due_reminders() == 0
    jobs.reconcile()
    mails = run_and_collect(smtp_server, run_jobs)
    reminders = [m for m in mails if m["Subject"].startswith("Erinnerung: ")]
    assert len(reminders) == 1
    calendar, _text = imip(reminders[0], "REQUEST")
    assert vevent(calendar)["DTSTART"].dt == event.starts_at
    assert int(vevent(calendar)["SEQUENCE"]) == registration.sequence
    assert db.session.execute(
        select(func.count()).where(EventMail.kind == "reminder")
    ).scalar_one() == 1


def run_and_collect(smtp_server, run_jobs):
    before = len(smtp_server.messages)
    run_jobs()
    queued = db.session.execute(select(func.count()).where(EventMail.status == "sent")).scalar_one()
    return smtp_server.wait_for(queued)[before:]


def test_lost_redis_delays_event_mail_but_never_loses_it(people, make_event, smtp_app, smtp_server, run_jobs):
    from core.queue import get_redis

    event = make_event()
    services.invite(event)
    db.session.commit()
    get_redis().flushdb()  # the job was never enqueued, or Redis was lost
    jobs.reconcile()
    deliver(smtp_server, run_jobs, 2)
    assert db.session.execute(select(func.count()).where(EventMail.status == "sent")).scalar_one() == 2
    jobs.reconcile()
    run_jobs()
    assert len(smtp_server.messages) == 2


def test_every_calendar_of_a_whole_story_parses(people, make_event, smtp_app, smtp_server, run_jobs):
    """Invite, accept, decline, update, cancel: whatever was sent passes the calendar checks."""
    event = make_event(capacity=1, online_url="https://konferenz.bw.example/r/1")
    services.invite(event)
    first, second = services.holders(event)
    services.respond(first, "accept")
    services.respond(second, "tentative")
    services.respond(first, "decline")
    data = services.event_data(event)
    data.title = "Workshop E-Rechnung (neuer Termin)"
    services.update_event(event, data)
    services.cancel_event(event)
    send(event.id)
    count = db.session.execute(select(func.count()).select_from(EventMail)).scalar_one()
    messages = deliver(smtp_server, run_jobs, count)
    checked = 0
    for message in messages:
        for text in calendar_texts(message):
            check_calendar(text, attendees=1)
            checked += 1
    assert count == 8
    assert checked == 2 * (count - 1)  # inline and as a file; the waiting notice has none


def test_office_hours_subject_names_the_kind_once():
    from types import SimpleNamespace

    from events.mail import subject

    slot = SimpleNamespace(starts_at=utcnow())
    for title, expected in (("DMS und E-Akte", "Sprechstunde: DMS und E-Akte – Termin buchen"),
                            ("Sprechstunde DMS", "Sprechstunde DMS – Termin buchen"),
                            ("sprechstunde E-Rechnung", "sprechstunde E-Rechnung – Termin buchen")):
        event = SimpleNamespace(title=title, kind="office_hours")
        assert subject("invitation", event, slot) == expected


def test_the_event_page_speaks_of_changes_not_sequence(client, people, make_event, make_user, sign_in):
    event = make_event()
    sign_in(make_user())
    page = client.get(f"/d/08115/events/{event.id}").get_data(as_text=True)
    assert "SEQUENCE" not in page and "Änderungen an den Kalendereinträgen" in page
