"""The coordinator pages for events: create workshops and office hours through the
form, refuse wrong input at its field, edit (update mails with the next
SEQUENCE), invite, cancel, remove with promotion from the waiting list,
check-in, the CSV export, roles and district isolation."""
import csv
import io
import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from core.extensions import db
from events import services
from events.models import Event, EventMail, Registration
from events.services import local
from subscribers.models import utcnow
from tests.conftest import next_local


@pytest.fixture
def people(two_districts, make_subscriber, make_topic):
    topic = make_topic("E-Rechnung")
    return [
        make_subscriber("anna.beispiel@boeblingen.de", "08115", ags="08115003", name="Anna Beispiel", topics=[topic]),
        make_subscriber("joerg.mueller@sindelfingen.de", "08115", ags="08115045", name="Jörg Müller"),
    ]


@pytest.fixture
def coordinator(make_user, sign_in):
    user = make_user()
    sign_in(user)
    return user


def events_count():
    return db.session.execute(select(func.count()).select_from(Event)).scalar_one()


def mails(event_id, kind=None):
    query = select(EventMail).where(EventMail.event_id == event_id).order_by(EventMail.id)
    if kind:
        query = query.where(EventMail.kind == kind)
    db.session.expire_all()
    return db.session.execute(query).scalars().all()


def registrations(event_id):
    db.session.expire_all()
    return db.session.execute(
        select(Registration).where(Registration.event_id == event_id).order_by(Registration.id)
    ).scalars().all()


def field_error(html, field):
    match = re.search(rf'<p class="field-error" id="{field}-error">(.*?)</p>', html, re.DOTALL)
    return match and match.group(1).strip()


def a_week_ahead(weekday=3):
    """The local date of the next `weekday` a week or more ahead (the form takes local dates)."""
    return local(next_local(weekday, 9)).date()


def workshop_form(**fields):
    data = {
        "title": "Workshop E-Rechnung",
        "description": "XRechnung und ZRE",
        "location": "Landratsamt Böblingen, Parkstraße 16",
        "online_url": "",
        "date": a_week_ahead().isoformat(),
        "starts_at": "09:00",
        "ends_at": "12:30",
        "capacity": "20",
        "public": "y",
        "reminder_hours": "24",
    }
    data.update(fields)
    return data


def office_hours_form(**fields):
    data = workshop_form(title="Sprechstunde Digitalisierung", date=a_week_ahead(1).isoformat(), ends_at="12:00",
                         capacity="1", rrule="FREQ=WEEKLY;INTERVAL=2;BYDAY=TU;COUNT=6", slot_minutes="30")
    data.update(fields)
    return data


def as_form(event, **fields):
    """The edit form's fields as the page fills them for `event`, with changes."""
    start, end = local(event.starts_at), local(event.ends_at)
    data = workshop_form(title=event.title, description=event.description, location=event.location,
                         online_url=event.online_url, date=start.date().isoformat(), starts_at=f"{start:%H:%M}",
                         ends_at=f"{end:%H:%M}", capacity="" if event.capacity is None else str(event.capacity),
                         reminder_hours=str(event.reminder_hours))
    data.update(fields)
    return data


# --- create -------------------------------------------------------------------------------


def test_create_a_workshop_through_the_form(people, coordinator, client):
    page = client.get("/d/08115/events/new?kind=workshop")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'name="starts_at"' in html and 'name="rrule"' not in html
    topic_id = people[0].topics[0].id
    response = client.post("/d/08115/events/new?kind=workshop",
                           data=workshop_form(capacity="", topics=[str(topic_id)], municipalities=["08115003"]))
    assert response.status_code == 302, response.get_data(as_text=True)
    event = db.session.execute(select(Event)).scalar_one()
    assert response.headers["Location"].endswith(f"/d/08115/events/{event.id}")
    assert (event.kind, event.status, event.capacity, event.created_by_id) == ("workshop", "draft", None,
                                                                               coordinator.id)
    start = local(event.starts_at)
    assert (start.date(), f"{start:%H:%M}", f"{local(event.ends_at):%H:%M}") == (a_week_ahead(), "09:00", "12:30")
    assert len(event.slots) == 1 and event.slots[0].starts_at == event.starts_at
    assert [t.id for t in event.topics] == [topic_id] and [m.ags for m in event.municipalities] == ["08115003"]
    detail = client.get(f"/d/08115/events/{event.id}").get_data(as_text=True)
    assert "Workshop E-Rechnung" in detail and "Entwurf" in detail and f"{start:%d.%m.%Y}" in detail
    assert "Die Einladung geht an 1 Person" in detail  # Anna: the topic and the municipality


