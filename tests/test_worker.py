"""Jobs run by the worker: an app context with a usable database, failures recorded;
a stop request reaches the running job; Redis trouble does not end the worker;
fixed-id jobs come back when Redis still shows a dead run of them."""
import os
import signal
import threading
import time
from pathlib import Path

import pytest
import redis
from rq.job import JobStatus
from sqlalchemy import select, text

from core import shutdown
from core.extensions import db
from core.queue import enqueue_once, get_queue, get_redis, live_workers
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


def run_until_stopped(marker, seconds=20):
    """A long job as the send loops are written: it checks the stop flag between steps."""
    Path(marker).write_text(str(os.getpid()))
    deadline = time.monotonic() + seconds
    while not shutdown.stop_requested():
        if time.monotonic() > deadline:
            return "not stopped"
        time.sleep(0.02)
    return "stopped"


def ignore_stops(marker, seconds=30):
    Path(marker).write_text(str(os.getpid()))
    time.sleep(seconds)
    return "slept"


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

    def run(simple=False):
        worker = build_worker(app, simple=simple)
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


# --- a stop request reaches the running job ---------------------------------


def signal_when_started(marker, signals, pause=1.2):
    """From a thread: once the job has started, send this process `signals`, `pause` seconds apart."""

    def run():
        deadline = time.monotonic() + 20
        while not Path(marker).exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        for n, signum in enumerate(signals):
            if n:
                time.sleep(pause)  # RQ ignores a repeat within a second
            os.kill(os.getpid(), signum)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("simple", [False, True], ids=["forked horse", "simple worker"])
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_warm_stop_asks_the_running_job_to_stop(app, forking_worker, tmp_path, simple, signum):
    marker = tmp_path / "started"
    queue = get_queue()
    job = queue.enqueue(run_until_stopped, str(marker))
    following = queue.enqueue(write_district, "08115", "Böblingen")
    signal_when_started(marker, [signum])
    started = time.monotonic()
    forking_worker(simple=simple)
    assert time.monotonic() - started < 15
    assert job.get_status(refresh=True) == JobStatus.FINISHED, job.latest_result().exc_string
    assert job.return_value() == "stopped"
    if not simple:
        assert int(marker.read_text()) != os.getpid()  # it ran in a horse
    assert following.get_status(refresh=True) == JobStatus.QUEUED  # the worker stopped after the job
    shutdown.reset()


def test_each_job_starts_with_the_flag_clear(app, forking_worker, tmp_path):
    shutdown.request_stop()  # left over, e.g. from an earlier job in this process
    job = get_queue().enqueue(run_until_stopped, str(tmp_path / "started"), 0.3)
    forking_worker(simple=True)
    assert job.return_value() == "not stopped"
    shutdown.reset()


def test_second_signal_is_a_cold_shutdown(app, forking_worker, tmp_path):
    marker = tmp_path / "started"
    job = get_queue().enqueue(ignore_stops, str(marker))
    signal_when_started(marker, [signal.SIGTERM, signal.SIGTERM])
    started = time.monotonic()
    with pytest.raises(SystemExit):
        forking_worker()
    assert time.monotonic() - started < 15
    horse = int(marker.read_text())
    assert not Path(f"/proc/{horse}").exists() or b") Z" in Path(f"/proc/{horse}/stat").read_bytes()
    assert job.get_status(refresh=True) != JobStatus.FINISHED


# --- Redis trouble does not end the worker ------------------------------------


def test_heartbeat_registers_the_worker_again_after_redis_lost_it(app):
    from worker import build_worker

    worker = build_worker(app)
    worker.register_birth()
    try:
        connection = get_redis()
        connection.delete(worker.key)  # Redis came back empty, or from an older data file
        connection.srem("rq:workers", worker.key)
        assert worker.key not in live_workers(connection)
        worker.heartbeat()
        assert worker.key in live_workers(connection)
        stored = connection.hgetall(worker.key)
        assert stored[b"queues"] == b"default" and int(stored[b"pid"]) == os.getpid()
        assert worker.key.encode() in connection.smembers("rq:workers:default")
    finally:
        worker.register_death()


def test_a_restarted_redis_makes_the_worker_reconcile_at_once(app):
    from rq.utils import now

    from worker import build_worker

    worker = build_worker(app)
    worker.register_birth()
    try:
        worker.heartbeat()
        worker.last_cleaned_at = now()
        assert not worker.should_run_maintenance_tasks
        worker.heartbeat()  # the same server
        assert not worker.should_run_maintenance_tasks
        worker._redis_run_id = "a server that is gone"
        worker.heartbeat()
        assert worker.should_run_maintenance_tasks
    finally:
        worker.register_death()


