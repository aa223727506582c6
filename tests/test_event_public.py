"""The public event pages: RSVP links, the registration page, office-hours booking, the feed.

A GET from a link never changes anything; a bad link answers 4xx and
changes nothing; whatever the rules refuse answers 409 and changes nothing.
"""
import secrets
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import icalendar
import pytest
import recurring_ical_events
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import func, select, update

from core.extensions import db
from core.tokens import make_token
from events import services
from events.mail import format_when, rsvp_token
from events.models import Event, EventMail, Registration, Slot
from tests.calendars import check_calendar

BERLIN = ZoneInfo("Europe/Berlin")


def all_stored():
    rows = []
    for table in db.metadata.sorted_tables:
        rows.extend((table.name, tuple(map(str, row))) for row in db.session.execute(table.select()).all())
    return sorted(rows)


def count(model, *where):
    return db.session.execute(select(func.count()).select_from(model).where(*where)).scalar_one()


def reload(registration):
    db.session.expire_all()
    return db.session.get(Registration, registration.id)


def rsvp_path(registration, answer, token=None):
    return f"/rsvp/{token or rsvp_token(registration)}/{answer}"


@pytest.fixture
def district(two_districts):
    return two_districts[0]


@pytest.fixture
def invited(district, make_event, make_subscriber):
    """A workshop (20 seats) in Böblingen with two invited subscribers: (event, [registration, registration])."""

    def factory(capacity=20, people=2, **options):
        event = make_event(capacity=capacity, **options)
        for number in range(people):
            make_subscriber(f"person{number}@boeblingen.de", "08115", name=f"Person {number}",
                            ags="08115045" if number % 2 else "08115003")
        services.invite(event)
        db.session.commit()
        registrations = db.session.execute(
            select(Registration).where(Registration.event_id == event.id).order_by(Registration.id)
        ).scalars().all()
        assert len(registrations) == people
        return event, registrations

    return factory


# --- RSVP links -------------------------------------------------------------------


@pytest.mark.parametrize("answer", ["accept", "tentative", "decline"])
def test_rsvp_get_shows_the_event_and_changes_nothing(client, invited, answer):
    event, (registration, _other) = invited()
    path = rsvp_path(registration, answer)  # tokens carry a timestamp: build the link once
    before = all_stored()
    for _ in range(2):  # a mail gateway's prefetch, then the person
        response = client.get(path)
        assert response.status_code == 200
        html = response.get_data(as_text=True)
        assert event.title in html
        assert format_when(event.starts_at, event.ends_at) in html
        assert "Landratsamt Böblingen" in html
        assert "noch nicht geantwortet" in html
        assert f'action="{path}"' in html and 'method="post"' in html
        assert response.headers["Cache-Control"] == "no-store"
    assert all_stored() == before


@pytest.mark.parametrize("answer, status, partstat, mail, text", [
    ("accept", "confirmed", "ACCEPTED", ("confirmation", "REQUEST"), "Sie sind angemeldet"),
    ("tentative", "confirmed", "TENTATIVE", ("confirmation", "REQUEST"), "unter Vorbehalt zugesagt"),
    ("decline", "declined", "DECLINED", ("decline", "CANCEL"), "Sie haben abgesagt"),
])
def test_rsvp_post_records_the_answer(client, invited, answer, status, partstat, mail, text):
    event, (registration, other) = invited()
    response = client.post(rsvp_path(registration, answer))
    assert response.status_code == 200
    assert text in response.get_data(as_text=True)
    registration = reload(registration)
    assert (registration.status, registration.partstat) == (status, partstat)
    assert registration.answered_at is not None
    assert reload(other).status == "invited"
    mails = db.session.execute(
        select(EventMail.kind, EventMail.method).where(EventMail.registration_id == registration.id)
        .order_by(EventMail.id)
    ).all()
    assert [tuple(m) for m in mails] == [("invitation", "REQUEST"), mail]


def test_answers_can_change_and_repeating_one_is_harmless(client, invited):
    _event, (registration, _other) = invited()
    assert client.post(rsvp_path(registration, "accept")).status_code == 200
    assert client.post(rsvp_path(registration, "accept")).status_code == 200
    assert reload(registration).status == "confirmed"
    assert count(EventMail, EventMail.registration_id == registration.id, EventMail.kind == "confirmation") == 1
    assert client.post(rsvp_path(registration, "decline")).status_code == 200
    assert reload(registration).status == "declined"
    html = client.get(rsvp_path(registration, "accept")).get_data(as_text=True)
    assert "Sie haben abgesagt" in html
    assert client.post(rsvp_path(registration, "accept")).status_code == 200
    assert reload(registration).status == "confirmed"