def test_create_office_hours_makes_the_slots(people, coordinator, client):
    page = client.get("/d/08115/events/new?kind=office_hours").get_data(as_text=True)
    assert 'name="rrule"' in page and "FREQ=WEEKLY;INTERVAL=2;BYDAY=TU;COUNT=6" in page
    response = client.post("/d/08115/events/new?kind=office_hours", data=office_hours_form(capacity=""))
    assert response.status_code == 302, response.get_data(as_text=True)
    event = db.session.execute(select(Event)).scalar_one()
    assert event.kind == "office_hours" and event.slot_minutes == 30 and event.capacity == 1
    # six Tuesdays, 09:00–12:00 cut into 30 minutes: 36 slots, each for one municipality
    assert len(event.slots) == 36
    assert {slot.capacity for slot in event.slots} == {1}
    days = sorted({local(slot.starts_at).date() for slot in event.slots})
    assert len(days) == 6 and all(day.weekday() == 1 for day in days)
    assert all((b - a).days == 14 for a, b in zip(days, days[1:]))
    assert {f"{local(slot.starts_at):%H:%M}" for slot in event.slots} == {
        "09:00", "09:30", "10:00", "10:30", "11:00", "11:30"}
    listing = client.get("/d/08115/events").get_data(as_text=True)
    assert "Sprechstunde Digitalisierung" in listing and "36 buchbare Termine" in listing


def past_date():
    return (local(utcnow()) - timedelta(days=2)).date().isoformat()


@pytest.mark.parametrize("form, field, message", [
    (workshop_form(starts_at="14:00", ends_at="10:00"), "ends_at", "Das Ende muss nach dem Beginn liegen."),
    (workshop_form(starts_at="10:00", ends_at="10:00"), "ends_at", "Das Ende muss nach dem Beginn liegen."),
    (None, "starts_at", "Der Beginn muss in der Zukunft liegen."),
    (workshop_form(location="", online_url=""), "location", "Bitte einen Ort oder einen Link"),
    (workshop_form(location="", online_url="javascript:alert(1)"), "online_url", "muss mit https:// beginnen"),
    (workshop_form(date="2026-02-30"), "date", "Kein gültiges Datum."),
    (workshop_form(date="morgen"), "date", "Kein gültiges Datum."),
    (workshop_form(date="0001-01-01", starts_at="00:30"), "date", "Bitte ein gültiges Datum angeben."),
    (workshop_form(date="1999-12-31"), "starts_at", "Der Beginn muss in der Zukunft liegen."),
    (workshop_form(starts_at="25:00"), "starts_at", "gültige Uhrzeit"),
    (workshop_form(capacity="zwanzig"), "capacity", "ganze Zahl"),
    (workshop_form(capacity="0"), "capacity", "zwischen 1 und 100000"),
    (workshop_form(title="  "), "title", "Bitte einen Titel angeben."),
    (workshop_form(reminder_hours="-1"), "reminder_hours", "Die Erinnerung muss zwischen 0 und"),
])
def test_wrong_workshop_input_is_refused_at_its_field(people, coordinator, client, form, field, message):
    form = form or workshop_form(date=past_date())
    response = client.post("/d/08115/events/new?kind=workshop", data=form)
    assert 400 <= response.status_code < 500
    html = response.get_data(as_text=True)
    assert message in (field_error(html, field) or ""), html
    assert f'aria-describedby="{field}-error"' in html or f'{field}-hint {field}-error' in html
    assert events_count() == 0


