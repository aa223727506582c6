"""Event registrations in the data-protection export and erasure (`subscribers.privacy`).

A person's registrations are found by their subscriber row and by their
address in the district (registrations from the public form need not have a
subscriber). Erasure keeps each registration as anonymous reach: slot,
status, attendance and municipality stay; address, name and the links to the
person go.
"""
from sqlalchemy import delete, or_, select, update

from core.extensions import db
from events.models import Event, EventMail, Registration
from subscribers import privacy


def _of(subscriber):
    return or_(
        Registration.subscriber_id == subscriber.id,
        (Registration.district_key == subscriber.district_key) & (Registration.email_key == subscriber.email_key),
    )


def export_registrations(subscriber):
    rows = db.session.execute(
        select(Registration, Event).join(Event, Event.id == Registration.event_id).where(_of(subscriber))
        .order_by(Registration.id)
    ).all()
    return [
        {
            "event": event.title, "event_id": event.id, "kind": event.kind,
            "slot_starts_at": privacy.iso(registration.slot.starts_at),
            "email": registration.email, "name": registration.name,
            "municipality": registration.municipality_ags, "status": registration.status,
            "answer": registration.partstat, "source": registration.source,
            "waiting_position": registration.waiting_position, "attendance": registration.attendance,
            "answered_at": privacy.iso(registration.answered_at), "created_at": privacy.iso(registration.created_at),
        }
        for registration, event in rows
    ]


def erase_registrations(subscriber):
    _erase_invitations(subscriber)
    ids = db.session.execute(select(Registration.id).where(_of(subscriber))).scalars().all()
    if not ids:
        return
    for registration in db.session.execute(select(Registration).where(Registration.id.in_(ids))).scalars():
        registration.email = ""
        registration.email_key = f"erased-{registration.public_id}"
        registration.name = ""
        registration.subscriber_id = None
    db.session.execute(
        update(EventMail).where(EventMail.registration_id.in_(ids)).values(smtp_reply="", message_id=None)
        .execution_options(synchronize_session=False)
    )
    db.session.flush()


def _erase_invitations(subscriber):
    """Office-hours invitations name only the subscriber: unsent ones go, sent ones stay as anonymous reach."""
    db.session.execute(
        delete(EventMail).where(EventMail.subscriber_id == subscriber.id, EventMail.registration_id.is_(None),
                                EventMail.status != "sent")
        .execution_options(synchronize_session=False)
    )
    db.session.execute(
        update(EventMail).where(EventMail.subscriber_id == subscriber.id)
        .values(subscriber_id=None, smtp_reply="", message_id=None)
        .execution_options(synchronize_session=False)
    )


privacy.register("event_registrations", export_registrations, erase_registrations)
