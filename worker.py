"""RQ worker for this service: `python worker.py` or `flask worker`.

Runs with the scheduler so that jobs enqueued for later (`enqueue_at`) run on
time. Each job gets a fresh app context; in the forking worker the database
pool inherited from the parent is discarded first, because a connection must
never be shared across a fork.

Two things RQ does not do by itself:

- Survive a Redis outage. RQ 2.12 retries only its blocking dequeue; a lost
  connection anywhere else in its loop (suspension check, state, heartbeat,
  maintenance, recording a job) ends the worker. Here every such call waits
  for Redis and carries on. The heartbeat also rewrites the worker's
  registration, so a Redis that comes back empty or from an old data file
  knows the worker again within one heartbeat, and a restarted Redis (a new
  run id) makes the reconciler run at once.
- Stop a running job gently. A stop request (SIGTERM, Ctrl-C) is passed to the
  job through `core.shutdown`: the forked work horse gets SIGTERM, which sets
  the flag; the simple worker sets it itself. A long job (a send) checks the
  flag, finishes the mail in flight and returns. A second signal is RQ's cold
  shutdown, which kills the horse as before.
"""
import logging
import os
import signal
import time
from datetime import timedelta

import click
import redis
from rq import SimpleWorker, Worker
from rq.exceptions import StopRequested
from rq.utils import now
from rq.worker import WorkerStatus
from rq.worker_registration import register as register_worker

from core import shutdown

log = logging.getLogger(__name__)

REDIS_DOWN = (redis.ConnectionError, redis.TimeoutError)
RECONNECT_DELAYS = (0.5, 1, 2, 5)


def wait_for_redis(connection, should_stop=lambda: False, name="worker"):
    """Block until Redis answers; True once it does, False if `should_stop()` first."""
    attempt = 0
    while not should_stop():
        try:
            connection.ping()
            if attempt:
                log.warning("%s: Redis answers again", name)
            return True
        except REDIS_DOWN as exc:
            if attempt == 0:
                log.warning("%s: Redis is not reachable (%s); waiting for it", name, exc)
            time.sleep(RECONNECT_DELAYS[min(attempt, len(RECONNECT_DELAYS) - 1)])
            attempt += 1
    return False