def test_worker_bookkeeping_survives_a_lost_connection(app, tmp_path):
    from worker import build_worker

    worker = build_worker(app)
    worker.register_birth()
    good = worker.connection
    from redis.backoff import NoBackoff
    from redis.retry import Retry
    from rq.utils import now

    worker.connection = redis.Redis(unix_socket_path=str(tmp_path / "gone.sock"), retry=Retry(NoBackoff(), 0))
    try:
        worker.heartbeat()
        worker._shutdown_requested_date = now()
        worker.set_state("idle")
        worker.set_current_job_working_time(3)
        worker.set_shutdown_requested_date()
        assert worker.get_state() == "idle"
    finally:
        worker.connection = good
        worker.register_death()


def test_a_call_that_loses_redis_is_repeated_once_it_answers(app, caplog):
    from worker import build_worker

    worker = build_worker(app)
    worker.register_birth()
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise redis.ConnectionError("Connection refused")
        return "done"

    try:
        assert worker._until_redis_answers(flaky) == "done"
        assert len(calls) == 3
    finally:
        worker.register_death()


# --- fixed-id jobs and dead runs ------------------------------------------------


def noop():
    return None


def as_if_started(job_id, worker_name):
    """The state a worker leaves in Redis while it runs `job_id` (or when it dies doing so)."""
    queue = get_queue()
    job = queue.enqueue(noop, job_id=job_id)
    connection = get_redis()
    connection.lrem(queue.key, 0, job_id)
    job.set_status(JobStatus.STARTED)
    connection.hset(job.key, "worker_name", worker_name)
    connection.zadd(queue.started_job_registry.key, {f"{job_id}:execution-1": time.time() + 600})
    return job


def queued_ids():
    queue = get_queue()
    return [job_id for job_id in queue.get_job_ids()]


def test_a_started_job_of_a_dead_worker_does_not_block_its_id(app):
    as_if_started("newsletter-1-0", "a-worker-that-died")
    assert enqueue_once("newsletter-1-0", noop) is True
    assert queued_ids() == ["newsletter-1-0"]
    # The dead run is gone from the started registry, so RQ's cleanup cannot
    # later mark the new run failed (and make room for a second one).
    assert get_queue().started_job_registry.get_job_ids(cleanup=False) == []
    assert enqueue_once("newsletter-1-0", noop) is False
    assert queued_ids() == ["newsletter-1-0"]


def test_a_job_its_live_worker_runs_is_not_enqueued_again(app):
    from worker import build_worker

    worker = build_worker(app)
    worker.register_birth()
    try:
        as_if_started("newsletter-1-0", worker.name)
        worker._job_in_hand = "newsletter-1-0"
        worker.heartbeat()
        assert enqueue_once("newsletter-1-0", noop) is False
        assert queued_ids() == []

        # Redis came back from a data file that still shows this run, but the
        # worker has moved on: its next heartbeat says so.
        worker._job_in_hand = "newsletter-1-1"
        worker.heartbeat()
        assert enqueue_once("newsletter-1-0", noop) is True
        assert queued_ids() == ["newsletter-1-0"]
    finally:
        worker.register_death()


def test_a_job_whose_worker_has_a_stale_heartbeat_is_enqueued_again(app):
    from core.queue import WORKER_STALE_AFTER
    from datetime import UTC, datetime, timedelta

    from worker import build_worker

    worker = build_worker(app)
    worker.register_birth()
    try:
        as_if_started("event-7", worker.name)
        connection = get_redis()
        stale = datetime.now(UTC) - timedelta(seconds=WORKER_STALE_AFTER + 1)
        connection.hset(worker.key, mapping={"current_job": "event-7",
                                             "last_heartbeat": stale.strftime("%Y-%m-%dT%H:%M:%S.%fZ")})
        assert enqueue_once("event-7", noop) is True
    finally:
        worker.register_death()


def test_a_queued_job_is_enqueued_once_unless_its_queue_lost_it(app):
    assert enqueue_once("event-7", noop) is True
    assert enqueue_once("event-7", noop) is False
    assert queued_ids() == ["event-7"]
    get_redis().lrem(get_queue().key, 0, "event-7")  # status says queued, but no queue holds it
    assert enqueue_once("event-7", noop) is True
    assert queued_ids() == ["event-7"]


def test_only_one_process_decides_about_a_job_id_at_a_time(app):
    lock = get_redis().lock("egov:enqueue-once:event-7", timeout=10)
    assert lock.acquire(blocking=False)
    try:
        started = time.monotonic()
        assert enqueue_once("event-7", noop) is False
        assert time.monotonic() - started < 8
    finally:
        lock.release()
    assert queued_ids() == []


def test_a_stop_during_the_reconciler_lets_it_finish(app, forking_worker, monkeypatch):
    finished = []

    def reconcile():
        os.kill(os.getpid(), signal.SIGTERM)  # arrives while the reconciler works
        time.sleep(0.3)
        finished.append(True)

    monkeypatch.setattr("newsletter.jobs.reconcile", reconcile)
    job = get_queue().enqueue(write_district, "08115", "Böblingen")
    forking_worker()
    assert finished == [True], "the stop broke off the reconciler"
    assert job.get_status(refresh=True) == JobStatus.QUEUED  # and the worker stopped before the next job
