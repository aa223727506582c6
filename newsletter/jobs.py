"""RQ entry points of the newsletter package; they take ids and are safe to rerun."""
import logging

from flask import current_app

from core.queue import enqueue_once
from newsletter import sending

log = logging.getLogger(__name__)


def send_newsletter(newsletter_id):
    return sending.send_newsletter(newsletter_id)


def enqueue_senders(newsletter_id):
    """Make sure SEND_PARALLEL_JOBS jobs exist for the newsletter (fixed ids: never more).

    Returns how many were added.
    """
    return sum(
        enqueue_once(f"newsletter-{newsletter_id}-{slot}", send_newsletter, newsletter_id, job_timeout=3600,
                     result_ttl=60)
        for slot in range(current_app.config["SEND_PARALLEL_JOBS"])
    )


def reconcile():
    """Rebuild the work from the database; the worker runs this at start and periodically."""
    reclaimed = sending.reclaim_expired()
    started = sending.start_due_schedules()
    for newsletter_id in set(sending.newsletters_with_due_rows()) | set(started):
        enqueue_senders(newsletter_id)
    for newsletter_id in sending.newsletters_sending():
        sending.finish_if_done(newsletter_id)
    if reclaimed or started:
        log.info("reconciler: %d rows back in the queue, %d scheduled newsletters started", reclaimed, len(started))