def test_accepting_a_full_workshop_puts_the_person_on_the_waiting_list(client, invited):
    _event, (first, second, third) = invited(capacity=1, people=3)
    assert client.post(rsvp_path(first, "accept")).status_code == 200
    response = client.post(rsvp_path(second, "accept"))
    assert response.status_code == 200
    assert "Warteliste (Platz 1)" in response.get_data(as_text=True)
    assert "Warteliste (Platz 2)" in client.post(rsvp_path(third, "tentative")).get_data(as_text=True)
    assert [reload(r).status for r in (first, second, third)] == ["confirmed", "waiting", "waiting"]
    assert count(EventMail, EventMail.registration_id == second.id, EventMail.kind == "waiting") == 1
    # The page of someone waiting says so.
    assert "Warteliste (Platz 1)" in client.get(rsvp_path(second, "decline")).get_data(as_text=True)
    # The seat holder declines: the first waiting person moves up.
    assert client.post(rsvp_path(first, "decline")).status_code == 200
    assert [reload(r).status for r in (first, second, third)] == ["declined", "confirmed", "waiting"]
    assert count(EventMail, EventMail.registration_id == second.id, EventMail.kind == "promotion") == 1


def test_answering_enqueues_the_sender(client, invited, run_jobs, app):
    _event, (registration, _other) = invited()
    assert client.post(rsvp_path(registration, "accept")).status_code == 200
    run_jobs()
    db.session.expire_all()
    assert count(EventMail, EventMail.status.in_(("queued", "deferred"))) == 0
    assert count(EventMail, EventMail.status == "sent", EventMail.kind == "confirmation") == 1