class AppContextMixin:
    flask_app = None
    _job_in_hand = None  # the job this worker runs now (in the worker process)
    _redis_run_id = None
    _in_maintenance = False

    # --- jobs in an app context ------------------------------------------------

    def perform_job(self, job, queue):
        from core.extensions import db

        with self.flask_app.app_context():
            if self.is_horse:
                db.engine.dispose(close=False)
            try:
                return super().perform_job(job, queue)
            finally:
                db.session.remove()

    def run_maintenance_tasks(self):
        # RQ's own housekeeping, then ours: the reconciler rebuilds the work
        # from the database (due rows, expired leases, scheduled sends,
        # event reminders, the reach rollup's changed days), at
        # start and every RECONCILE_INTERVAL seconds.
        self._in_maintenance = True
        try:
            self._maintain()
        finally:
            self._in_maintenance = False
        if self._stop_requested:
            raise StopRequested()  # asked to stop meanwhile: now, between two steps

    def _shutdown(self):
        # RQ raises StopRequested from its signal handler when the worker is
        # not busy with a job. In the middle of the reconciler that would
        # break off a database transaction, or be taken for its failure;
        # there the stop waits for the end of maintenance instead.
        if self._in_maintenance:
            self._stop_requested = True
            if self.scheduler:
                self.stop_scheduler()
            return
        super()._shutdown()

    def _maintain(self):
        try:
            super().run_maintenance_tasks()
        except REDIS_DOWN as exc:
            log.warning("Worker %s: RQ maintenance skipped, Redis is not reachable: %s", self.name, exc)
        from core.extensions import db
        from events.jobs import reconcile as reconcile_events
        from newsletter.jobs import reconcile as reconcile_newsletters
        from reach.jobs import reconcile as reconcile_reach

        for reconcile in (reconcile_newsletters, reconcile_events, reconcile_reach):
            if self._stop_requested:
                return
            with self.flask_app.app_context():
                try:
                    reconcile()
                except Exception:  # the worker must keep working; the next run tries again
                    log.exception("reconciler failed")
                finally:
                    db.session.remove()
            self.heartbeat()  # a long reconcile must not make the worker look dead

    # --- Redis outages -----------------------------------------------------------

    def _wait_for_redis(self):
        def stop():
            return self._stop_requested

        if not wait_for_redis(self.connection, stop, f"Worker {self.name}"):
            raise StopRequested()
        self.heartbeat()

    def _until_redis_answers(self, call, *args, **kwargs):
        while True:
            try:
                return call(*args, **kwargs)
            except REDIS_DOWN:
                self._wait_for_redis()

    def bootstrap(self, *args, **kwargs):
        return self._until_redis_answers(super().bootstrap, *args, **kwargs)

    def check_for_suspension(self, burst):
        return self._until_redis_answers(super().check_for_suspension, burst)

    def prepare_execution(self, job):
        return self._until_redis_answers(super().prepare_execution, job)

    def dequeue_job_and_maintain_ttl(self, timeout, max_idle_time=None):
        return self._until_redis_answers(super().dequeue_job_and_maintain_ttl, timeout, max_idle_time)

    def execute_job(self, job, queue):
        self._job_in_hand = job.id
        try:
            super().execute_job(job, queue)
        except REDIS_DOWN as exc:
            # The job has ended (the horse is gone) but its outcome could not
            # be recorded. Its work is in the database; the reconciler
            # re-creates the job if rows are left.
            log.warning("Worker %s: outcome of job %s not recorded, Redis is not reachable: %s",
                        self.name, job.id, exc)
            self._wait_for_redis()
        finally:
            self._job_in_hand = None
        self.set_state(WorkerStatus.IDLE)

    def set_state(self, state, pipeline=None):
        if pipeline is not None:
            return super().set_state(state, pipeline)
        try:
            return super().set_state(state)
        except REDIS_DOWN:
            self._state = state  # the next heartbeat writes it

    def set_current_job_working_time(self, *args, **kwargs):
        try:
            return super().set_current_job_working_time(*args, **kwargs)
        except REDIS_DOWN:
            pass  # figures only; the horse keeps working

    def set_shutdown_requested_date(self):
        try:
            super().set_shutdown_requested_date()
        except REDIS_DOWN:
            pass  # a stop must work while Redis is away

    def heartbeat(self, timeout=None, pipeline=None):
        """RQ's heartbeat, plus the worker's whole registration, in one round trip.

        A missed heartbeat is not an error: the worker waits for Redis elsewhere.
        """
        if pipeline is not None or self.is_horse:
            return super().heartbeat(timeout, pipeline)
        try:
            with self.connection.pipeline() as pipe:
                super().heartbeat(timeout, pipeline=pipe)
                self._write_registration(pipe)
                pipe.info("server")
                server = pipe.execute()[-1]
        except REDIS_DOWN:
            return
        run_id = server.get("run_id")
        if self._redis_run_id is not None and run_id != self._redis_run_id:
            log.warning("Worker %s: Redis was restarted; reconciling now", self.name)
            # Old enough that maintenance (RQ's, which also restarts the
            # scheduler process, and the reconciler) runs on the next turn.
            self.last_cleaned_at = now() - timedelta(seconds=self.maintenance_interval + 1)
        self._redis_run_id = run_id

    def _write_registration(self, pipe):
        if self.birth_date is None:
            return  # not registered yet: bootstrap does it
        fields = {key: value for key, value in self.serialize().items() if value is not None}
        pipe.hset(self.key, mapping=dict(fields, state=self._state))
        if self._job_in_hand:
            pipe.hset(self.key, "current_job", self._job_in_hand)
        else:
            pipe.hdel(self.key, "current_job")
        register_worker(self, pipe)

    def maintain_heartbeats(self, job):
        try:
            super().maintain_heartbeats(job)
        except REDIS_DOWN:
            pass  # the horse keeps working; Redis is waited for after the job
        self.heartbeat(self.job_monitoring_interval + 60)

    def teardown(self):
        try:
            super().teardown()
        except REDIS_DOWN as exc:
            log.warning("Worker %s: could not register its end, Redis is not reachable: %s", self.name, exc)


