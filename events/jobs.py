"""RQ entry points of the events package; they take ids and are safe to rerun."""
import logging

from core.queue import enqueue_once
from events import sending, services

log = logging.getLogger(__name__)


def send_event_mails(event_id):
    return sending.send_event_mails(event_id)


def enqueue_senders(event_id):
    """Make sure a job exists for the event's due mails (a fixed job id: never two). Returns 1 if enqueued."""
    return int(enqueue_once(f"event-{event_id}", send_event_mails, event_id, job_timeout=3600, result_ttl=60))


def reconcile():
    """Rebuild the work from the database: expired leases, due reminders, events with due mails."""
    reclaimed = sending.reclaim_expired()
    reminders = services.queue_due_reminders()
    for event_id in sending.events_with_due_mails():
        enqueue_senders(event_id)
    if reclaimed or reminders:
        log.info("reconciler: %d event mails back in the queue, %d reminders queued", reclaimed, reminders)