def forged_tokens(app, registration, subscriber):
    """About two dozen links that must not work, each labelled."""
    good = rsvp_token(registration)
    head, _dot, signature = good.rpartition(".")
    # The first character: the last one's low bits are base64 padding, and changing only those changes nothing.
    flipped = "A" if signature[0] != "A" else "B"
    other_key = URLSafeTimedSerializer("not-the-secret", salt="egov-reach:event-rsvp")
    no_salt = URLSafeTimedSerializer(app.config["SECRET_KEY"])
    payload = good.split(".")[0]
    tampered_payload = ("B" if payload[1] != "B" else "C").join((payload[:1], payload[2:]))
    return {
        "signature changed": head + "." + flipped + signature[1:],
        "signature dropped": head,
        "signature empty": head + ".",
        "truncated by one": good[:-1],
        "truncated by ten": good[:-10],
        "half": good[: len(good) // 2],
        "payload changed": ".".join([tampered_payload, *good.split(".")[1:]]),
        "payload of another registration": ".".join([make_token("event-rsvp", {"r": "x" * 32}).split(".")[0],
                                                     *good.split(".")[1:]]),
        "timestamp changed": ".".join([good.split(".")[0], "AAAAAA", good.split(".")[2]]),
        "other purpose: manage": make_token("subscriber-manage", {"s": subscriber.public_id}),
        "other purpose, same payload": make_token("subscriber-manage", {"r": registration.public_id}),
        "other purpose: booking": make_token("event-booking", {"r": registration.public_id}),
        "other purpose: unsubscribe": make_token("subscriber-unsubscribe", {"r": registration.public_id}),
        "other secret": other_key.dumps({"r": registration.public_id}),
        "no salt": no_salt.dumps({"r": registration.public_id}),
        "garbage": secrets.token_urlsafe(40),
        "garbage with dots": "eyJyIjoiYWJjIn0.Zz1234.abcdefghijklmnop",
        "one character": "x",
        "unicode": "äöü.ß",
        "payload a list": make_token("event-rsvp", [registration.public_id]),
        "payload a string": make_token("event-rsvp", registration.public_id),
        "payload without r": make_token("event-rsvp", {"s": subscriber.public_id}),
        "r a number": make_token("event-rsvp", {"r": 12345}),
        "r null": make_token("event-rsvp", {"r": None}),
        "r a list": make_token("event-rsvp", {"r": [registration.public_id]}),
        "unknown public id": make_token("event-rsvp", {"r": "0" * 32}),
        "registration id instead of public id": make_token("event-rsvp", {"r": str(registration.id)}),
    }


def test_forged_rsvp_tokens_answer_4xx_and_change_nothing(app, client, invited):
    _event, (registration, _other) = invited()
    subscriber = registration.subscriber
    tokens = forged_tokens(app, registration, subscriber)
    assert len(tokens) >= 20
    before = all_stored()
    for label, token in tokens.items():
        for method in ("get", "post"):
            for answer in ("accept", "decline"):
                response = getattr(client, method)(rsvp_path(registration, answer, token=token))
                assert 400 <= response.status_code < 500, (label, method, response.status_code)
                if response.status_code == 404 and method == "get":
                    html = response.get_data(as_text=True)
                    assert "Dieser Link ist ungültig" in html or "keine Anmeldung" in html, label
    assert all_stored() == before
    # The genuine token still works afterwards.
    assert client.post(rsvp_path(registration, "accept")).status_code == 200


@pytest.mark.parametrize("answer", ["maybe", "ACCEPT", "accepted", "delegate", "accept.html"])
def test_unknown_answers_are_404(client, invited, answer):
    _event, (registration, _other) = invited()
    before = all_stored()
    assert client.get(rsvp_path(registration, answer)).status_code == 404
    assert client.post(rsvp_path(registration, answer)).status_code == 404
    assert all_stored() == before


def test_answering_a_cancelled_event_is_409_and_changes_nothing(client, invited):
    event, (registration, _other) = invited()
    services.cancel_event(event)
    db.session.commit()
    before = all_stored()
    html = client.get(rsvp_path(registration, "accept")).get_data(as_text=True)
    assert "wurde abgesagt" in html and 'method="post"' not in html.split("</main>")[0].split("<main")[1]
    for answer in ("accept", "tentative", "decline"):
        response = client.post(rsvp_path(registration, answer))
        assert response.status_code == 409
        assert "Diese Veranstaltung wurde abgesagt." in response.get_data(as_text=True)
    assert all_stored() == before


def test_answering_after_removal_or_after_the_event_is_409(client, invited):
    event, (registration, other) = invited()
    services.remove(registration)
    db.session.commit()
    before = all_stored()
    response = client.post(rsvp_path(registration, "accept"))
    assert response.status_code == 409
    assert "von der Koordination aufgehoben" in response.get_data(as_text=True)
    assert all_stored() == before
    # The event is over: nobody answers any more.
    past = datetime.now(timezone.utc) - timedelta(days=2)
    db.session.execute(update(Slot).where(Slot.event_id == event.id)
                       .values(starts_at=past, ends_at=past + timedelta(hours=3)))
    db.session.execute(update(Event).where(Event.id == event.id)
                       .values(starts_at=past, ends_at=past + timedelta(hours=3)))
    db.session.commit()
    before = all_stored()
    response = client.post(rsvp_path(other, "accept"))
    assert response.status_code == 409
    assert "bereits stattgefunden" in response.get_data(as_text=True)
    assert all_stored() == before


def test_an_erased_registration_is_404(client, invited):
    from subscribers import privacy

    _event, (registration, _other) = invited()
    path = rsvp_path(registration, "accept")
    privacy.erase_subscriber(registration.subscriber)
    db.session.commit()
    before = all_stored()
    assert client.get(path).status_code == 404
    assert client.post(path).status_code == 404
    assert all_stored() == before


def test_rsvp_post_needs_no_csrf_token_or_login(make_app, two_districts):
    app = make_app(WTF_CSRF_ENABLED=True)
    with app.app_context():
        from tests.conftest import next_local

        event = services.create_event("08115", services.EventData(
            title="Workshop", location="Landratsamt", starts_at=next_local(3, 9),
            ends_at=next_local(3, 12), capacity=5))
        services.publish(event)
        from directory.models import District
        from subscribers import services as subscriber_services

        subscriber_services.add_subscriber(db.session.get(District, "08115"), "anna@boeblingen.de", "Anna",
                                           "08115003", source="admin", double_opt_in=False)
        services.invite(event)
        db.session.commit()
        registration = db.session.execute(select(Registration)).scalar_one()
        assert app.test_client().post(rsvp_path(registration, "accept")).status_code == 200
        assert reload(registration).status == "confirmed"


def test_rsvp_works_for_staff_signed_in_to_another_district(client, invited, make_user, sign_in):
    _event, (registration, _other) = invited()
    sign_in(make_user("koordination@lra-es.de", districts=("08116",)))
    assert client.get(rsvp_path(registration, "accept")).status_code == 200
    assert client.post(rsvp_path(registration, "accept")).status_code == 200
    assert reload(registration).status == "confirmed"


# --- the public registration page ------------------------------------------------


def register_path(event, key=None):
    return f"/d/{key or event.district_key}/events/{event.id}/anmelden"


def register(client, event, key=None, **fields):
    data = {"name": "Bernd Extern", "email": "bernd.extern@sindelfingen.de", "municipality": "08115045",
            "privacy": "on"}
    data.update(fields)
    return client.post(register_path(event, key), data={k: v for k, v in data.items() if v is not None})


CHECK_INBOX = "Bitte prüfen Sie Ihr Postfach – bestätigen Sie Ihre Anmeldung über die Einladung"


def test_register_page_is_an_accessible_form(client, district, make_event):
    event = make_event()
    before = all_stored()
    response = client.get(register_path(event))
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    for field in ("name", "email", "municipality", "privacy"):
        assert f'for="{field}"' in html and f'id="{field}"' in html
    assert 'name="website"' in html and 'tabindex="-1"' in html
    assert "Sindelfingen, Stadt" in html and "Esslingen" not in html.split("<form")[1]
    assert event.title in html and format_when(event.starts_at, event.ends_at) in html
    assert all_stored() == before


def test_register_creates_an_invited_registration_and_queues_the_invitation(client, district, make_event):
    event = make_event()
    response = register(client, event)
    assert response.status_code == 200
    assert CHECK_INBOX in response.get_data(as_text=True)
    registration = db.session.execute(select(Registration)).scalar_one()
    assert (registration.status, registration.partstat, registration.source) == ("invited", "NEEDS-ACTION", "form")
    assert (registration.email, registration.name) == ("bernd.extern@sindelfingen.de", "Bernd Extern")
    assert registration.municipality_ags == "08115045" and registration.subscriber_id is None
    mail = db.session.execute(select(EventMail)).scalar_one()
    assert (mail.kind, mail.method, mail.status, mail.registration_id) == ("invitation", "REQUEST", "queued",
                                                                           registration.id)


def test_register_answers_alike_for_known_and_unknown_addresses(client, district, make_event, make_subscriber):
    event = make_event()
    known = make_subscriber("bekannt@boeblingen.de", "08115", ags="08115003")
    first = register(client, event, email="bekannt@boeblingen.de", municipality="08115003")
    second = register(client, event, email="neu@boeblingen.de", municipality="08115003")
    assert first.status_code == second.status_code == 200
    assert first.get_data() == second.get_data()
    linked = db.session.execute(select(Registration).where(Registration.email_key == "bekannt@boeblingen.de"))
    assert linked.scalar_one().subscriber_id == known.id
    # Asking again sends the invitation again, without a second registration.
    third = register(client, event, email="Neu@Boeblingen.de", municipality="08115003")
    assert third.get_data() == second.get_data()
    assert count(Registration) == 2
    assert count(EventMail, EventMail.kind == "invitation") == 3


def test_invitations_requested_through_the_form_are_capped_per_address(client, district, make_event):
    event = make_event()
    answers = {register(client, event, email="ziel@boeblingen.de").get_data() for _ in range(5)}
    assert len(answers) == 1 and CHECK_INBOX in answers.pop().decode()
    assert count(EventMail, EventMail.kind == "invitation") == 3  # CONFIRMATION_MAIL_LIMIT "3 per day"
    assert count(Registration) == 1


def test_registered_then_accepted_through_the_invitation_link(client, district, make_event):
    event = make_event(capacity=1)
    register(client, event)
    registration = db.session.execute(select(Registration)).scalar_one()
    assert client.post(rsvp_path(registration, "accept")).status_code == 200
    assert reload(registration).status == "confirmed"


@pytest.mark.parametrize("fields, message", [
    ({"email": "kein-at-zeichen"}, "Ungültige E-Mail-Adresse"),
    ({"email": ""}, "Bitte geben Sie Ihre E-Mail-Adresse ein."),
    ({"name": ""}, "Bitte geben Sie Ihren Namen ein."),
    ({"name": "x" * 201}, "Name"),
    ({"municipality": "08116019"}, "Unbekannte Gemeinde"),  # a municipality of another district
    ({"municipality": "99999999"}, "Unbekannte Gemeinde"),
    ({"municipality": ""}, "Bitte wählen Sie Ihre Gemeinde."),
    ({"privacy": None}, "Hinweis zum Datenschutz"),
])
def test_bad_input_is_explained_and_changes_nothing(client, district, make_event, fields, message):
    event = make_event()
    before = all_stored()
    response = register(client, event, **fields)
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert message in html
    assert 'class="error-summary"' in html and 'aria-invalid="true"' in html
    assert all_stored() == before


def test_honeypot_answers_alike_and_stores_nothing(client, district, make_event):
    event = make_event()
    before = all_stored()
    response = register(client, event, website="http://spam.example")
    assert response.status_code == 200
    assert CHECK_INBOX in response.get_data(as_text=True)
    assert all_stored() == before


def test_per_address_rate_limit_answers_429(make_app, two_districts):
    app = make_app(SUBSCRIBE_ADDRESS_RATE_LIMIT="2 per day")
    client = app.test_client()
    with app.app_context():
        from tests.conftest import next_local

        event = services.create_event("08115", services.EventData(
            title="Workshop", location="Landratsamt", starts_at=next_local(3, 9), ends_at=next_local(3, 12)))
        services.publish(event)
        db.session.commit()
        assert register(client, event).status_code == 200
        assert register(client, event, email="BERND.extern@sindelfingen.de").status_code == 200
        assert register(client, event).status_code == 429
        assert register(client, event, email="andere@sindelfingen.de").status_code == 200


def test_per_client_rate_limit_answers_429(make_app, two_districts):
    app = make_app(SUBSCRIBE_RATE_LIMIT="2 per hour")
    client = app.test_client()
    with app.app_context():
        from tests.conftest import next_local

        event = services.create_event("08115", services.EventData(
            title="Workshop", location="Landratsamt", starts_at=next_local(3, 9), ends_at=next_local(3, 12)))
        services.publish(event)
        db.session.commit()
        assert register(client, event, email="a@sindelfingen.de").status_code == 200
        assert register(client, event, email="b@sindelfingen.de").status_code == 200
        assert register(client, event, email="c@sindelfingen.de").status_code == 429
        assert client.get(register_path(event)).status_code == 200  # reading is not limited


def test_register_works_from_another_site_with_csrf_on(make_app, two_districts):
    app = make_app(WTF_CSRF_ENABLED=True)
    with app.app_context():
        from tests.conftest import next_local

        event = services.create_event("08115", services.EventData(
            title="Workshop", location="Landratsamt", starts_at=next_local(3, 9), ends_at=next_local(3, 12)))
        services.publish(event)
        db.session.commit()
        response = app.test_client().post(register_path(event), data={
            "name": "Bernd", "email": "bernd@ehningen.de", "municipality": "08115003", "privacy": "1",
        }, headers={"Origin": "https://www.ehningen.de"})
        assert response.status_code == 200
        assert count(Registration) == 1


def test_register_page_only_for_published_public_upcoming_events(client, district, make_event):
    draft = make_event(status="draft")
    private = make_event(public=False, title="Intern")
    assert client.get(register_path(draft)).status_code == 404
    assert client.get(register_path(private)).status_code == 404
    assert register(client, private).status_code == 404
    foreign = make_event()
    assert client.get(register_path(foreign, key="08116")).status_code == 404
    assert client.get(register_path(foreign, key="99999")).status_code == 404
    assert client.get("/d/08115/events/999999/anmelden").status_code == 404
    cancelled = make_event(title="Abgesagter Workshop")
    services.cancel_event(cancelled)
    db.session.commit()
    response = client.get(register_path(cancelled))
    assert response.status_code == 410
    assert "wurde abgesagt" in response.get_data(as_text=True)
    assert register(client, cancelled).status_code == 410
    assert count(Registration) == 0


def test_register_page_serves_staff_signed_in_to_another_district(client, district, make_event, make_user,
                                                                   sign_in):
    event = make_event()
    sign_in(make_user("koordination@lra-es.de", districts=("08116",)))
    assert client.get(register_path(event)).status_code == 200
    assert register(client, event).status_code == 200
    assert count(Registration) == 1


def test_office_hours_registration_needs_a_free_slot(client, district, make_event):
    event = make_event(kind="office_hours")
    html = client.get(register_path(event)).get_data(as_text=True)
    first, second = event.slots[0], event.slots[1]
    assert f'value="{first.id}"' in html and "(frei)" in html
    assert format_when(first.starts_at, first.ends_at).split(",")[0] in html  # grouped by day
    before = all_stored()
    for slot in (None, "", "abc", "999999"):
        response = register(client, event, slot=slot)
        assert response.status_code == 400
        assert "Bitte einen freien Termin wählen." in response.get_data(as_text=True)
    # Every mistake shows at once.
    html = register(client, event, email="kein-at-zeichen", municipality="").get_data(as_text=True)
    for message in ("Ungültige E-Mail-Adresse", "Bitte wählen Sie Ihre Gemeinde.", "Bitte einen freien Termin wählen."):
        assert message in html
    assert 'href="#slot"' in html and 'aria-describedby="slot-error"' in html
    assert all_stored() == before
    response = register(client, event, slot=str(second.id))
    assert response.status_code == 200 and CHECK_INBOX in response.get_data(as_text=True)
    registration = db.session.execute(select(Registration)).scalar_one()
    assert registration.slot_id == second.id and registration.status == "invited"


# --- office-hours booking ----------------------------------------------------------


def booking_path(event, subscriber):
    return "/book/" + make_token("event-booking", {"e": event.id, "s": subscriber.public_id})


@pytest.fixture
def office_hours(district, make_event, make_subscriber):
    event = make_event(kind="office_hours")
    anna = make_subscriber("anna@boeblingen.de", "08115", ags="08115003", name="Anna")
    bernd = make_subscriber("bernd@sindelfingen.de", "08115", ags="08115045", name="Bernd")
    return event, anna, bernd


def test_booking_page_lists_slots_and_changes_nothing(client, office_hours):
    event, anna, _bernd = office_hours
    before = all_stored()
    response = client.get(booking_path(event, anna))
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert len(event.slots) == 18  # 3 Tuesdays, 09:00-12:00, 30 minutes
    for slot in event.slots:
        assert f'value="{slot.id}"' in html
    assert html.count("(frei)") == 18
    assert "anna@boeblingen.de" in html
    assert all_stored() == before


def test_booking_confirms_and_a_second_booking_of_a_one_seat_slot_waits(client, office_hours):
    event, anna, bernd = office_hours
    slot = event.slots[2]
    response = client.post(booking_path(event, anna), data={"slot": str(slot.id)})
    assert response.status_code == 200
    assert "Termin gebucht" in response.get_data(as_text=True)
    first = db.session.execute(select(Registration).where(Registration.email_key == "anna@boeblingen.de"))
    first = first.scalar_one()
    assert (first.status, first.partstat, first.source, first.slot_id) == ("confirmed", "ACCEPTED", "booking",
                                                                          slot.id)
    assert count(EventMail, EventMail.registration_id == first.id, EventMail.kind == "confirmation",
                 EventMail.method == "REQUEST") == 1
    # The slot now shows as taken.
    html = client.get(booking_path(event, bernd)).get_data(as_text=True)
    assert html.count("(frei)") == 17 and "belegt – Warteliste" in html
    response = client.post(booking_path(event, bernd), data={"slot": str(slot.id)})
    assert response.status_code == 200
    assert "Warteliste (Platz 1)" in response.get_data(as_text=True)
    second = db.session.execute(select(Registration).where(Registration.email_key == "bernd@sindelfingen.de"))
    assert second.scalar_one().status == "waiting"
    assert count(Registration, Registration.slot_id == slot.id, Registration.status == "confirmed") == 1
    # Anna sees her booking on her page.
    html = client.get(booking_path(event, anna)).get_data(as_text=True)
    assert "Ihre Buchungen" in html and format_when(slot.starts_at, slot.ends_at) in html


def test_booking_without_a_valid_slot_is_explained_and_changes_nothing(client, office_hours):
    event, anna, _bernd = office_hours
    past = event.slots[0]
    past.cancelled = True
    db.session.commit()
    before = all_stored()
    for data in ({}, {"slot": ""}, {"slot": "abc"}, {"slot": str(past.id)}, {"slot": "999999"}):
        response = client.post(booking_path(event, anna), data=data)
        assert response.status_code == 422
        assert "Bitte einen freien Termin wählen." in response.get_data(as_text=True)
    assert all_stored() == before


def test_forged_booking_links_are_404(app, client, office_hours, make_event, make_subscriber):
    event, anna, _bernd = office_hours
    workshop = make_event()
    foreign = make_subscriber("eva@esslingen.de", "08116", ags="08116019")
    good = booking_path(event, anna)[len("/book/"):]
    tokens = [
        good[:-1], good[:-12], good.rpartition(".")[0], secrets.token_urlsafe(30), "x",
        make_token("event-rsvp", {"e": event.id, "s": anna.public_id}),
        make_token("subscriber-manage", {"s": anna.public_id}),
        make_token("event-booking", {"e": workshop.id, "s": anna.public_id}),
        make_token("event-booking", {"e": event.id, "s": foreign.public_id}),
        make_token("event-booking", {"e": event.id, "s": "0" * 32}),
        make_token("event-booking", {"e": 999999, "s": anna.public_id}),
        make_token("event-booking", {"e": str(event.id), "s": anna.public_id}),
        make_token("event-booking", {"e": True, "s": anna.public_id}),
        make_token("event-booking", {"e": event.id}),
        make_token("event-booking", [event.id, anna.public_id]),
        URLSafeTimedSerializer("other", salt="egov-reach:event-booking").dumps({"e": event.id, "s": anna.public_id}),
    ]
    before = all_stored()
    for token in tokens:
        assert client.get("/book/" + token).status_code == 404, token
        assert client.post("/book/" + token, data={"slot": str(event.slots[0].id)}).status_code == 404, token
    assert all_stored() == before


def test_booking_a_cancelled_series_or_after_leaving_the_list_is_409(client, office_hours):
    event, anna, bernd = office_hours
    from subscribers import services as subscriber_services

    subscriber_services.unsubscribe(bernd)
    db.session.commit()
    before = all_stored()
    response = client.post(booking_path(event, bernd), data={"slot": str(event.slots[0].id)})
    assert response.status_code == 409
    assert "nicht mehr gültig" in response.get_data(as_text=True)
    assert "nicht mehr gültig" in client.get(booking_path(event, bernd)).get_data(as_text=True)
    assert all_stored() == before
    services.cancel_event(event)
    db.session.commit()
    before = all_stored()
    response = client.post(booking_path(event, anna), data={"slot": str(event.slots[0].id)})
    assert response.status_code == 409
    assert "abgesagt" in response.get_data(as_text=True)
    html = client.get(booking_path(event, anna)).get_data(as_text=True)
    assert "abgesagt" in html and f'value="{event.slots[0].id}"' not in html
    assert all_stored() == before


def test_booking_link_from_the_invitation_mail_works(two_districts, make_event, make_subscriber, smtp_app,
                                                      smtp_server, run_jobs):
    # smtp_app last: its app context is pushed after the plain app's, so mail reaches the server.
    event = make_event(kind="office_hours")
    make_subscriber("anna@boeblingen.de", "08115", ags="08115003")
    services.invite(event)
    db.session.commit()
    from events.jobs import enqueue_senders

    enqueue_senders(event.id)
    run_jobs()
    message = smtp_server.wait_for(1)[0]
    body = message.get_body(("plain",)).get_content()
    url = next(word for word in body.split() if "/book/" in word)
    path = "/book/" + url.split("/book/", 1)[1].rstrip(".,)>")
    client = smtp_app.test_client()
    assert client.get(path).status_code == 200
    assert client.post(path, data={"slot": str(event.slots[0].id)}).status_code == 200
    assert db.session.execute(select(Registration.status)).scalar_one() == "confirmed"


# --- calendar feed and list -------------------------------------------------------------


def feed_calendar(client, key="08115"):
    response = client.get(f"/d/{key}/events.ics")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/calendar; charset=utf-8"
    assert response.headers["Content-Disposition"].startswith("inline;")
    assert ".ics" in response.headers["Content-Disposition"]
    text = response.get_data(as_text=True)
    if "BEGIN:VEVENT" not in text:  # nothing upcoming: still a calendar a client subscribes to
        return icalendar.Calendar.from_ical(text), text
    return check_calendar(text, attendees=0), text


def test_feed_expands_office_hours_to_the_right_tuesdays(client, district, make_event):
    event = make_event(kind="office_hours")
    calendar, _text = feed_calendar(client)
    assert "METHOD" not in calendar
    first = event.starts_at.astimezone(BERLIN).date()
    occurrences = recurring_ical_events.of(calendar).between(first - timedelta(days=1), first + timedelta(days=120))
    starts = sorted(o["DTSTART"].dt for o in occurrences)
    expected = [first + timedelta(days=14 * n) for n in range(3)]
    assert [s.date() for s in starts] == expected
    for start, end in zip(starts, sorted(o["DTEND"].dt for o in occurrences)):
        assert start.weekday() == 1  # Tuesday
        assert (start.hour, start.minute) == (9, 0) and (end.hour, end.minute) == (12, 0)
        assert start.utcoffset() == datetime.combine(start.date(), datetime.min.time(), BERLIN).utcoffset()
        assert str(start.tzinfo) in ("Europe/Berlin",) or start.tzname() in ("CET", "CEST")


def test_feed_holds_only_this_districts_published_public_upcoming_events(client, two_districts, make_event):
    shown = make_event(title="Workshop Böblingen")
    make_event(title="Entwurf Böblingen", status="draft")
    make_event(title="Intern Böblingen", public=False)
    cancelled = make_event(title="Abgesagt Böblingen")
    services.cancel_event(cancelled)
    over = make_event(title="Vorbei Böblingen")
    past = datetime.now(timezone.utc) - timedelta(days=3)
    db.session.execute(update(Slot).where(Slot.event_id == over.id)
                       .values(starts_at=past, ends_at=past + timedelta(hours=3)))
    db.session.execute(update(Event).where(Event.id == over.id)
                       .values(starts_at=past, ends_at=past + timedelta(hours=3)))
    make_event("08116", title="Workshop Esslingen", location="Landratsamt Esslingen")
    db.session.commit()
    calendar, _text = feed_calendar(client)
    summaries = [str(v["SUMMARY"]) for v in calendar.walk("VEVENT")]
    assert summaries == ["Workshop Böblingen"]
    entry = calendar.walk("VEVENT")[0]
    assert str(entry["URL"]).endswith(register_path(shown))
    calendar, _text = feed_calendar(client, "08116")
    assert [str(v["SUMMARY"]) for v in calendar.walk("VEVENT")] == ["Workshop Esslingen"]
    assert client.get("/d/99999/events.ics").status_code == 404


def test_office_hours_stay_in_the_feed_until_their_last_slot_ends(client, district, make_event):
    event = make_event(kind="office_hours")
    # The first Tuesday is over, the series is not.
    shift = timedelta(days=21)
    for slot in event.slots:
        slot.starts_at, slot.ends_at = slot.starts_at - shift, slot.ends_at - shift
    event.starts_at, event.ends_at = event.starts_at - shift, event.ends_at - shift
    db.session.commit()
    calendar, _text = feed_calendar(client)
    assert [str(v["SUMMARY"]) for v in calendar.walk("VEVENT")] == [event.title]
    for slot in event.slots:
        slot.starts_at, slot.ends_at = slot.starts_at - 2 * shift, slot.ends_at - 2 * shift
    event.starts_at, event.ends_at = event.starts_at - 2 * shift, event.ends_at - 2 * shift
    db.session.commit()
    calendar, _text = feed_calendar(client)
    assert calendar.walk("VEVENT") == []


def test_upcoming_lists_public_events_with_register_links_and_webcal(client, two_districts, make_event,
                                                                     make_user, sign_in):
    workshop = make_event(title="Workshop E-Akte")
    hours = make_event(kind="office_hours", title="Sprechstunde OZG")
    make_event(title="Entwurf", status="draft")
    make_event(title="Intern", public=False)
    make_event("08116", title="Workshop Esslingen")
    sign_in(make_user("koordination@lra-es.de", districts=("08116",)))  # unscoped: others see it too
    before = all_stored()
    response = client.get("/d/08115/veranstaltungen")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "Workshop E-Akte" in html and "Sprechstunde OZG" in html
    assert "Entwurf" not in html and "Intern" not in html and "Workshop Esslingen" not in html
    assert f'href="{register_path(workshop)}"' in html and f'href="{register_path(hours)}"' in html
    assert 'href="webcal://localhost/d/08115/events.ics"' in html
    assert "18 freie Termine" in html
    assert all_stored() == before
    assert client.get("/d/99999/veranstaltungen").status_code == 404


def test_feed_keeps_the_meeting_link_for_attendees(client, district, make_event):
    make_event(location="", online_url="https://konferenz.bw.example/r/geheim")
    _calendar, text = feed_calendar(client)
    assert "geheim" not in text
    entry = _calendar.walk("VEVENT")[0]
    assert str(entry["LOCATION"]) == "Online"
