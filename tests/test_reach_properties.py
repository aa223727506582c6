"""Property: whatever happens to the raw rows, the rollup says what the raw rows say.

A hypothesis state machine runs random sequences of what happens in the
service (sends and bounces, opens and clicks, invitations, seats, check-ins,
cancellations, moved workshops, logged contacts, erasures) through the real
services, and commits after each one as a request would. After every step
the dirty marks are refreshed and the rollup must agree with the raw rows:
the touch log row for row and every day, month and year bucket, and then
what the services say from the rollup against what they say from the raw rows
(`source="raw"`): `cells`, `people` and the district and state reports, for
periods, filters and districts taken in turn (all of them each step would
not fit the time this test may take). At the end of each example a rebuild
from the raw rows must change nothing.

Times come from a pool that favours the awkward ones: Berlin midnight in
winter and summer, the DST changes (last Sunday of March and October,
01:00 UTC), month and year ends, and the edges of the checked periods.

`REACH_HYPOTHESIS_EXAMPLES` / `REACH_HYPOTHESIS_STEPS` run more (defaults
30 and 15); `REACH_HYPOTHESIS_FULL=1` compares every figure after every
step. A failure prints the sequence of steps that reproduces it, and
hypothesis replays it first on the next run (from `.hypothesis/`, which
ignores itself in git).
"""
import os
from contextlib import contextmanager
from datetime import date, datetime, timedelta, timezone
from itertools import count
from unittest import mock

from hypothesis import HealthCheck, note, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import delete, insert, select, union_all, update

from core.extensions import db
from core.inbound import handle_message
from directory.models import District
from events import services as event_services
from events.models import Event, EventMail, Registration
from events.sending import mail_rows
from newsletter import tracking
from newsletter.models import Delivery, Link
from newsletter.sending import delivery_rows
from reach import rollup, services
from reach.definition import berlin_today, touch_sources
from reach.models import Contact, DirtyDay, RefreshState, Rollup, Touch
from reach.period import Filters
from subscribers import privacy
from subscribers.models import Subscriber
from subscribers.services import SubscriberError
from tests.reach_history import A, B, C, D, E1, E2, History

try:  # the contacts services (reach.contacts); the raw builder when they are not there
    from reach import contacts as contact_services
    from reach.contacts import ContactError
except ImportError:  # pragma: no cover
    contact_services = None

    class ContactError(ValueError):
        pass


EXAMPLES = int(os.environ.get("REACH_HYPOTHESIS_EXAMPLES", "30"))
STEPS = int(os.environ.get("REACH_HYPOTHESIS_STEPS", "15"))
FULL = os.environ.get("REACH_HYPOTHESIS_FULL") == "1"  # every figure after every step (slow)

UTC = timezone.utc
MUNICIPALITIES = {"08115": [A, B, C, D], "08116": [E1, E2]}
DISTRICTS = sorted(MUNICIPALITIES)
SUBSCRIBERS_PER_MUNICIPALITY = 2
# The services' clock: events are created, answered and moved before any of the times drawn, checked in after.
EARLY = datetime(2024, 6, 1, 8, 0, tzinfo=UTC)
LATE = datetime(2028, 6, 1, 8, 0, tzinfo=UTC)
BROWSER = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Thunderbird/128.3.0"
IMAGE_PROXY = "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"

# --- what is checked -------------------------------------------------------------------------

PERIODS = [
    (date(2025, 1, 1), date(2027, 12, 31)),  # year buckets
    (date(2026, 3, 1), date(2026, 3, 31)),  # a month bucket, with the spring DST change
    (date(2026, 3, 28), date(2026, 3, 31)),  # day buckets across the DST change
    (date(2026, 10, 24), date(2026, 11, 2)),  # day buckets across the autumn change and a month end
]
FILTERS = [
    {},
    {"topic": "service-bw"},
    {"channels": ("event",)},
    {"channels": ("newsletter", "contact")},
]
KEY_SETS = [None, ["08115"], ["08116"]]
CHECKS = [(p, f, k) for p in range(len(PERIODS)) for f in range(len(FILTERS)) for k in range(len(KEY_SETS))]
REPORTS = ["08115", "state", "08116"]