@pytest.mark.parametrize("fields, field, message", [
    ({"rrule": "FREQ=SOMETIMES;COUNT=3"}, "rrule", "Die Wiederholungsregel ist ungültig."),
    ({"rrule": "FREQ=WEEKLY;BYDAY=TU"}, "rrule", "braucht ein Ende"),
    ({"rrule": ""}, "rrule", "Bitte eine Wiederholungsregel angeben"),
    ({"rrule": "FREQ=DAILY;COUNT=500"}, "rrule", "mehr als 200 Termine"),
    ({"slot_minutes": "240"}, "slot_minutes", "Die Länge eines Termins"),
    ({"slot_minutes": "halbe Stunde"}, "slot_minutes", "ganze Zahl"),
])
def test_wrong_office_hours_input_is_refused_at_its_field(people, coordinator, client, fields, field, message):
    response = client.post("/d/08115/events/new?kind=office_hours", data=office_hours_form(**fields))
    assert 400 <= response.status_code < 500
    assert message in (field_error(response.get_data(as_text=True), field) or "")
    assert events_count() == 0


def test_unknown_kind_or_foreign_topic_is_refused(people, coordinator, client, make_topic):
    assert client.get("/d/08115/events/new?kind=party").status_code == 404
    foreign = make_topic("OZG", "08116")
    response = client.post("/d/08115/events/new?kind=workshop", data=workshop_form(topics=[str(foreign.id)]))
    assert response.status_code == 422
    assert "Unbekanntes Thema" in field_error(response.get_data(as_text=True), "topics")
    response = client.post("/d/08115/events/new?kind=workshop", data=workshop_form(municipalities=["08116019"]))
    assert response.status_code == 422
    assert "Unbekannte Gemeinde" in field_error(response.get_data(as_text=True), "municipalities")
    assert events_count() == 0


# --- edit ---------------------------------------------------------------------------------------


def test_editing_the_time_sends_updates_with_the_next_sequence(people, coordinator, client, make_event):
    event = make_event()
    assert services.invite(event) == 2
    db.session.commit()
    invitations = mails(event.id, "invitation")
    assert {m.sequence for m in invitations} == {0}
    form = as_form(event, starts_at="10:00", ends_at="13:00")
    response = client.post(f"/d/08115/events/{event.id}/edit", data=form)
    assert response.status_code == 302, response.get_data(as_text=True)
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "2 Personen erhalten die geänderte Einladung" in page
    updates = mails(event.id, "update")
    assert len(updates) == 2
    assert {m.sequence for m in updates} == {1} and {m.method for m in updates} == {"REQUEST"}
    assert {m.registration_id for m in updates} == {r.id for r in registrations(event.id)}
    event = db.session.get(Event, event.id)
    assert event.sequence == 1 and f"{local(event.starts_at):%H:%M}" == "10:00"
    assert local(event.slots[0].starts_at) == local(event.starts_at)
    # Saving again without a change sends nothing.
    response = client.post(f"/d/08115/events/{event.id}/edit", data=as_form(event))
    assert response.status_code == 302
    assert len(mails(event.id, "update")) == 2


def test_editing_only_the_description_of_a_running_event(people, coordinator, client, make_event):
    # made through the API with seconds, started a minute ago: the form shows minutes only
    from datetime import datetime, time, timezone
    from zoneinfo import ZoneInfo

    # The form edits one day (date, start and end time): the event ends before midnight in Berlin.
    started = utcnow() - timedelta(minutes=1, seconds=7)
    berlin = ZoneInfo("Europe/Berlin")
    day_ends = datetime.combine(started.astimezone(berlin).date(), time(23, 59), berlin).astimezone(timezone.utc)
    if day_ends - started < timedelta(minutes=5):
        pytest.skip("a minute before midnight in Berlin no running event fits into the day")
    event = make_event(starts_at=utcnow() + timedelta(seconds=30), hours=1)
    services.invite(event)
    db.session.commit()
    db.session.execute(Event.__table__.update().where(Event.id == event.id)
                       .values(starts_at=started, ends_at=min(started + timedelta(hours=1), day_ends)))
    db.session.commit()
    db.session.expire_all()
    event = db.session.get(Event, event.id)
    response = client.post(f"/d/08115/events/{event.id}/edit", data=as_form(event, description="Mit Kaffee"))
    assert response.status_code == 302, response.get_data(as_text=True)
    db.session.expire_all()
    event = db.session.get(Event, event.id)
    assert event.description == "Mit Kaffee" and event.sequence == 0
    assert mails(event.id, "update") == []


