"""RQ worker for this service: `python worker.py` or `flask worker`.

Runs with the scheduler so that jobs enqueued for later (`enqueue_at`) run on
time. Each job gets a fresh app context; in the forking worker the database
pool inherited from the parent is discarded first, because a connection must
never be shared across a fork.
"""
import logging

import click
from rq import SimpleWorker, Worker


class AppContextMixin:
    flask_app = None

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
        super().run_maintenance_tasks()
        from core.extensions import db
        from events.jobs import reconcile as reconcile_events
        from newsletter.jobs import reconcile as reconcile_newsletters
        from reach.jobs import reconcile as reconcile_reach

        for reconcile in (reconcile_newsletters, reconcile_events, reconcile_reach):
            with self.flask_app.app_context():
                try:
                    reconcile()
                except Exception:  # the worker must keep working; the next run tries again
                    logging.getLogger(__name__).exception("reconciler failed")
                finally:
                    db.session.remove()


class AppWorker(AppContextMixin, Worker):
    """Forks a work horse per job, as RQ does by default."""


class AppSimpleWorker(AppContextMixin, SimpleWorker):
    """Runs jobs in its own process: for tests and debugging."""


def build_worker(app, simple=False, name=None):
    from core.queue import get_queue, get_redis

    cls = AppSimpleWorker if simple else AppWorker
    queues = [get_queue(q, app) for q in app.config["RQ_QUEUES"]]
    interval = app.config["RECONCILE_INTERVAL"]
    # An idle worker wakes from its dequeue every worker_ttl - 15 seconds; that
    # is when RQ runs the maintenance tasks.
    worker = cls(queues, connection=get_redis(app), name=name, worker_ttl=interval + 15, maintenance_interval=interval)
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