def _utc(*args):
    return datetime(*args, tzinfo=UTC)


def _around(moment, seconds):
    return [moment + timedelta(seconds=s) for s in seconds]


EDGE_TIMES = [
    # DST changes: 01:00 UTC on the last Sundays of March and October.
    *_around(_utc(2026, 3, 29, 1), (-1, 0, 1, -3600, 3600)),
    *_around(_utc(2026, 10, 25, 1), (-1, 0, 1, -3600, 3600)),
    _utc(2026, 3, 29, 0, 59, 59, 999999),
    _utc(2026, 10, 25, 0, 59, 59, 999999),
    *_around(_utc(2025, 3, 30, 1), (-1, 0)), *_around(_utc(2025, 10, 26, 1), (-1, 0)),
    *_around(_utc(2027, 3, 28, 1), (-1, 0)), *_around(_utc(2027, 10, 31, 1), (-1, 0)),
    # Berlin midnight: 23:00 UTC in winter, 22:00 UTC in summer.
    *_around(_utc(2026, 1, 15, 23), (-1, 0, 1800)),
    *_around(_utc(2026, 7, 15, 22), (-1, 0, 1800)),
    *_around(_utc(2026, 3, 27, 23), (-1, 0)),  # the odd range starts at 00:00 CET on 28 March
    *_around(_utc(2026, 3, 31, 22), (-1, 0)),  # … and ends at 24:00 CEST on 31 March
    *_around(_utc(2026, 2, 28, 23), (-1, 0)),  # March begins
    *_around(_utc(2026, 10, 23, 22), (-1, 0)),  # 24 October, still summer time
    *_around(_utc(2026, 11, 2, 23), (-1, 0)),  # 3 November, winter time
    # Year ends, also just outside the checked years.
    *_around(_utc(2024, 12, 31, 23), (-1, 0)),
    *_around(_utc(2025, 12, 31, 23), (-1, 0)),
    *_around(_utc(2027, 12, 31, 23), (-1, 0)),
]

instants = st.one_of(
    st.sampled_from(EDGE_TIMES),
    st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2027, 12, 31, 23, 59, 59))
    .map(lambda moment: moment.replace(tzinfo=UTC)),
    # A few hours either side of a DST change.
    st.tuples(st.sampled_from([_utc(2026, 3, 29, 1), _utc(2026, 10, 25, 1)]), st.integers(-6 * 3600, 6 * 3600))
    .map(lambda pair: pair[0] + timedelta(seconds=pair[1])),
)
# Opens and clicks: some time after the mail was sent, or (None) at any time drawn; before the mail was sent
# (or within seconds of it) the tracking service takes them for machines'.
after_sending = st.sampled_from([timedelta(seconds=s) for s in (3 * 3600, 11, 5, 600, 86400)] + [None])
picks = st.integers(min_value=0, max_value=63)


def _contact_days():
    last = min(berlin_today(), date(2027, 12, 31))  # a contact can not be logged ahead of time
    edges = [d for d in (date(2025, 1, 1), date(2025, 12, 31), date(2026, 1, 1), date(2026, 2, 28),
                         date(2026, 3, 1), date(2026, 3, 28), date(2026, 3, 29), date(2026, 3, 31),
                         date(2026, 4, 1), date(2026, 10, 24), date(2026, 10, 25), date(2026, 11, 2),
                         date(2026, 11, 3)) if d <= last]
    return st.one_of(st.sampled_from(edges), st.dates(date(2025, 1, 1), last))


contact_days = _contact_days()


def pick(items, index):
    return items[index % len(items)]


@contextmanager
def clock(moment):
    """Let the services think it is `moment` (the rows' own created_at defaults keep the real time)."""
    with mock.patch.object(event_services, "utcnow", lambda: moment), \
            mock.patch.object(tracking, "utcnow", lambda: moment):
        yield