def test_an_edit_with_an_error_changes_nothing(people, coordinator, client, make_event):
    event = make_event(capacity=1)
    services.invite(event)
    services.respond(registrations(event.id)[0], "accept")
    services.respond(registrations(event.id)[1], "accept")
    db.session.commit()
    before = len(mails(event.id))
    # a later time and fewer seats than taken: refused, the time stays
    response = client.post(f"/d/08115/events/{event.id}/edit",
                           data=as_form(event, starts_at="11:00", ends_at="14:00", capacity="0"))
    assert response.status_code == 422
    assert "zwischen 1 und 100000" in field_error(response.get_data(as_text=True), "capacity")
    db.session.expire_all()
    event = db.session.get(Event, event.id)
    assert f"{local(event.starts_at):%H:%M}" == "09:00" and event.sequence == 0
    assert len(mails(event.id)) == before
    form = client.get(f"/d/08115/events/{event.id}/edit").get_data(as_text=True)
    assert 'value="09:00"' in form and "Workshop bearbeiten" in form


def test_edit_of_office_hours_keeps_kind_and_fields(people, coordinator, client, make_event):
    event = make_event(kind="office_hours")
    page = client.get(f"/d/08115/events/{event.id}/edit").get_data(as_text=True)
    assert "FREQ=WEEKLY;INTERVAL=2;BYDAY=TU;COUNT=3" in page and "Sprechstunde bearbeiten" in page
    form = as_form(event, rrule="FREQ=WEEKLY;INTERVAL=2;BYDAY=TU;COUNT=2", slot_minutes="60", capacity="1")
    response = client.post(f"/d/08115/events/{event.id}/edit", data=form)
    assert response.status_code == 302, response.get_data(as_text=True)
    db.session.expire_all()
    event = db.session.get(Event, event.id)
    assert event.kind == "office_hours" and len(event.slots) == 2 * 3


# --- invite, cancel, remove ------------------------------------------------------------------


def test_invite_creates_registrations_once(people, coordinator, client, make_event):
    event = make_event(status="draft")
    response = client.post(f"/d/08115/events/{event.id}/invite")
    assert response.status_code == 302
    assert "2 Einladungen werden verschickt" in client.get(response.headers["Location"]).get_data(as_text=True)
    assert sorted(r.email for r in registrations(event.id)) == sorted(p.email for p in people)
    assert {r.status for r in registrations(event.id)} == {"invited"}
    assert len(mails(event.id, "invitation")) == 2
    assert db.session.get(Event, event.id).status == "published"
    response = client.post(f"/d/08115/events/{event.id}/invite")
    assert "bereits eingeladen" in client.get(response.headers["Location"]).get_data(as_text=True)
    assert len(registrations(event.id)) == 2 and len(mails(event.id, "invitation")) == 2


def test_publish_a_draft(people, coordinator, client, make_event):
    event = make_event(status="draft")
    assert "Veröffentlichen" in client.get(f"/d/08115/events/{event.id}").get_data(as_text=True)
    assert client.post(f"/d/08115/events/{event.id}/publish").status_code == 302
    db.session.expire_all()
    assert db.session.get(Event, event.id).status == "published"
    assert mails(event.id) == []


