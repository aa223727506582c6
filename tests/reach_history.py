"""A known history of touches, written as the raw rows the service keeps, for the reach tests.

Böblingen (08115) has four municipalities A–D, Esslingen (08116) two. Times
are UTC; several sit near midnight or a daylight-saving change, so the
Berlin day differs from the UTC day.
"""
from datetime import date, datetime, timezone

from core.extensions import db
from directory.models import District, Municipality
from events.models import Event, EventMail, Registration, Slot
from newsletter.models import Delivery, Newsletter, TrackingEvent
from reach.models import Contact
from subscribers.models import Subscriber, Topic

A, B, C, D = "08115001", "08115002", "08115003", "08115004"
E1, E2 = "08116001", "08116002"


def utc(*args):
    return datetime(*args, tzinfo=timezone.utc)


class History:
    """Builds rows; keeps the objects it made by name."""

    def __init__(self):
        self.rows = {}
        self._subscriber_number = 0

    def directory(self):
        for key, name, municipalities in (
            ("08115", "Böblingen", [(A, "Aidlingen"), (B, "Altdorf"), (C, "Bondorf"), (D, "Deckenpfronn")]),
            ("08116", "Esslingen", [(E1, "Esslingen am Neckar, Stadt"), (E2, "Nürtingen, Stadt")]),
        ):
            db.session.add(District(key=key, name=name, kind="Landkreis"))
            for ags, mname in municipalities:
                db.session.add(Municipality(ags=ags, name=mname, district_key=key))
        db.session.flush()
        for key, name in (("08115", "service-bw"), ("08115", "E-Rechnung"), ("08116", "service-bw")):
            topic = Topic(district_key=key, name=name)
            db.session.add(topic)
            self.rows[f"topic {key} {name}"] = topic
        db.session.flush()
        return self

    def subscriber(self, ags, status="active", joined=utc(2025, 1, 1), changed=None):
        self._subscriber_number += 1
        n = self._subscriber_number
        subscriber = Subscriber(
            district_key=ags[:5], email=f"p{n}@example.org", email_key=f"p{n}@example.org", name=f"P{n}",
            municipality_ags=ags, status=status, consent_source="admin", created_at=joined,
            consent_confirmed_at=joined, status_changed_at=changed or joined,
        )
        db.session.add(subscriber)
        db.session.flush()
        return subscriber

    def newsletter(self, key, subject, topics=()):
        newsletter = Newsletter(district_key=key, subject=subject, status="sent",
                                topics=[self.rows[f"topic {key} {t}"] for t in topics])
        db.session.add(newsletter)
        db.session.flush()
        return newsletter

    def delivery(self, newsletter, subscriber, sent_at, status="sent"):
        delivery = Delivery(newsletter_id=newsletter.id, subscriber_id=subscriber.id,
                            district_key=newsletter.district_key, municipality_ags=subscriber.municipality_ags,
                            status="queued")
        db.session.add(delivery)
        db.session.flush()
        # As the pipeline does: the row is written queued, then recorded.
        delivery.status, delivery.sent_at = status, sent_at
        db.session.flush()
        return delivery

    def track(self, delivery, kind, at, machine=False):
        db.session.add(TrackingEvent(delivery_id=delivery.id, district_key=delivery.district_key, kind=kind,
                                     machine=machine, created_at=at))
        db.session.flush()

    def event(self, key, title, starts_at, topics=(), status="published"):
        event = Event(district_key=key, kind="workshop", title=title, starts_at=starts_at,
                      ends_at=starts_at.replace(hour=starts_at.hour + 2), status=status,
                      topics=[self.rows[f"topic {key} {t}"] for t in topics])
        db.session.add(event)
        db.session.flush()
        slot = Slot(event_id=event.id, district_key=key, starts_at=event.starts_at, ends_at=event.ends_at)
        db.session.add(slot)
        db.session.flush()
        event.slot = slot
        return event

    def registration(self, event, subscriber, status="confirmed", attendance=None):
        registration = Registration(
            event_id=event.id, slot_id=event.slot.id, district_key=event.district_key,
            subscriber_id=subscriber.id, municipality_ags=subscriber.municipality_ags, email=subscriber.email,
            email_key=subscriber.email_key, name=subscriber.name, status=status, attendance=attendance,
        )
        db.session.add(registration)
        db.session.flush()
        return registration

    def invitation(self, event, subscriber, sent_at):
        mail = EventMail(event_id=event.id, subscriber_id=subscriber.id, district_key=event.district_key,
                         municipality_ags=subscriber.municipality_ags, kind="invitation", status="queued")
        db.session.add(mail)
        db.session.flush()
        mail.status, mail.sent_at = "sent", sent_at
        db.session.flush()
        return mail

    def contact(self, key, day, municipalities, kind="telefon", topics=()):
        contact = Contact(district_key=key, date=day, kind=kind,
                          municipalities=[db.session.get(Municipality, ags) for ags in municipalities],
                          topics=[self.rows[f"topic {key} {t}"] for t in topics])
        db.session.add(contact)
        db.session.flush()
        return contact


