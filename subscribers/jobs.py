"""RQ jobs of the subscribers package. They take ids and are safe to rerun."""
from datetime import datetime

from flask import current_app
from rq import Retry
from sqlalchemy import select

from core.extensions import db
from core.mail import mail_connection
from core.queue import get_queue
from subscribers import services
from subscribers.mail import subscription_message
from subscribers.models import Subscriber, utcnow

BATCH_SIZE = 200


def enqueue_subscription_mails(subscriber_ids):
    """After the commit: confirmation mails (or 'already subscribed' notes), batched.

    The request time travels with the job: a rerun finds the mail already
    sent for that request and does not send it twice.
    """
    ids = list(subscriber_ids)
    requested = utcnow().isoformat()
    queue = get_queue()
    for start in range(0, len(ids), BATCH_SIZE):
        queue.enqueue(
            send_subscription_mails, ids[start:start + BATCH_SIZE], requested,
            retry=Retry(max=3, interval=[10, 60, 300]), job_timeout=600,
        )


def enqueue_subscription_mail(subscriber):
    """After the commit: one person's subscription mail, within CONFIRMATION_MAIL_LIMIT.

    Public form, API and the preferences page ask for these mails on behalf
    of someone else's inbox; beyond the daily cap nothing is sent (and the
    caller answers as it always does). Returns whether a mail was queued.
    """
    if not services.confirmation_mail_allowed(subscriber.district_key, subscriber.email_key):
        current_app.logger.info("subscription mail limit reached for subscriber %s", subscriber.id)
        return False
    enqueue_subscription_mails([subscriber.id])
    return True


def _due(subscriber, requested):
    if subscriber.status == "pending" and not subscriber.confirm_nonce:
        return False
    if subscriber.status not in ("pending", "active"):
        return False
    sent = subscriber.confirmation_sent_at
    return sent is None or sent < requested


def send_subscription_mails(subscriber_ids, requested_at):
    requested = datetime.fromisoformat(requested_at)
    subscribers = db.session.execute(select(Subscriber).where(Subscriber.id.in_(subscriber_ids))).scalars().all()
    due = [s for s in subscribers if _due(s, requested)]
    if not due:
        return 0
    with mail_connection() as connection:
        for subscriber in due:
            connection.send(subscription_message(subscriber))
            # Committed per mail: a crash after a send repeats at most that one.
            subscriber.confirmation_sent_at = utcnow()
            db.session.commit()
    current_app.logger.info("sent %d subscription mails", len(due))
    return len(due)