def test_cancel_asks_first_then_sends_cancellations(people, coordinator, client, make_event):
    event = make_event()
    services.invite(event)
    db.session.commit()
    page = client.get(f"/d/08115/events/{event.id}/cancel")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "2 Personen haben die Veranstaltung im Kalender" in html and "Ja, Veranstaltung absagen" in html
    assert db.session.get(Event, event.id).status == "published"  # the GET changed nothing
    response = client.post(f"/d/08115/events/{event.id}/cancel")
    assert response.status_code == 302
    assert "2 Personen erhalten eine Absage" in client.get(response.headers["Location"]).get_data(as_text=True)
    cancels = mails(event.id, "cancel")
    assert len(cancels) == 2 and {m.method for m in cancels} == {"CANCEL"} and {m.sequence for m in cancels} == {1}
    event = db.session.get(Event, event.id)
    assert event.status == "cancelled" and event.sequence == 1
    # a second cancel is refused on the page, nothing more is queued
    response = client.post(f"/d/08115/events/{event.id}/cancel")
    assert "bereits abgesagt" in client.get(response.headers["Location"]).get_data(as_text=True)
    assert len(mails(event.id, "cancel")) == 2
    assert client.get(f"/d/08115/events/{event.id}/edit").status_code == 302


def test_removing_a_seat_promotes_the_first_waiting(people, coordinator, client, make_event, make_subscriber):
    make_subscriber("carla@boeblingen.de", "08115", ags="08115003", name="Carla Weiß")
    event = make_event(capacity=1)
    services.invite(event)
    anna, joerg, carla = registrations(event.id)
    for registration in (anna, joerg, carla):
        services.respond(registration, "accept")
    db.session.commit()
    anna, joerg, carla = registrations(event.id)
    assert (anna.status, joerg.status, joerg.waiting_position, carla.waiting_position) == ("confirmed", "waiting",
                                                                                          1, 2)
    detail = client.get(f"/d/08115/events/{event.id}").get_data(as_text=True)
    assert "Warteliste (Platz 1)" in detail and "Warteliste (Platz 2)" in detail
    response = client.post(f"/d/08115/events/{event.id}/registrations/{anna.id}/remove")
    assert response.status_code == 302
    anna, joerg, carla = registrations(event.id)
    assert (anna.status, joerg.status, carla.status) == ("removed", "confirmed", "waiting")
    assert [m.registration_id for m in mails(event.id, "promotion")] == [joerg.id]
    assert [m.registration_id for m in mails(event.id, "decline")] == [anna.id]
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Die Anmeldung von Anna Beispiel ist aufgehoben." in page


def test_a_registration_of_another_event_is_404(people, coordinator, client, make_event):
    one, other = make_event(), make_event(title="Zweiter Workshop")
    services.invite(other)
    db.session.commit()
    registration = registrations(other.id)[0]
    response = client.post(f"/d/08115/events/{one.id}/registrations/{registration.id}/remove")
    assert response.status_code == 404
    assert registrations(other.id)[0].status == "invited"


# --- check-in ------------------------------------------------------------------------------------


def test_checkin_records_attendance(people, coordinator, client, make_event):
    event = make_event(starts_at=utcnow() + timedelta(hours=2), capacity=1)
    services.invite(event)
    anna, joerg = registrations(event.id)
    services.respond(anna, "accept")
    services.respond(joerg, "accept")
    db.session.commit()
    page = client.get(f"/d/08115/events/{event.id}/checkin").get_data(as_text=True)
    assert "Anna Beispiel" in page and "Jörg Müller" in page and f'name="attendance-{anna.id}"' in page
    response = client.post(f"/d/08115/events/{event.id}/checkin",
                           data={f"attendance-{anna.id}": "attended", f"attendance-{joerg.id}": "no_show"})
    assert response.status_code == 302
    assert "2 Teilnahmen gespeichert" in client.get(response.headers["Location"]).get_data(as_text=True)
    anna, joerg = registrations(event.id)
    assert (anna.attendance, joerg.attendance) == ("attended", "no_show")
    detail = client.get(f"/d/08115/events/{event.id}").get_data(as_text=True)
    assert re.search(r"Gemeinden mit Teilnahme</dt><dd>1 von 2", detail)
    # back to open, and a value that is not one refuses the whole form
    client.post(f"/d/08115/events/{event.id}/checkin", data={f"attendance-{joerg.id}": ""})
    assert registrations(event.id)[1].attendance is None
    response = client.post(f"/d/08115/events/{event.id}/checkin",
                           data={f"attendance-{anna.id}": "no_show", f"attendance-{joerg.id}": "vielleicht"})
    assert response.status_code == 422
    assert "Unbekannter Wert für die Teilnahme." in response.get_data(as_text=True)
    assert registrations(event.id)[0].attendance == "attended"


