"""Liveness of the parts the service needs: database, Redis, RQ workers."""
import logging

from rq import Worker
from sqlalchemy import text

from core.extensions import db
from core.queue import get_redis

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
        connection = get_redis()
        connection.ping()
        report["workers"] = Worker.count(connection=connection)
    except Exception as exc:
        log.warning("health: redis unreachable: %s", exc)
        report["redis"] = "error"
    healthy = report["database"] == "ok" and report["redis"] == "ok" and report["workers"] >= 1
    report["status"] = "ok" if healthy else "error"
    return healthy, report
