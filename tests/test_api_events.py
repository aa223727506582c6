"""The events API: create workshops and office hours, invalid bodies, change with
calendar updates, invite, cancel, registrations and attendance; roles and
district scoping (404 before the body is looked at)."""
import json
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from core.extensions import db
from events import services
from events.models import Event, EventMail, Registration, Slot
from tests.conftest import next_local

LIST = "/api/v1/districts/08115/events"


@pytest.fixture
def world(two_districts, make_topic, make_subscriber):
    topic = make_topic("service-bw")
    make_topic("DMS", "08116")
    make_subscriber("anna@boeblingen.de", ags="08115003", name="Anna Beispiel", topics=[topic])
    make_subscriber("bert@sindelfingen.de", ags="08115045", name="Bert Muster")
    make_subscriber("emil@esslingen.de", district_key="08116")
    return topic


@pytest.fixture
def headers(make_user, make_token):
    """A coordinator of Böblingen (08115)."""
    return make_token(make_user())


@pytest.fixture
def esslingen(make_user, make_token):
    return make_token(make_user("koordination@lra-es.de", districts=("08116",)))


@pytest.fixture
def viewer(make_user, make_token):
    return make_token(make_user("lesen@lrabb.de", role="viewer", districts=("08115",)))


def wall_clock(value):
    """A UTC time as naive Europe/Berlin ISO text, as a client without time zones sends it."""
    return services.local(value).replace(tzinfo=None).isoformat()


def workshop(**fields):
    start = next_local(3, 9)
    body = {
        "title": "Workshop E-Rechnung", "description": "Für Kämmereien.",
        "location": "Landratsamt Böblingen, Parkstraße 16, 71034 Böblingen",
        "starts_at": start.isoformat(), "ends_at": (start + timedelta(hours=3)).isoformat(), "capacity": 20,
    }
    body.update(fields)
    return body


def office_hours(**fields):
    start = next_local(1, 9)
    body = {
        "kind": "office_hours", "title": "Sprechstunde Digitalisierung", "online_url": "https://meet.example.de/bb",
        "starts_at": wall_clock(start), "ends_at": wall_clock(start + timedelta(hours=3)),
        "rrule": "FREQ=WEEKLY;INTERVAL=2;BYDAY=TU;COUNT=3", "slot_minutes": 30,
    }
    body.update(fields)
    return body