def test_checkin_before_the_day_is_refused(people, coordinator, client, make_event):
    event = make_event()
    services.invite(event)
    anna = registrations(event.id)[0]
    services.respond(anna, "accept")
    db.session.commit()
    response = client.post(f"/d/08115/events/{event.id}/checkin", data={f"attendance-{anna.id}": "attended"})
    assert response.status_code == 422
    assert "erst am Tag der Veranstaltung" in response.get_data(as_text=True)
    assert registrations(event.id)[0].attendance is None


def test_checkin_per_office_hours_slot(people, coordinator, client, make_event, make_subscriber):
    soon = (utcnow() + timedelta(hours=2)).replace(second=0, microsecond=0)
    event = make_event(kind="office_hours", starts_at=soon, hours=1, rrule="FREQ=DAILY;COUNT=2")
    first, second = event.slots[0], event.slots[2]
    anna = services.book(event, first, people[0])
    joerg = services.book(event, second, people[1])
    db.session.commit()
    page = client.get(f"/d/08115/events/{event.id}/checkin?slot={first.id}").get_data(as_text=True)
    assert "Anna Beispiel" in page and "Jörg Müller" not in page
    response = client.post(f"/d/08115/events/{event.id}/checkin?slot={first.id}",
                           data={f"attendance-{anna.id}": "attended", f"attendance-{joerg.id}": "attended"})
    assert response.status_code == 302 and f"slot={first.id}" in response.headers["Location"]
    db.session.expire_all()
    assert db.session.get(Registration, anna.id).attendance == "attended"
    assert db.session.get(Registration, joerg.id).attendance is None  # not on this slot's list
    whole = client.get(f"/d/08115/events/{event.id}/checkin").get_data(as_text=True)
    assert "Anna Beispiel" in whole and "Jörg Müller" in whole
    assert client.get(f"/d/08115/events/{event.id}/checkin?slot=999999").status_code == 404


# --- export -------------------------------------------------------------------------------------------


def test_csv_export_is_spreadsheet_safe(two_districts, coordinator, client, make_event, make_subscriber):
    make_subscriber("anna.beispiel@boeblingen.de", "08115", ags="08115003", name="=HYPERLINK(\"http://x\")")
    make_subscriber("joerg.mueller@sindelfingen.de", "08115", ags="08115045", name="Jörg Müller")
    event = make_event(title="+Workshop", capacity=1)
    services.invite(event)
    first, second = registrations(event.id)
    services.respond(first, "accept")
    services.respond(second, "tentative")
    db.session.commit()
    response = client.get(f"/d/08115/events/{event.id}/registrations.csv")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert f"anmeldungen-08115-{event.id}-" in response.headers["Content-Disposition"]
    assert response.headers["Cache-Control"] == "no-store"
    assert response.data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(response.data[3:].decode("utf-8")), delimiter=";"))
    assert rows[0] == ["Veranstaltung", "Beginn", "Name", "E-Mail", "AGS", "Gemeinde", "Kreisschlüssel", "Status",
                       "Antwort", "Platz auf der Warteliste", "Teilnahme", "Erfasst am"]
    start = f"{local(event.starts_at):%d.%m.%Y %H:%M}"
    assert rows[1][:10] == ["'+Workshop", start, "'=HYPERLINK(\"http://x\")", "anna.beispiel@boeblingen.de",
                            "08115003", "Böblingen, Stadt", "08115", "angemeldet", "zugesagt", ""]
    assert rows[2][:10] == ["'+Workshop", start, "Jörg Müller", "joerg.mueller@sindelfingen.de", "08115045",
                            "Sindelfingen, Stadt", "08115", "Warteliste", "vorläufig zugesagt", "1"]
    assert re.fullmatch(r"\d{2}\.\d{2}\.\d{4} \d{2}:\d{2}", rows[1][11])
    assert len(rows) == 3


# --- roles and districts ----------------------------------------------------------------------------