def dsn(message_id, recipient):
    """A Postfix-style hard bounce about the mail `message_id`, as bytes from the mailbox."""
    return f"""\
From: MAILER-DAEMON@mail.lrabb.de (Mail Delivery System)
To: inbound@lrabb.de
Subject: Undelivered Mail Returned to Sender
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="BOUNDARY"

--BOUNDARY
Content-Type: text/plain; charset=utf-8

<{recipient}>: host mx.example.org said: 550 5.1.1 User unknown

--BOUNDARY
Content-Type: message/delivery-status

Reporting-MTA: dns; mail.lrabb.de

Final-Recipient: rfc822; {recipient}
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 <{recipient}>: User unknown

--BOUNDARY
Content-Type: text/rfc822-headers

Message-ID: {message_id}
To: {recipient}
Subject: Newsletter

--BOUNDARY--
""".replace("\n", "\r\n").encode()


def wipe():
    """Empty every table (FK-safe order), then the reach tables the deletes' triggers wrote to."""
    db.session.rollback()
    for table in reversed(db.metadata.sorted_tables):
        db.session.execute(table.delete())
    for model in (DirtyDay, Touch, Rollup, RefreshState):
        db.session.execute(delete(model))
    db.session.commit()
    db.session.expunge_all()


# --- the oracle ------------------------------------------------------------------------------------


def _row(values):
    district, ags, level, channel, offer, person, day = values
    return district, ags, int(level), int(channel), int(offer), person, str(day)[:10]


def logged_touches():
    return sorted(_row(r) for r in db.session.execute(select(
        Touch.district_key, Touch.municipality_ags, Touch.level, Touch.channel, Touch.offer_id, Touch.person,
        Touch.day)))


def raw_touches():
    return sorted(_row(r) for r in db.session.execute(union_all(*touch_sources())))


def rollup_rows():
    return sorted(tuple(str(v) for v in r) for r in db.session.execute(select(
        Rollup.tier, Rollup.start, Rollup.municipality_ags, Rollup.level, Rollup.channel, Rollup.district_key,
        Rollup.first_day, Rollup.last_day, Rollup.touches)))


def expected_rollup(touches):
    """The rollup's rows as `reach.rollup` defines them, computed here from the raw touches."""
    buckets = {}
    for district, ags, level, channel, _offer, _person, day in touches:
        day = date.fromisoformat(day)
        for tier, start in ((rollup.DAY, day), (rollup.MONTH, day.replace(day=1)),
                            (rollup.YEAR, day.replace(month=1, day=1))):
            bucket = buckets.setdefault((tier, start, ags, level, channel), [district, day, day, 0])
            bucket[0], bucket[1], bucket[2] = min(bucket[0], district), min(bucket[1], day), max(bucket[2], day)
            bucket[3] += 1
    return sorted(tuple(str(v) for v in (*key, *value)) for key, value in buckets.items())


def district_view(report):
    return report.summary, report.months, report.rows


def state_view(report):
    return report.summary, [(line.district.key, line.summary) for line in report.districts]


