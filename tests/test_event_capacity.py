"""Seats under concurrency: 100 people accept a 20-seat workshop at the same moment.

Each answer runs in its own thread with its own app context, session and
database connection, as concurrent requests and inbound replies do; the
suite runs this on SQLite and on PostgreSQL.
"""
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, insert, select

from core.extensions import db
from events import services
from events.models import EventMail, Registration
from subscribers.models import utcnow

PEOPLE = 100
SEATS = 20


@pytest.fixture
def crowd(two_districts, make_event):
    """A 20-seat workshop and 100 invited registrations (written in bulk)."""
    event = make_event(capacity=SEATS)
    slot = event.slots[0]
    now = utcnow()
    db.session.execute(insert(Registration), [
        {"public_id": f"p{n:03d}", "uid": f"u{n:03d}", "event_id": event.id, "slot_id": slot.id,
         "district_key": "08115", "municipality_ags": "08115003" if n % 2 else "08115045",
         "email": f"person{n:03d}@boeblingen.de", "email_key": f"person{n:03d}@boeblingen.de",
         "name": f"Person {n}", "status": "invited", "partstat": "NEEDS-ACTION", "source": "invitation",
         "created_at": now, "updated_at": now}
        for n in range(PEOPLE)
    ])
    db.session.commit()
    ids = db.session.execute(select(Registration.id).order_by(Registration.id)).scalars().all()
    return event, ids


@pytest.fixture
def busy_app(make_app, app):
    """An app with a larger pool: a connection for every thread on SQLite, 20 on PostgreSQL (which allows
    100 clients in all); threads beyond it wait for a connection, then answer together with the others."""
    options = {"pool_size": 50, "max_overflow": 60, "pool_timeout": 60}
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        options["connect_args"] = {"timeout": 60}
    else:
        options.update(pool_size=20, max_overflow=0, pool_pre_ping=True)
    return make_app(SQLALCHEMY_ENGINE_OPTIONS=options)


def answer_all(app, ids, answer="accept"):
    """Every registration answers at once (released together by a barrier); returns the errors."""
    barrier = threading.Barrier(len(ids))
    errors = []

    def one(registration_id):
        with app.app_context():
            try:
                registration = db.session.get(Registration, registration_id)
                db.session.commit()  # give the connection back: a thread waiting for one must not block the barrier
                barrier.wait(timeout=60)
                services.respond(registration, answer)
                db.session.commit()
            except Exception as error:  # collected: a thread's exception would otherwise vanish
                db.session.rollback()
                errors.append(repr(error))
            finally:
                db.session.remove()

    with ThreadPoolExecutor(max_workers=len(ids)) as pool:
        list(pool.map(one, ids))
    return errors


def statuses(event):
    db.session.expire_all()
    return dict(db.session.execute(
        select(Registration.status, func.count()).where(Registration.event_id == event.id)
        .group_by(Registration.status)
    ).all())


def test_100_concurrent_acceptances_for_20_seats(busy_app, crowd):
    event, ids = crowd
    assert answer_all(busy_app, ids) == []
    assert statuses(event) == {"confirmed": SEATS, "waiting": PEOPLE - SEATS}
    positions = db.session.execute(
        select(Registration.waiting_position).where(Registration.status == "waiting")
        .order_by(Registration.waiting_position)
    ).scalars().all()
    assert positions == list(range(1, PEOPLE - SEATS + 1))
    # Every answer queued exactly one mail: a confirmation or a waiting-list notice.
    kinds = dict(db.session.execute(select(EventMail.kind, func.count()).group_by(EventMail.kind)).all())
    assert kinds == {"confirmation": SEATS, "waiting": PEOPLE - SEATS}

    # One cancellation promotes exactly the first person waiting.
    first_waiting = db.session.execute(
        select(Registration).where(Registration.waiting_position == 1)
    ).scalar_one()
    leaving = db.session.execute(
        select(Registration).where(Registration.status == "confirmed").limit(1)
    ).scalar_one()
    services.respond(leaving, "decline")
    db.session.commit()
    assert statuses(event) == {"confirmed": SEATS, "waiting": PEOPLE - SEATS - 1, "declined": 1}
    promoted = db.session.execute(
        select(EventMail.registration_id).where(EventMail.kind == "promotion")
    ).scalars().all()
    assert promoted == [first_waiting.id]
    assert db.session.get(Registration, first_waiting.id).status == "confirmed"


def test_concurrent_cancellations_promote_each_waiting_person_once(busy_app, crowd):
    event, ids = crowd
    assert answer_all(busy_app, ids) == []
    confirmed = db.session.execute(
        select(Registration.id).where(Registration.status == "confirmed")
    ).scalars().all()
    # Ten seats are given back at the same moment: the first ten waiting move up, nobody twice.
    assert answer_all(busy_app, confirmed[:10], "decline") == []
    assert statuses(event) == {"confirmed": SEATS, "waiting": PEOPLE - SEATS - 10, "declined": 10}
    promoted = db.session.execute(
        select(Registration.waiting_position, EventMail.registration_id)
        .join(EventMail, EventMail.registration_id == Registration.id).where(EventMail.kind == "promotion")
    ).all()
    assert len(promoted) == 10 and len({r for _p, r in promoted}) == 10
    remaining = db.session.execute(
        select(func.min(Registration.waiting_position)).where(Registration.status == "waiting")
    ).scalar_one()
    assert remaining == 11


def test_capacity_can_not_drop_below_the_seats_taken(busy_app, crowd):
    event, ids = crowd
    assert answer_all(busy_app, ids[:5]) == []
    data = services.event_data(event)
    data.capacity = 4
    with pytest.raises(services.EventError):
        services.update_event(event, data)
    db.session.rollback()
    data = services.event_data(event)
    data.capacity = 30
    services.update_event(event, data)
    db.session.commit()
    assert event.slots[0].capacity == 30


def test_office_hours_across_the_spring_forward_night_get_distinct_slots(make_district, make_event):
    """00:30–02:30 UTC on 28 March 2027 spans the hour that does not exist in Berlin (02:00–03:00)."""
    from datetime import datetime, timezone

    make_district(municipalities=[("08115003", "Böblingen, Stadt")])
    event = make_event(kind="office_hours", starts_at=datetime(2027, 3, 28, 0, 30, tzinfo=timezone.utc), hours=2,
                       rrule="FREQ=WEEKLY;COUNT=2", slot_minutes=30)
    starts = [slot.starts_at for slot in event.slots]
    assert len(starts) == len(set(starts)) == 8
    first_night = [slot for slot in event.slots if slot.starts_at.day == 28]
    assert [(s.ends_at - s.starts_at).seconds for s in first_night] == [1800] * 4