def test_viewers_see_figures_but_no_registrations_and_cannot_change(people, make_user, sign_in, client, make_event):
    event = make_event()
    services.invite(event)
    db.session.commit()
    registration = registrations(event.id)[0]
    sign_in(make_user("leser@lrabb.de", role="viewer"))
    for path in ("/d/08115/events", f"/d/08115/events/{event.id}"):
        assert client.get(path).status_code == 200, path
    detail = client.get(f"/d/08115/events/{event.id}").get_data(as_text=True)
    assert "Einladungen senden" not in detail and "Entfernen" not in detail
    assert "Plätze" in detail and "Anna Beispiel" not in detail and "anna.beispiel@boeblingen.de" not in detail
    assert "/checkin" not in detail and "registrations.csv" not in detail  # no link to a page they may not open
    assert "Neuer Workshop" not in client.get("/d/08115/events").get_data(as_text=True)
    for path in ("/d/08115/events/new", f"/d/08115/events/{event.id}/edit", f"/d/08115/events/{event.id}/cancel",
                 f"/d/08115/events/{event.id}/checkin", f"/d/08115/events/{event.id}/registrations.csv"):
        assert client.get(path).status_code == 403, path
    for path in ("/d/08115/events/new?kind=workshop", f"/d/08115/events/{event.id}/edit",
                 f"/d/08115/events/{event.id}/publish", f"/d/08115/events/{event.id}/invite",
                 f"/d/08115/events/{event.id}/cancel", f"/d/08115/events/{event.id}/checkin",
                 f"/d/08115/events/{event.id}/registrations/{registration.id}/remove"):
        assert client.post(path, data=workshop_form()).status_code == 403, path
    assert events_count() == 1 and db.session.get(Event, event.id).status == "published"
    assert registrations(event.id)[0].status == "invited"


def test_another_districts_event_is_404(people, coordinator, client, make_event):
    foreign = make_event(district_key="08116", location="Landratsamt Esslingen")
    own = make_event()
    for path in (f"/d/08115/events/{foreign.id}", f"/d/08116/events/{foreign.id}",
                 f"/d/08115/events/{foreign.id}/edit", f"/d/08115/events/{foreign.id}/checkin",
                 f"/d/08115/events/{foreign.id}/registrations.csv", f"/d/08116/events/{own.id}"):
        assert client.get(path).status_code == 404, path
    for path in (f"/d/08115/events/{foreign.id}/invite", f"/d/08115/events/{foreign.id}/cancel",
                 f"/d/08116/events/{foreign.id}/cancel", f"/d/08115/events/{foreign.id}/publish"):
        assert client.post(path).status_code == 404, path
    db.session.expire_all()
    assert db.session.get(Event, foreign.id).status == "published" and mails(foreign.id) == []
    listing = client.get("/d/08115/events").get_data(as_text=True)
    assert "Workshop E-Rechnung" in listing and "Landratsamt Esslingen" not in listing


def test_dashboard_links_events_and_the_calendar_feed(people, coordinator, client):
    html = client.get("/d/08115/").get_data(as_text=True)
    assert 'href="/d/08115/events"' in html
    assert 'href="webcal://localhost/d/08115/events.ics"' in html


def test_list_separates_upcoming_and_past(people, coordinator, client, make_event):
    event = make_event(title="Vergangener Workshop", capacity=5)
    services.invite(event)
    services.respond(registrations(event.id)[0], "accept")
    db.session.commit()
    make_event(title="Kommender Workshop", capacity=None)
    # Move the first into the past the way time would.
    event.starts_at, event.ends_at = utcnow() - timedelta(days=3, hours=3), utcnow() - timedelta(days=3)
    event.slots[0].starts_at, event.slots[0].ends_at = event.starts_at, event.ends_at
    db.session.commit()
    html = client.get("/d/08115/events").get_data(as_text=True)
    upcoming_part, past_part = html.split('id="past-heading"')
    assert "Kommender Workshop" in upcoming_part and "Vergangener Workshop" in past_part
    assert "1 von 5" in past_part and "0 angemeldet (unbegrenzt)" in upcoming_part