class ReachMachine(RuleBasedStateMachine):
    """The raw rows of two districts, changed one committed operation at a time."""

    def __init__(self):
        super().__init__()
        self.numbers = count(1)
        self.checks = 0
        self.offset = 0
        self.erasures = 0
        self.settled = True  # False while a step runs: teardown's rebuild check then keeps quiet

    # --- helpers -----------------------------------------------------------------------------

    @contextmanager
    def request(self, at=None):
        """One request: commit at the end; a refusal by the services rolls back (and is noted)."""
        self.settled = False
        try:
            if at is None:
                yield
            else:
                with clock(at):
                    yield
            db.session.commit()
        except (event_services.EventError, ContactError, SubscriberError) as error:
            db.session.rollback()
            note(f"refused: {error}")
        self.settled = True

    def ids(self, query):
        return db.session.execute(query.order_by("id")).scalars().all()

    def subscriber_ids(self):
        return self.ids(select(Subscriber.id))

    def event_ids(self):
        return self.ids(select(Event.id))

    # --- the world at the start of an example ----------------------------------------------------

    @initialize(offset=st.integers(0, len(CHECKS) - 1), events=st.lists(st.tuples(
        st.sampled_from(DISTRICTS), st.sampled_from(["workshop", "office_hours"]), instants,
        st.sampled_from([1, 2, None]), st.sampled_from([None, "service-bw", "E-Rechnung"])), min_size=1, max_size=2))
    def fresh_world(self, offset, events):
        """Two districts, two subscribers per municipality, three newsletters with a link each, an event or two."""
        self.offset = offset
        wipe()
        self.history = h = History().directory()
        for key, municipalities in MUNICIPALITIES.items():
            for ags in municipalities:
                for n in range(SUBSCRIBERS_PER_MUNICIPALITY):
                    subscriber = h.subscriber(ags)
                    if n == 0:  # half of them get the district's service-bw topic (event audiences)
                        subscriber.topics = [h.rows[f"topic {key} service-bw"]]
        self.newsletters = []
        for key, subject, topics in (("08115", "Januar", ["service-bw"]), ("08115", "Februar", []),
                                     ("08116", "Esslingen", ["service-bw"])):
            newsletter = h.newsletter(key, subject, topics=topics)
            link = Link(newsletter_id=newsletter.id, district_key=key, url="https://www.service-bw.de/")
            db.session.add(link)
            db.session.flush()
            self.newsletters.append((newsletter.id, link.id, key))
        db.session.commit()
        for event in events:
            self.create_event(*event)

    # --- newsletters -------------------------------------------------------------------------------

    @rule(newsletter=picks, subscriber=picks, at=instants,
          outcome=st.sampled_from(["sent", "sent", "deferred, then sent", "failed"]))
    def send(self, newsletter, subscriber, at, outcome):
        """A delivery as the pipeline writes it: queued, claimed, recorded (suppressed if no longer active)."""
        newsletter_id, _link, district = pick(self.newsletters, newsletter)
        subscriber = db.session.get(Subscriber, pick(
            self.ids(select(Subscriber.id).where(Subscriber.district_key == district)), subscriber))
        if db.session.execute(select(Delivery.id).where(Delivery.newsletter_id == newsletter_id,
                                                        Delivery.subscriber_id == subscriber.id)).first():
            note("already has this newsletter")
            return
        self.settled = False
        delivery_id = db.session.execute(insert(Delivery).returning(Delivery.id), [{
            "newsletter_id": newsletter_id, "subscriber_id": subscriber.id, "district_key": district,
            "municipality_ags": subscriber.municipality_ags, "status": "queued", "attempts": 0,
            "next_attempt_at": at, "smtp_reply": ""}]).scalar_one()
        active = subscriber.status == "active"
        db.session.commit()

        def claim():
            db.session.execute(update(Delivery).where(Delivery.id == delivery_id)
                               .values(status="sending", claimed_until=at + timedelta(minutes=5)))
            db.session.commit()

        claim()
        if not active:
            delivery_rows.record(delivery_id, status="suppressed")
        elif outcome == "failed":
            delivery_rows.record(delivery_id, status="failed", smtp_reply="550 5.1.1 User unknown")
        else:
            if outcome.startswith("deferred"):
                delivery_rows.record(delivery_id, status="deferred", smtp_reply="451 4.7.1 Try again later",
                                     next_attempt_at=at)
                claim()
            delivery_rows.record(delivery_id, status="sent", sent_at=at, smtp_reply="250",
                                 message_id=f"<n{delivery_id}.{next(self.numbers)}@lrabb.de>")
        self.settled = True

    def sent_delivery_ids(self):
        return self.ids(select(Delivery.id).where(Delivery.status == "sent"))

    @precondition(lambda self: self.sent_delivery_ids())
    @rule(delivery=picks)
    def bounce(self, delivery):
        """A hard bounce comes back for a sent delivery (found by its Message-ID, as the inbox handler does)."""
        row = db.session.get(Delivery, pick(self.sent_delivery_ids(), delivery))
        if row.message_id is None:  # erased: nobody can say whose bounce it is any more
            note("the delivery's subscriber was erased; the bounce finds nothing")
        recipient = row.subscriber.email if row.subscriber else "someone@example.org"
        self.settled = False
        handle_message(dsn(row.message_id or "<gone@lrabb.de>", recipient))  # commits
        self.settled = True

    def delivery_ids(self):
        return self.ids(select(Delivery.id))

    @precondition(lambda self: self.delivery_ids())
    @rule(delivery=picks, kind=st.sampled_from(["open", "click"]), at=instants, after=after_sending,
          agent=st.sampled_from(["browser", "browser", "image proxy", "HEAD"]))
    def track(self, delivery, kind, at, after, agent):
        """An open (pixel) or a click, of a sent mail mostly; the tracking service decides if a machine made it."""
        row = db.session.get(Delivery, pick(self.sent_delivery_ids() or self.delivery_ids(), delivery))
        if after is not None and row.sent_at is not None:
            at = row.sent_at + after
        link_id = {n: link for n, link, _key in self.newsletters}[row.newsletter_id]
        user_agent = IMAGE_PROXY if agent == "image proxy" else BROWSER
        with self.request(at):
            if kind == "open":
                tracking.record_open(row.id, user_agent, head=agent == "HEAD")
            else:
                assert tracking.record_click(row.id, link_id, user_agent, head=agent == "HEAD")

    # --- events ---------------------------------------------------------------------------------

    @precondition(lambda self: len(self.event_ids()) < 4)
    @rule(district=st.sampled_from(DISTRICTS), kind=st.sampled_from(["workshop", "office_hours"]),
          starts_at=instants, capacity=st.sampled_from([1, 2, None]),
          topic=st.sampled_from([None, "service-bw", "E-Rechnung"]))
    def create_event(self, district, kind, starts_at, capacity, topic):
        """A published workshop (2 h), or office hours: two weekly sessions of two 30-minute slots."""
        name = f"topic {district} {topic}"
        topics = [self.history.rows[name]] if name in self.history.rows else []  # E-Rechnung: only 08115
        data = event_services.EventData(
            kind=kind, title=f"Veranstaltung {next(self.numbers)}", location="Landratsamt", starts_at=starts_at,
            ends_at=starts_at + timedelta(hours=2 if kind == "workshop" else 1),
            rrule="FREQ=WEEKLY;COUNT=2" if kind == "office_hours" else "", slot_minutes=30, capacity=capacity,
            topics=topics,
        )
        with self.request(EARLY):
            event = event_services.create_event(district, data)
            event_services.publish(event)

    def queued_invitation_ids(self):
        return self.ids(select(EventMail.id).where(EventMail.kind == "invitation", EventMail.status == "queued"))

    @precondition(lambda self: self.event_ids())
    @rule(event=picks, sends=st.lists(st.tuples(picks, instants, st.sampled_from(["sent", "sent", "failed"])),
                                      max_size=3))
    def invite(self, event, sends):
        """Invitations to an event's audience are queued (a workshop's make `invited` registrations too); the
        event pipeline then sends some of the queued ones."""
        with self.request(EARLY):
            event_services.invite(db.session.get(Event, pick(self.event_ids(), event)))
        for mail, at, outcome in sends:
            queued = self.queued_invitation_ids()
            if not queued:
                break
            mail_id = pick(queued, mail)
            self.settled = False
            db.session.execute(update(EventMail).where(EventMail.id == mail_id)
                               .values(status="sending", claimed_until=at + timedelta(minutes=5)))
            db.session.commit()
            if outcome == "sent":
                mail_rows.record(mail_id, status="sent", sent_at=at, smtp_reply="250",
                                 message_id=f"<e{mail_id}.{next(self.numbers)}@lrabb.de>")
            else:
                mail_rows.record(mail_id, status="failed", smtp_reply="550 5.1.1 User unknown")
            self.settled = True

    @precondition(lambda self: self.event_ids())
    @rule(event=picks, slot=picks, person=st.one_of(picks, st.just("guest")),
          answer=st.sampled_from(["accept", "accept", "tentative", "decline"]))
    def register(self, event, slot, person, answer):
        """A seat: an office-hours booking by a subscriber, or the public form and the answer to its invitation."""
        event = db.session.get(Event, pick(self.event_ids(), event))
        slot = pick(event.slots, slot)
        with self.request(EARLY):
            if person == "guest":
                n = next(self.numbers)
                registration = event_services.request_invitation(
                    event, slot, f"gast{n}@example.org", f"Gast {n}", pick(MUNICIPALITIES[event.district_key], n))
            else:
                subscriber = db.session.get(Subscriber, pick(self.ids(
                    select(Subscriber.id).where(Subscriber.district_key == event.district_key)), person))
                if event.kind == "office_hours" and answer != "decline":
                    event_services.book(event, slot, subscriber)
                    return
                registration = event_services.request_invitation(
                    event, slot, subscriber.email, subscriber.name, subscriber.municipality_ags)
            event_services.respond(registration, answer)

    def registration_ids(self):
        return self.ids(select(Registration.id))

    @precondition(lambda self: self.registration_ids())
    @rule(registration=picks, answer=st.sampled_from(["accept", "tentative", "decline", "decline", "remove"]))
    def respond(self, registration, answer):
        """An answer by link (a decline frees the seat for the first one waiting), or the coordinator takes
        someone off."""
        registration = db.session.get(Registration, pick(self.registration_ids(), registration))
        with self.request(EARLY):
            if answer == "remove":
                event_services.remove(registration)
            else:
                event_services.respond(registration, answer)

    @precondition(lambda self: self.registration_ids())
    @rule(registration=picks, value=st.sampled_from(["attended", "attended", "no_show", None]))
    def check_in(self, registration, value):
        """Attendance recorded (or changed, or taken back) after the event; mostly of confirmed seats."""
        confirmed = self.ids(select(Registration.id).where(Registration.status == "confirmed"))
        registration = db.session.get(Registration, pick(confirmed or self.registration_ids(), registration))
        with self.request(LATE):
            event_services.set_attendance(registration, value)

    @precondition(lambda self: self.event_ids())
    @rule(event=picks, change=st.sampled_from(["move", "move", "cancel"]), starts_at=instants)
    def change_event(self, event, change, starts_at):
        """The event is moved (a workshop's slot moves along; office hours only while nobody holds a slot) or
        called off (cancellation mails are queued; nothing here needs a mail server)."""
        event = db.session.get(Event, pick(self.event_ids(), event))
        with self.request(EARLY):
            if change == "cancel":
                event_services.cancel_event(event)
            else:
                data = event_services.event_data(event)
                data.starts_at, data.ends_at = starts_at, starts_at + (event.ends_at - event.starts_at)
                event_services.update_event(event, data)

    # --- contacts -----------------------------------------------------------------------------------

    def contact_ids(self):
        return self.ids(select(Contact.id))

    @precondition(lambda self: len(self.contact_ids()) < 4)
    @rule(district=st.sampled_from(DISTRICTS), day=contact_days, places=st.sets(picks, min_size=1, max_size=3),
          topic=st.booleans())
    def log_contact(self, district, day, places, topic):
        municipalities = sorted({pick(MUNICIPALITIES[district], i) for i in places})
        topics = [self.history.rows[f"topic {district} service-bw"].id] if topic else []
        with self.request():
            if contact_services is not None:
                contact_services.create_contact(district, {
                    "date": day, "kind": "telefon", "municipalities": municipalities, "topics": topics, "note": ""})
            else:  # pragma: no cover
                self.history.contact(district, day, municipalities, topics=["service-bw"] if topic else [])

    @precondition(lambda self: self.contact_ids())
    @rule(contact=picks, day=contact_days, places=st.one_of(st.none(), st.sets(picks, min_size=1, max_size=3)),
          delete=st.booleans())
    def change_contact(self, contact, day, places, delete):
        """A contact gets another date (and perhaps other municipalities), or is deleted."""
        contact = db.session.get(Contact, pick(self.contact_ids(), contact))
        data = {"date": day}
        if places is not None:
            data["municipalities"] = sorted({pick(MUNICIPALITIES[contact.district_key], i) for i in places})
        with self.request():
            if contact_services is None:  # pragma: no cover
                if delete:
                    db.session.delete(contact)
                else:
                    contact.date = day
            elif delete:
                contact_services.delete_contact(contact)
            else:
                contact_services.update_contact(contact, data)

    # --- people -----------------------------------------------------------------------------------

    @precondition(lambda self: self.erasures < 3)
    @rule(subscriber=picks)
    def erase(self, subscriber):
        """Art. 17: the person goes; their touches stay, as anonymous reach of their municipality."""
        self.erasures += 1
        with self.request():
            privacy.erase_subscriber(db.session.get(Subscriber, pick(self.subscriber_ids(), subscriber)))

    # --- rebuilding ------------------------------------------------------------------------------

    def check_rebuild(self):
        self.settled = False
        rollup.refresh()
        db.session.commit()
        whole = Filters(*PERIODS[0], "frei")

        def figures():
            return (logged_touches(), rollup_rows(), services.cells(whole), services.people(whole, None),
                    state_view(services.state_report(whole)))

        before = figures()
        rollup.rebuild()
        db.session.commit()
        after = figures()
        assert after[0] == before[0], "rebuild changed the touch log"
        assert after[1] == before[1], "rebuild changed the rollup table"
        assert after[2:] == before[2:], "rebuild changed the figures"
        self.settled = True

    # --- the property ------------------------------------------------------------------------------

    @invariant()
    def rollup_equals_raw(self):
        """After a refresh, the touch log and every bucket are what the raw rows say; so are the figures."""
        self.settled = False
        marks = rollup.refresh()
        db.session.commit()
        raw = raw_touches()
        assert logged_touches() == raw, "the touch log differs from the raw rows"
        assert rollup_rows() == expected_rollup(raw), "the rollup's buckets differ from the raw rows'"
        # The services' figures, rollup against raw: one combination of period, filter and districts per
        # step, in turn from an offset the example drew, with `people` or a report (district or state) every
        # other step; every combination each step with REACH_HYPOTHESIS_FULL=1. A raw query costs ~15 ms, a
        # pair of reports ~50 ms: all of them each step would take ~3 s a step. A step that left no dirty
        # mark (a refusal, a machine's open, a queued mail …) changed no touch, as the two checks above
        # prove, so the figures are not compared again.
        if not (marks or FULL):
            self.settled = True
            return
        turn = self.offset + self.checks
        for n in range(len(CHECKS)) if FULL else [turn]:
            period, f, keys = CHECKS[n % len(CHECKS)]
            filters, keys = Filters(*PERIODS[period], "frei", **FILTERS[f]), KEY_SETS[keys]
            assert services.cells(filters, keys) == services.cells(filters, keys, source="raw"), \
                ("cells", filters, keys)
            if FULL or n % 2:
                assert services.people(filters, keys) == services.people(filters, keys, source="raw"), \
                    ("people", filters, keys)
            if not FULL and n % 2:
                continue
            for report in REPORTS if FULL else [REPORTS[n // 2 % len(REPORTS)]]:
                if report == "state":
                    assert state_view(services.state_report(filters)) == state_view(
                        services.state_report(filters, source="raw")), ("state report", filters)
                else:
                    district = db.session.get(District, report)
                    assert district_view(services.district_report(district, filters)) == district_view(
                        services.district_report(district, filters, source="raw")), ("district report", report,
                                                                                     filters)
        db.session.commit()
        self.checks += 1
        self.settled = True

    def teardown(self):
        # Once per example, at its end: a rebuild from the raw rows gives what the refreshes made.
        if self.settled:
            self.check_rebuild()
        db.session.rollback()


def test_rollup_always_equals_the_raw_rows(app):
    run_state_machine_as_test(ReachMachine, settings=settings(
        max_examples=EXAMPLES, stateful_step_count=STEPS, deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    ))
