"""Sending event mails: the newsletter's pipeline (`core.pipeline`) over `EventMail` rows.

A job takes an event id, claims batches of its due mail rows, builds each
mail from the current state of the event (with the METHOD and SEQUENCE fixed
on the row) and records each as soon as the server answered.
"""
from collections import namedtuple

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from core.extensions import db
from core.pipeline import OPEN_STATES, Mail, MailRows, send_batches
from events.mail import EventMailer
from events.models import Event, EventMail, Registration
from newsletter.sending import dkim_signer
from subscribers import services as subscriber_services
from subscribers.models import Subscriber, utcnow

Claimed = namedtuple("Claimed", "id mail subscriber")
mail_rows = MailRows(EventMail, EventMail.event_id)


def _recipient_gone(mail, registration, subscriber):
    """True when the mail must not go out: the person left the list, or their data was erased."""
    if registration is None:
        return subscriber is None or subscriber.status != "active"
    if not registration.email:
        return True  # erased
    # An invitation is list mail; everything after it concerns a registration the person made.
    return mail.kind == "invitation" and registration.source == "invitation" and (
        subscriber is None or subscriber.status != "active")


def send_event_mails(event_id):
    """Claim and send batches until none is due; the body of the RQ job. Returns the number of rows handled."""
    event = db.session.get(Event, event_id)
    if event is None:
        return 0
    mailer = EventMailer(event)
    sign = dkim_signer()
    return send_batches(mail_rows, event_id, _load_claimed, lambda claimed: _prepare(mailer, sign, claimed))


def _load_claimed(ids):
    mails = db.session.execute(
        select(EventMail).where(EventMail.id.in_(ids)).order_by(EventMail.id)
        .options(selectinload(EventMail.registration).selectinload(Registration.slot))
    ).scalars().all()
    subscribers = {s.id: s for s in db.session.execute(
        select(Subscriber).where(Subscriber.id.in_({m.subscriber_id for m in mails if m.subscriber_id}))
    ).scalars()}
    return [Claimed(mail.id, mail, subscribers.get(mail.subscriber_id)) for mail in mails]


def _prepare(mailer, sign, claimed):
    """The `core.pipeline.Mail` of a claimed row, built now; None when its recipient is gone (recorded)."""
    mail, subscriber = claimed.mail, claimed.subscriber
    registration = mail.registration
    if _recipient_gone(mail, registration, subscriber):
        mail_rows.record(mail.id, status="suppressed")
        return None
    recipient, msg_id, data = mailer.build(mail, registration, subscriber)
    if sign:
        data = sign(data)
    return Mail(mail.id, mail.attempts, mailer.envelope_from, recipient, lambda: (msg_id, data),
                rejected=lambda: _bounced(subscriber))


def _bounced(subscriber):
    if subscriber is not None and subscriber.status == "active":
        subscriber_services.mark_undeliverable(subscriber, "bounced")
        db.session.commit()


def events_with_due_mails():
    return db.session.execute(
        select(EventMail.event_id).where(EventMail.status.in_(OPEN_STATES), EventMail.next_attempt_at <= utcnow())
        .distinct()
    ).scalars().all()


def reclaim_expired():
    return mail_rows.reclaim_expired()