def create(client, headers, body):
    response = client.post(LIST, json=body, headers=headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def count(model=Event, *where):
    return db.session.execute(select(func.count()).select_from(model).where(*where)).scalar_one()


def reload(model, row_id):
    db.session.expire_all()
    return db.session.get(model, row_id)


def utc(text):
    return datetime.fromisoformat(text)


def sender_queued(event_id):
    """Whether the event's sender job is waiting in Redis (enqueued after the commit)."""
    from rq.exceptions import NoSuchJobError
    from rq.job import Job

    from core.queue import get_redis

    try:
        return Job.fetch(f"event-{event_id}", connection=get_redis()).get_status() == "queued"
    except NoSuchJobError:
        return False


def forget_sender(event_id):
    """Drop the queued sender job, so the next check sees whether the next action enqueues its own."""
    from rq.job import Job

    from core.queue import get_redis

    Job.fetch(f"event-{event_id}", connection=get_redis()).delete()
    assert not sender_queued(event_id)


def invite(client, headers, event_id):
    response = client.post(f"/api/v1/events/{event_id}/invite", headers=headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["invited"]


# --- create ---------------------------------------------------------------------------------


def test_create_a_workshop(world, client, headers):
    start = next_local(3, 9)
    response = client.post(LIST, json=workshop(topics=["SERVICE-BW"], municipalities=["08115003", "08115003"]),
                           headers=headers)
    assert response.status_code == 201, response.get_json()
    data = response.get_json()
    assert response.headers["Location"].endswith(f"/api/v1/events/{data['id']}")
    assert data["kind"] == "workshop" and data["status"] == "draft" and data["district_key"] == "08115"
    assert data["sequence"] == 0 and data["capacity"] == 20 and data["reminder_hours"] == 24 and data["public"]
    assert data["topics"] == ["service-bw"] and data["municipalities"] == ["08115003"]
    assert utc(data["starts_at"]) == start and utc(data["starts_at"]).utcoffset() == timedelta(0)
    assert utc(data["ends_at"]) == start + timedelta(hours=3)
    assert data["rrule"] == "" and data["slot_minutes"] is None
    assert data["registration_url"] is None  # a draft has no public page yet
    assert data["feed_url"].endswith("/d/08115/events.ics")
    [slot] = data["slots"]
    assert slot["capacity"] == 20 and slot["confirmed"] == 0 and slot["waiting"] == 0
    assert utc(slot["starts_at"]) == start
    event = db.session.get(Event, data["id"])
    assert event.created_by_id is not None and [t.name for t in event.topics] == ["service-bw"]


def test_create_office_hours_with_naive_berlin_times(world, client, headers):
    start = next_local(1, 9)
    data = create(client, headers, office_hours())
    # 09:00 Berlin wall-clock, stored and answered in UTC.
    assert utc(data["starts_at"]) == start
    assert data["kind"] == "office_hours" and data["slot_minutes"] == 30
    assert data["rrule"] == "FREQ=WEEKLY;INTERVAL=2;BYDAY=TU;COUNT=3"
    assert data["capacity"] == 1  # one municipality per slot by default
    assert len(data["slots"]) == 3 * 6
    assert {slot["capacity"] for slot in data["slots"]} == {1}
    assert count(Slot) == 18
    days = sorted({services.local(utc(slot["starts_at"])).date() for slot in data["slots"]})
    assert [(b - a).days for a, b in zip(days, days[1:])] == [14, 14]
    assert {services.local(utc(slot["starts_at"])).strftime("%H:%M") for slot in data["slots"]} >= {"09:00", "11:30"}


def past():
    return (datetime.now(timezone.utc) - timedelta(days=1)).isoformat()


@pytest.mark.parametrize("fields, field, expected", [
    ({"ends_at": next_local(3, 8).isoformat()}, "ends_at", "Das Ende muss nach dem Beginn liegen."),
    ({"starts_at": past(), "ends_at": (datetime.now(timezone.utc) - timedelta(hours=20)).isoformat()},
     "starts_at", "Der Beginn muss in der Zukunft liegen."),
    ({"location": "", "online_url": ""}, "location", "Bitte einen Ort oder einen Link zur Online-Teilnahme angeben."),
    ({"location": "", "online_url": "ftp://example.de"}, "online_url", "https://"),
    ({"topics": ["gibt-es-nicht"]}, "topics", "Unbekanntes Thema: gibt-es-nicht"),
    ({"topics": ["DMS"]}, "topics", "Unbekanntes Thema: DMS"),  # Esslingen's topic
    ({"municipalities": ["08116019"]}, "municipalities", "Unbekannte Gemeinde: 08116019"),
    ({"title": "   "}, "title", "Bitte einen Titel angeben."),
    ({"capacity": 0}, "capacity", "Die Zahl der Plätze"),
    ({"kind": "konferenz"}, "kind", "Unbekannte Art der Veranstaltung."),
])
def test_create_refuses_invalid_workshops_with_422(world, client, headers, fields, field, expected):
    response = client.post(LIST, json=workshop(**fields), headers=headers)
    assert response.status_code == 422, response.get_json()
    data = response.get_json()
    assert expected in data["message"] and expected in data["errors"]["json"][field][0]
    assert count() == 0 and count(Slot) == 0


@pytest.mark.parametrize("fields, field", [
    ({"rrule": "FREQ=WEEKLY;BYDAY=TU"}, "rrule"),  # endless
    ({"rrule": "jeden Dienstag"}, "rrule"),
    ({"rrule": ""}, "rrule"),
    ({"slot_minutes": 2}, "slot_minutes"),
    ({"slot_minutes": None}, "slot_minutes"),
])
def test_create_refuses_invalid_office_hours_with_422(world, client, headers, fields, field):
    response = client.post(LIST, json=office_hours(**fields), headers=headers)
    assert response.status_code == 422, response.get_json()
    assert field in response.get_json()["errors"]["json"]
    assert count() == 0 and count(Slot) == 0


def test_create_refuses_a_body_of_the_wrong_shape(world, client, headers):
    response = client.post(LIST, json={"title": "Ohne Zeit"}, headers=headers)
    assert response.status_code == 422
    assert {"starts_at", "ends_at"} <= set(response.get_json()["errors"]["json"])
    response = client.post(LIST, json=workshop(starts_at="morgen früh"), headers=headers)
    assert response.status_code == 422 and "starts_at" in response.get_json()["errors"]["json"]
    assert count() == 0


# --- read and list -----------------------------------------------------------------------------------


def test_list_with_paging_and_status_filter(world, client, headers, make_event):
    make_event(title="Erster")
    make_event(title="Zweiter", starts_at=next_local(3, 9, days_ahead=14))
    make_event(title="Entwurf", status="draft")
    make_event(district_key="08116", title="Esslingen")
    response = client.get(LIST, headers=headers)
    assert response.status_code == 200
    assert json.loads(response.headers["X-Pagination"])["total"] == 3
    titles = [e["title"] for e in response.get_json()]
    assert "Esslingen" not in titles and titles[0] == "Zweiter"  # the latest first
    assert "slots" not in response.get_json()[0]
    response = client.get(LIST, query_string={"status": "draft"}, headers=headers)
    assert [e["title"] for e in response.get_json()] == ["Entwurf"]
    response = client.get(LIST, query_string={"page_size": 1, "page": 2}, headers=headers)
    assert len(response.get_json()) == 1 and json.loads(response.headers["X-Pagination"])["page"] == 2
    assert client.get(LIST, query_string={"status": "gelöscht"}, headers=headers).status_code == 422


def test_get_shows_slots_with_seat_counts(world, client, headers, make_event):
    event = make_event(capacity=1)
    invite(client, headers, event.id)
    anna, bert = db.session.execute(select(Registration).order_by(Registration.email)).scalars().all()
    services.respond(anna, "accept")
    services.respond(bert, "accept")
    db.session.commit()
    data = client.get(f"/api/v1/events/{event.id}", headers=headers).get_json()
    [slot] = data["slots"]
    assert (slot["confirmed"], slot["waiting"], slot["invited"]) == (1, 1, 0)
    assert data["status"] == "published"
    assert data["registration_url"].endswith(f"/d/08115/events/{event.id}/anmelden")


# --- change ---------------------------------------------------------------------------------------


def test_patch_time_sends_everyone_invited_an_update_with_the_next_sequence(world, client, headers):
    event_id = create(client, headers, workshop())["id"]
    assert invite(client, headers, event_id) == 2
    forget_sender(event_id)
    later = next_local(3, 14)
    response = client.patch(f"/api/v1/events/{event_id}",
                            json={"starts_at": wall_clock(later), "ends_at": wall_clock(later + timedelta(hours=2))},
                            headers=headers)
    assert response.status_code == 200, response.get_json()
    data = response.get_json()
    assert data["notified"] == 2 and data["sequence"] == 1
    assert utc(data["starts_at"]) == later and utc(data["slots"][0]["starts_at"]) == later
    updates = db.session.execute(select(EventMail).where(EventMail.kind == "update")).scalars().all()
    assert len(updates) == 2
    assert {(m.method, m.sequence, m.status) for m in updates} == {("REQUEST", 1, "queued")}
    assert {m.registration.email for m in updates} == {"anna@boeblingen.de", "bert@sindelfingen.de"}
    assert sender_queued(event_id)
    assert reload(Event, event_id).starts_at == later

    # A change outside the calendar entry changes no calendar and sends nothing.
    response = client.patch(f"/api/v1/events/{event_id}", json={"description": "Neu", "capacity": 30},
                            headers=headers)
    assert response.status_code == 200
    assert response.get_json()["notified"] == 0 and response.get_json()["sequence"] == 1
    assert response.get_json()["description"] == "Neu" and response.get_json()["slots"][0]["capacity"] == 30
    assert count(EventMail, EventMail.kind == "update") == 2


def test_patch_changes_only_the_fields_sent(world, client, headers):
    created = create(client, headers, workshop(topics=["service-bw"], municipalities=["08115045"]))
    response = client.patch(f"/api/v1/events/{created['id']}", json={"title": "Workshop XRechnung", "topics": []},
                            headers=headers)
    assert response.status_code == 200, response.get_json()
    data = response.get_json()
    assert data["title"] == "Workshop XRechnung" and data["topics"] == [] and data["municipalities"] == ["08115045"]
    assert data["starts_at"] == created["starts_at"] and data["location"] == created["location"]
    assert data["notified"] == 0 and data["status"] == "draft"
    assert client.patch(f"/api/v1/events/{created['id']}", json={"kind": "office_hours"},
                        headers=headers).status_code == 422


@pytest.mark.parametrize("fields, field", [
    ({"ends_at": next_local(3, 8).isoformat()}, "ends_at"),
    ({"location": "", "online_url": ""}, "location"),
    ({"municipalities": ["08116050"]}, "municipalities"),
    ({"topics": ["nein"]}, "topics"),
    ({"reminder_hours": 1000}, "reminder_hours"),
])
def test_patch_refuses_invalid_values_and_changes_nothing(world, client, headers, fields, field):
    created = create(client, headers, workshop(municipalities=["08115003"]))
    response = client.patch(f"/api/v1/events/{created['id']}", json=dict(fields, title="Nicht gespeichert"),
                            headers=headers)
    assert response.status_code == 422, response.get_json()
    assert field in response.get_json()["errors"]["json"]
    event = reload(Event, created["id"])
    assert event.title == "Workshop E-Rechnung" and [m.ags for m in event.municipalities] == ["08115003"]
    assert event.sequence == 0


def test_patch_capacity_below_the_seats_taken_is_refused(world, client, headers, make_event):
    event = make_event(capacity=5)
    invite(client, headers, event.id)
    for registration in db.session.execute(select(Registration)).scalars().all():
        services.respond(registration, "accept")
    db.session.commit()
    response = client.patch(f"/api/v1/events/{event.id}", json={"capacity": 1}, headers=headers)
    assert response.status_code == 422 and "capacity" in response.get_json()["errors"]["json"]
    assert reload(Event, event.id).capacity == 5 and reload(Slot, event.slots[0].id).capacity == 5


def test_office_hours_with_a_booking_keep_their_times(world, client, headers, make_event):
    from subscribers.models import Subscriber

    event = make_event(kind="office_hours")
    anna = db.session.execute(select(Subscriber).where(Subscriber.email == "anna@boeblingen.de")).scalar_one()
    services.book(event, event.slots[0], anna)
    db.session.commit()
    later = next_local(1, 13)
    response = client.patch(f"/api/v1/events/{event.id}",
                            json={"starts_at": later.isoformat(), "ends_at": (later + timedelta(hours=2)).isoformat()},
                            headers=headers)
    assert response.status_code == 422 and "starts_at" in response.get_json()["errors"]["json"]
    assert count(Slot) == 18 and count(Registration, Registration.status == "confirmed") == 1


def test_patch_publishes_a_draft(world, client, headers):
    created = create(client, headers, workshop())
    response = client.patch(f"/api/v1/events/{created['id']}", json={"status": "published"}, headers=headers)
    assert response.status_code == 200
    assert response.get_json()["status"] == "published" and response.get_json()["registration_url"]
    assert count(EventMail) == 0  # publishing invites nobody
    response = client.patch(f"/api/v1/events/{created['id']}", json={"status": "cancelled"}, headers=headers)
    assert response.status_code == 422 and reload(Event, created["id"]).status == "published"


# --- invite and cancel ----------------------------------------------------------------------------------


def test_invite_publishes_and_is_safe_to_repeat(world, client, headers, make_subscriber):
    created = create(client, headers, workshop())
    assert not sender_queued(created["id"])
    assert invite(client, headers, created["id"]) == 2
    assert reload(Event, created["id"]).status == "published" and sender_queued(created["id"])
    assert invite(client, headers, created["id"]) == 0
    assert count(EventMail, EventMail.kind == "invitation") == 2
    assert count(Registration, Registration.status == "invited") == 2
    # Someone new on the list gets theirs on the next round, nobody a second one.
    make_subscriber("carla@boeblingen.de", ags="08115003", name="Carla")
    assert invite(client, headers, created["id"]) == 1
    assert count(EventMail, EventMail.kind == "invitation") == 3


def test_invite_to_office_hours_sends_booking_links_without_registrations(world, client, headers):
    created = create(client, headers, office_hours(municipalities=["08115045"]))
    assert invite(client, headers, created["id"]) == 1
    [mail] = db.session.execute(select(EventMail)).scalars().all()
    assert mail.kind == "invitation" and mail.method is None and mail.registration_id is None
    assert mail.municipality_ags == "08115045"
    assert count(Registration) == 0


def test_invite_and_cancel_mails_reach_the_calendar(smtp_app, smtp_server, world, client, headers, run_jobs):
    created = create(client, headers, workshop(municipalities=["08115003"]))
    assert invite(client, headers, created["id"]) == 1
    with smtp_app.app_context():
        run_jobs()
    [invitation] = smtp_server.wait_for(1)
    assert invitation["To"].addresses[0].addr_spec == "anna@boeblingen.de"
    assert "Einladung: Workshop E-Rechnung" in invitation["Subject"]
    response = client.post(f"/api/v1/events/{created['id']}/cancel", headers=headers)
    assert response.status_code == 200 and response.get_json() == {"notified": 1}
    with smtp_app.app_context():
        run_jobs()
    messages = smtp_server.wait_for(2)
    assert len(messages) == 2 and messages[1]["Subject"].startswith("Abgesagt:")
    calendars = [part for part in messages[1].walk() if part.get_content_type() == "text/calendar"]
    assert calendars and calendars[0].get_param("method") == "CANCEL"


def test_cancel_notifies_everyone_and_only_once(world, client, headers):
    created = create(client, headers, workshop())
    invite(client, headers, created["id"])
    forget_sender(created["id"])
    response = client.post(f"/api/v1/events/{created['id']}/cancel", headers=headers)
    assert response.status_code == 200 and response.get_json() == {"notified": 2}
    assert sender_queued(created["id"])
    cancels = db.session.execute(select(EventMail).where(EventMail.kind == "cancel")).scalars().all()
    assert {(m.method, m.sequence) for m in cancels} == {("CANCEL", 1)} and len(cancels) == 2
    event = reload(Event, created["id"])
    assert event.status == "cancelled" and event.sequence == 1 and event.cancelled_at is not None

    response = client.post(f"/api/v1/events/{created['id']}/cancel", headers=headers)
    assert response.status_code == 409 and "bereits abgesagt" in response.get_json()["message"]
    # A cancelled event refuses changes, even invalid ones, and new invitations.
    response = client.patch(f"/api/v1/events/{created['id']}", json={"title": "Neu"}, headers=headers)
    assert response.status_code == 409 and "abgesagte Veranstaltung" in response.get_json()["message"]
    response = client.patch(f"/api/v1/events/{created['id']}", json={"topics": ["nein"]}, headers=headers)
    assert response.status_code == 409
    assert client.post(f"/api/v1/events/{created['id']}/invite", headers=headers).status_code == 409
    assert count(EventMail, EventMail.kind == "cancel") == 2 and reload(Event, created["id"]).sequence == 1


# --- registrations and attendance ------------------------------------------------------------------------


def test_registrations_list(world, client, headers, make_event):
    event = make_event(capacity=1)
    invite(client, headers, event.id)
    anna, bert = db.session.execute(select(Registration).order_by(Registration.email)).scalars().all()
    services.respond(anna, "accept")
    services.respond(bert, "tentative")
    db.session.commit()
    response = client.get(f"/api/v1/events/{event.id}/registrations", headers=headers)
    assert response.status_code == 200
    assert json.loads(response.headers["X-Pagination"])["total"] == 2
    rows = {row["email"]: row for row in response.get_json()}
    anna_row, bert_row = rows["anna@boeblingen.de"], rows["bert@sindelfingen.de"]
    assert anna_row["status"] == "confirmed" and anna_row["answer"] == "ACCEPTED"
    assert anna_row["municipality"] == "08115003" and anna_row["district_key"] == "08115"
    assert anna_row["name"] == "Anna Beispiel" and anna_row["source"] == "invitation"
    assert anna_row["slot_id"] == event.slots[0].id and utc(anna_row["slot_starts_at"]) == event.starts_at
    assert anna_row["attendance"] is None and anna_row["answered_at"] and anna_row["created_at"]
    assert bert_row["status"] == "waiting" and bert_row["answer"] == "TENTATIVE" and bert_row["waiting_position"] == 1
    response = client.get(f"/api/v1/events/{event.id}/registrations", query_string={"status": "waiting"},
                          headers=headers)
    assert [row["email"] for row in response.get_json()] == ["bert@sindelfingen.de"]
    response = client.get(f"/api/v1/events/{event.id}/registrations", query_string={"slot_id": 0}, headers=headers)
    assert response.status_code == 422  # ids start at 1


def test_attendance(world, client, headers, make_event):
    soon = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(hours=1)
    event = make_event(starts_at=soon)
    invite(client, headers, event.id)
    registration = db.session.execute(select(Registration).order_by(Registration.email)).scalars().first()
    url = f"/api/v1/registrations/{registration.id}"
    response = client.patch(url, json={"attendance": "attended"}, headers=headers)
    assert response.status_code == 200 and response.get_json()["attendance"] == "attended"
    assert reload(Registration, registration.id).attendance == "attended"
    assert client.get(url, headers=headers).get_json()["attendance"] == "attended"

    response = client.patch(url, json={"attendance": "anwesend"}, headers=headers)
    assert response.status_code == 422
    assert response.get_json()["errors"]["json"]["attendance"] == ["Unbekannter Wert für die Teilnahme."]
    assert client.patch(url, json={}, headers=headers).status_code == 422
    assert reload(Registration, registration.id).attendance == "attended"

    response = client.patch(url, json={"attendance": None}, headers=headers)
    assert response.status_code == 200 and response.get_json()["attendance"] is None


def test_attendance_is_not_recorded_days_ahead(world, client, headers, make_event):
    event = make_event()
    invite(client, headers, event.id)
    registration = db.session.execute(select(Registration)).scalars().first()
    response = client.patch(f"/api/v1/registrations/{registration.id}", json={"attendance": "no_show"},
                            headers=headers)
    assert response.status_code == 422 and "am Tag der Veranstaltung" in response.get_json()["message"]
    assert reload(Registration, registration.id).attendance is None


# --- roles and district scoping ------------------------------------------------------------------------------


def test_another_districts_rows_are_404_before_the_body_is_validated(world, client, headers, esslingen, make_event):
    soon = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(hours=1)
    event = make_event(starts_at=soon)
    invite(client, headers, event.id)
    registration = db.session.execute(select(Registration)).scalars().first()
    base = f"/api/v1/events/{event.id}"

    assert client.get(LIST, headers=esslingen).status_code == 404
    assert client.post(LIST, json=workshop(), headers=esslingen).status_code == 404
    assert client.post(LIST, json={"title": 7}, headers=esslingen).status_code == 404
    assert client.get(base, headers=esslingen).status_code == 404
    assert client.patch(base, json={"title": "Übernommen"}, headers=esslingen).status_code == 404
    assert client.patch(base, json={"ends_at": "gestern", "farbe": "rot"}, headers=esslingen).status_code == 404
    assert client.post(f"{base}/invite", headers=esslingen).status_code == 404
    assert client.post(f"{base}/cancel", headers=esslingen).status_code == 404
    assert client.get(f"{base}/registrations", headers=esslingen).status_code == 404
    assert client.get(f"/api/v1/registrations/{registration.id}", headers=esslingen).status_code == 404
    for body in ({"attendance": "attended"}, {"attendance": "vielleicht"}, {}):
        response = client.patch(f"/api/v1/registrations/{registration.id}", json=body, headers=esslingen)
        assert response.status_code == 404, body
    # Unknown ones look the same.
    assert client.get("/api/v1/districts/08199/events", headers=esslingen).status_code == 404
    assert client.patch("/api/v1/events/999999", json={"ends_at": "gestern"}, headers=headers).status_code == 404
    assert client.patch("/api/v1/registrations/999999", json={}, headers=headers).status_code == 404

    event = reload(Event, event.id)
    assert event.title == "Workshop E-Rechnung" and event.status == "published" and event.sequence == 0
    assert count(Event) == 1 and count(EventMail, EventMail.kind != "invitation") == 0
    assert reload(Registration, registration.id).attendance is None
    # Esslingen's own list is empty, not Böblingen's.
    response = client.get("/api/v1/districts/08116/events", headers=esslingen)
    assert response.status_code == 200 and response.get_json() == []


def test_viewer_reads_events_but_no_registrations_and_does_not_write(world, client, headers, viewer, make_event):
    soon = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(hours=1)
    event = make_event(starts_at=soon)
    invite(client, headers, event.id)
    registration = db.session.execute(select(Registration)).scalars().first()
    base = f"/api/v1/events/{event.id}"
    assert client.get(LIST, headers=viewer).status_code == 200
    assert client.get(base, headers=viewer).status_code == 200
    # Names and addresses: viewers see the seat counts of the event only.
    assert client.get(f"{base}/registrations", headers=viewer).status_code == 403
    assert client.get(f"/api/v1/registrations/{registration.id}", headers=viewer).status_code == 403

    assert client.post(LIST, json=workshop(), headers=viewer).status_code == 403
    assert client.post(LIST, json={}, headers=viewer).status_code == 403  # before the body is looked at
    assert client.patch(base, json={"title": "Anders"}, headers=viewer).status_code == 403
    assert client.post(f"{base}/invite", headers=viewer).status_code == 403
    assert client.post(f"{base}/cancel", headers=viewer).status_code == 403
    assert client.patch(f"/api/v1/registrations/{registration.id}", json={"attendance": "attended"},
                        headers=viewer).status_code == 403
    event = reload(Event, event.id)
    assert count(Event) == 1 and event.title == "Workshop E-Rechnung" and event.status == "published"
    assert reload(Registration, registration.id).attendance is None


def test_without_token_401(world, client, make_event):
    event = make_event()
    assert client.get(LIST).status_code == 401
    assert client.post(LIST, json=workshop()).status_code == 401
    assert client.get(f"/api/v1/events/{event.id}").status_code == 401
    assert client.post(f"/api/v1/events/{event.id}/cancel").status_code == 401
    assert reload(Event, event.id).status == "published"


def test_openapi_document_describes_the_event_routes(client):
    from openapi_spec_validator import validate

    document = client.get("/api/openapi.json").get_json()
    validate(document)
    for path in ("/api/v1/districts/{key}/events", "/api/v1/events/{id}", "/api/v1/events/{id}/invite",
                 "/api/v1/events/{id}/cancel", "/api/v1/events/{id}/registrations", "/api/v1/registrations/{id}"):
        assert path in document["paths"], path
    assert set(document["paths"]["/api/v1/events/{id}"]) >= {"get", "patch"}
    assert "patch" in document["paths"]["/api/v1/registrations/{id}"]
