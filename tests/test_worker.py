"""Jobs run by the worker: an app context with a usable database, failures recorded."""
import signal

import pytest
from rq.job import JobStatus
from sqlalchemy import select, text

from core.extensions import db
from core.queue import get_queue
from directory.models import District

# A temporary table lives only in the connection that created it: whoever
# can see it is using that very connection.
MARKER = "parent_connection_marker"


def write_district(key, name):
    """A job as the domain packages write them: database work, then commit.

    Returns whether the job's connection is the test process's own, which a
    forked work horse must never reuse.
    """
    db.session.add(District(key=key, name=name, kind="Landkreis"))
    db.session.commit()
    return sees_marker()


def fail_loudly():
    raise RuntimeError("job failed on purpose")


def sees_marker():
    if db.engine.dialect.name == "postgresql":
        query = f"SELECT to_regclass('pg_temp.{MARKER}') IS NOT NULL"
    else:
        query = f"SELECT count(*) > 0 FROM sqlite_temp_master WHERE name = '{MARKER}'"
    return bool(db.session.execute(text(query)).scalar_one())


def district_names():
    db.session.expire_all()
    return db.session.execute(select(District.name).order_by(District.key)).scalars().all()


@pytest.fixture
def forking_worker(app):
    """The real worker of `worker.py` (a work horse forked per job), in burst mode."""
    from worker import build_worker

    # RQ installs its own SIGINT/SIGTERM handlers; give pytest its own back.
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}

    def run():
        worker = build_worker(app)
        worker.work(burst=True, with_scheduler=False)
        return worker

    yield run
    for signum, handler in handlers.items():
        signal.signal(signum, handler)


def test_job_runs_in_an_app_context_with_the_database(app, run_jobs):
    job = get_queue().enqueue(write_district, "08115", "Böblingen")
    run_jobs()
    assert job.get_status(refresh=True) == JobStatus.FINISHED
    assert district_names() == ["Böblingen"]


def test_forked_work_horse_uses_its_own_database_connection(app, forking_worker):
    # Leave one marked connection in the pool: a horse that did not discard
    # the inherited pool would be handed exactly this one.
    db.session.execute(text(f"CREATE TEMPORARY TABLE {MARKER} (x integer)"))
    db.session.commit()

    pairs = [("08115", "Böblingen"), ("08116", "Esslingen")]
    jobs = [get_queue().enqueue(write_district, key, name) for key, name in pairs]
    forking_worker()

    for job in jobs:
        assert job.get_status(refresh=True) == JobStatus.FINISHED, job.latest_result().exc_string
        assert job.return_value() is False
    assert district_names() == ["Böblingen", "Esslingen"]
    # The parent's connection survived the horses' exit: still the same one.
    assert sees_marker()
    db.session.execute(text(f"DROP TABLE {MARKER}"))
    db.session.commit()


def test_failing_job_ends_up_in_the_failed_registry(app, run_jobs):
    queue = get_queue()
    job = queue.enqueue(fail_loudly)
    run_jobs()
    assert job.get_status(refresh=True) == JobStatus.FAILED
    assert job.id in queue.failed_job_registry.get_job_ids()
    assert "job failed on purpose" in job.latest_result().exc_string


def test_failing_job_in_a_forked_horse_is_recorded_too(app, forking_worker):
    queue = get_queue()
    failing = queue.enqueue(fail_loudly)
    following = queue.enqueue(write_district, "08115", "Böblingen")
    forking_worker()
    assert failing.id in queue.failed_job_registry.get_job_ids()
    # One failure does not stop the worker: the next job still runs.
    assert following.get_status(refresh=True) == JobStatus.FINISHED
    assert district_names() == ["Böblingen"]