def build_known_history():
    """The history the reach tests check; returns the History with its rows by name."""
    h = History().directory()
    r = h.rows
    r["a1"], r["a2"] = h.subscriber(A), h.subscriber(A)
    r["b1"] = h.subscriber(B)
    r["c1"] = h.subscriber(C, status="bounced", changed=utc(2026, 1, 20))
    r["d1"] = h.subscriber(D, status="unsubscribed", changed=utc(2026, 6, 30))
    r["e1"] = h.subscriber(E1)

    # January: N1 (service-bw) to A, B and C; C's delivery bounced.
    n1 = r["n1"] = h.newsletter("08115", "Januar", topics=["service-bw"])
    # 23:30 UTC on 15 January is 00:30 on the 16th in Berlin.
    r["n1 a1"] = h.delivery(n1, r["a1"], utc(2026, 1, 15, 23, 30))
    r["n1 a2"] = h.delivery(n1, r["a2"], utc(2026, 1, 15, 23, 30))
    r["n1 b1"] = h.delivery(n1, r["b1"], utc(2026, 1, 15, 9, 0))
    r["n1 c1"] = h.delivery(n1, r["c1"], utc(2026, 1, 15, 9, 0), status="bounced")
    h.track(r["n1 a1"], "open", utc(2026, 1, 16, 8, 0))
    h.track(r["n1 a1"], "open", utc(2026, 1, 16, 9, 0))  # the same person again that day: one touch
    h.track(r["n1 a2"], "open", utc(2026, 1, 17, 8, 0))
    h.track(r["n1 b1"], "open", utc(2026, 1, 15, 9, 0, 3), machine=True)  # a scanner only
    h.track(r["n1 a1"], "click", utc(2026, 2, 2, 10, 0))
    h.track(r["n1 b1"], "click", utc(2026, 2, 2, 10, 0), machine=True)

    # March: N2 (no topic) to B; B's subscriber is erased later.
    n2 = r["n2"] = h.newsletter("08115", "März")
    r["n2 b1"] = h.delivery(n2, r["b1"], utc(2026, 3, 29, 22, 30))  # 00:30 on 30 March (summer time)
    h.track(r["n2 b1"], "open", utc(2026, 3, 31, 7, 0))

    # A workshop (E-Rechnung) on 20 February: A registered and attended.
    w = r["workshop"] = h.event("08115", "Workshop E-Rechnung", utc(2026, 2, 20, 8, 0), topics=["E-Rechnung"])
    h.registration(w, r["a1"], attendance="attended")
    h.registration(w, r["b1"], status="declined")
    # A cancelled event in April: D's seat does not count; the invitation it got does.
    x = r["cancelled"] = h.event("08115", "Abgesagt", utc(2026, 4, 1, 8, 0), status="cancelled")
    h.registration(x, r["d1"])
    h.invitation(x, r["d1"], utc(2026, 3, 1, 12, 0))

    # A contact in May for C.
    r["contact"] = h.contact("08115", date(2026, 5, 5), [C], kind="vor_ort", topics=["service-bw"])

    # Esslingen: one delivery in January, one opening human.
    n3 = r["n3"] = h.newsletter("08116", "Esslingen Januar", topics=["service-bw"])
    r["n3 e1"] = h.delivery(n3, r["e1"], utc(2026, 1, 20, 10, 0))
    h.track(r["n3 e1"], "open", utc(2026, 1, 21, 10, 0))
    r["contact 08116"] = h.contact("08116", date(2026, 6, 10), [E1, E2], kind="video")
    db.session.commit()
    return h