class AppWorker(AppContextMixin, Worker):
    """Forks a work horse per job, as RQ does by default."""

    def fork_work_horse(self, job, queue):
        # SIGTERM stays blocked across the fork: the horse receives a
        # forwarded stop only once its own handler is in place.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
        try:
            super().fork_work_horse(job, queue)
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
        if self._stop_requested:
            self._forward_stop()  # the request came while forking

    def setup_work_horse_signals(self):
        # In the horse: Ctrl-C is the worker's business; SIGTERM (forwarded by
        # the worker on a warm shutdown) asks the job to stop.
        shutdown.reset()
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        shutdown.install_handler(signal.SIGTERM)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})

    def handle_warm_shutdown_request(self):
        super().handle_warm_shutdown_request()
        self._forward_stop()

    def _forward_stop(self):
        if self.horse_pid:
            try:
                os.kill(self.horse_pid, signal.SIGTERM)
            except ProcessLookupError:
                pass


class AppSimpleWorker(AppContextMixin, SimpleWorker):
    """Runs jobs in its own process: for tests and debugging."""

    def execute_job(self, job, queue):
        if not self._stop_requested:
            shutdown.reset()
        super().execute_job(job, queue)

    def handle_warm_shutdown_request(self):
        super().handle_warm_shutdown_request()
        shutdown.request_stop()


def build_worker(app, simple=False, name=None):
    from core.queue import WORKER_HEARTBEAT, get_queue, get_redis

    cls = AppSimpleWorker if simple else AppWorker
    connection = get_redis(app, start=False)  # workers never start the embedded Redis
    wait_for_redis(connection, name=f"Worker {name or ''}".strip())
    queues = [get_queue(q, app) for q in app.config["RQ_QUEUES"]]
    # An idle worker wakes from its dequeue every worker_ttl - 15 seconds (a
    # heartbeat, and the maintenance tasks once RECONCILE_INTERVAL has
    # passed); a busy one heartbeats every job_monitoring_interval.
    worker = cls(
        queues,
        connection=connection,
        name=name,
        worker_ttl=WORKER_HEARTBEAT + 15,
        job_monitoring_interval=WORKER_HEARTBEAT,
        maintenance_interval=app.config["RECONCILE_INTERVAL"],
    )
    worker.flask_app = app
    return worker


def run_worker(app, burst=False, simple=False, name=None):
    worker = build_worker(app, simple=simple, name=name)
    return worker.work(burst=burst, with_scheduler=True, logging_level="INFO")


def worker_options(func):
    func = click.option("--name", default=None, help="Worker name (default: generated).")(func)
    func = click.option("--simple", is_flag=True, help="Run jobs in this process instead of forking.")(func)
    return click.option("--burst", is_flag=True, help="Quit when the queues are empty.")(func)


@click.command("worker")
@worker_options
def worker_command(burst, simple, name):
    """Start one RQ worker with the scheduler (without web server)."""
    from flask import current_app

    run_worker(current_app._get_current_object(), burst=burst, simple=simple, name=name)


@click.command()
@worker_options
def main(burst, simple, name):
    """Start one RQ worker with the scheduler (production: run several)."""
    from app import create_app

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    run_worker(create_app(), burst=burst, simple=simple, name=name)


if __name__ == "__main__":
    main()
