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
        from app import db

        with self.flask_app.app_context():
            if self.is_horse:
                db.engine.dispose(close=False)
            try:
                return super().perform_job(job, queue)
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
    worker = cls(queues, connection=get_redis(app), name=name)
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
