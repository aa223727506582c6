"""Liveness of the parts the service needs: database, Redis, RQ workers.

A worker counts only while its heartbeat is fresh (`core.queue.live_workers`):
Redis keeps the key of a killed worker for a while, and a Redis restarted
from its data file brings back keys of workers that are long gone.
"""
import logging

from sqlalchemy import text

from core.extensions import db
from core.queue import get_redis_probe, live_workers

log = logging.getLogger(__name__)


def check():
    """Returns (healthy, report). Each part is checked even if another failed."""
    report = {"database": "ok", "redis": "ok", "workers": 0}
    try:
        db.session.execute(text("SELECT 1"))
    except Exception as exc:  # any driver error means "not reachable"
        log.warning("health: database unreachable: %s", exc)
        report["database"] = "error"
        db.session.rollback()
    try:
        connection = get_redis_probe()
        connection.ping()
        report["workers"] = len(live_workers(connection))
    except Exception as exc:
        log.warning("health: redis unreachable: %s", exc)
        report["redis"] = "error"
    healthy = report["database"] == "ok" and report["redis"] == "ok" and report["workers"] >= 1
    report["status"] = "ok" if healthy else "error"
    return healthy, report
