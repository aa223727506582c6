"""RQ entry points of the newsletter package; they take ids and are safe to rerun."""
import logging

from flask import current_app
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

from core.queue import get_queue, get_redis
from newsletter import sending

log = logging.getLogger(__name__)
LIVE = {JobStatus.QUEUED, JobStatus.STARTED, JobStatus.SCHEDULED, JobStatus.DEFERRED}


def send_newsletter(newsletter_id):
    return sending.send_newsletter(newsletter_id)


def enqueue_senders(newsletter_id):
    """Make sure SEND_PARALLEL_JOBS jobs exist for the newsletter (fixed ids: never more).

    A job id whose job is still queued or running is left alone; one that
    finished, failed or vanished with a flushed Redis is enqueued again.
    """
    queue = get_queue()
    connection = get_redis()
    enqueued = 0
    for slot in range(current_app.config["SEND_PARALLEL_JOBS"]):
        job_id = f"newsletter-{newsletter_id}-{slot}"
        try:
            if Job.fetch(job_id, connection=connection).get_status(refresh=False) in LIVE:
                continue
        except NoSuchJobError:
            pass
        queue.enqueue(send_newsletter, newsletter_id, job_id=job_id, job_timeout=3600, result_ttl=60)
        enqueued += 1
    return enqueued


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
