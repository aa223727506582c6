"""/healthz: database, Redis and RQ workers, as a load balancer or monitor sees them."""
import socket
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from app import create_app


@pytest.fixture
def registered_worker(app):
    """A worker known to Redis, as a running `worker.py` would be."""
    from worker import build_worker

    worker = build_worker(app)
    worker.register_birth()
    yield worker
    worker.register_death()


@pytest.fixture
def unmigrated_app(base_config, _database):
    """An app with other settings than the suite's; it is never written to."""

    def factory(**overrides):
        return create_app(dict(base_config, **overrides))

    return factory


@pytest.fixture
def silent_server():
    """A TCP server that accepts connections and never says a word.

    Closing the connections at the end releases a client that still waits.
    """
    listener = socket.create_server(("127.0.0.1", 0))
    accepted = []
    stop = threading.Event()

    def accept():
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join()
    for connection in accepted:
        connection.close()
    listener.close()


def get_health(app):
    response = app.test_client().get("/healthz")
    assert response.is_json
    return response


def test_without_a_worker_the_service_is_not_healthy(client):
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json == {"database": "ok", "redis": "ok", "workers": 0, "status": "error"}


def test_healthy_with_a_registered_worker(client, registered_worker):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json == {"database": "ok", "redis": "ok", "workers": 1, "status": "ok"}


def test_worker_that_said_goodbye_no_longer_counts(client, app):
    from worker import build_worker

    worker = build_worker(app)
    worker.register_birth()
    assert client.get("/healthz").json["workers"] == 1
    worker.register_death()
    response = client.get("/healthz")
    assert response.status_code == 503 and response.json["workers"] == 0


def test_unreachable_redis(unmigrated_app):
    response = get_health(unmigrated_app(REDIS_URL="redis://127.0.0.1:1/0"))
    assert response.status_code == 503
    assert response.json == {"database": "ok", "redis": "error", "workers": 0, "status": "error"}


def health_within(app, seconds):
    """The /healthz response, failing the test if it takes longer than `seconds`.

    Runs in a thread so that a check that hangs fails this test instead of
    stopping the whole suite.
    """
    result = {}
    thread = threading.Thread(target=lambda: result.update(response=get_health(app)), daemon=True)
    started = time.monotonic()
    thread.start()
    thread.join(seconds)
    assert "response" in result, f"/healthz did not answer within {seconds} s"
    return result["response"], time.monotonic() - started


def test_redis_that_never_answers_does_not_hang_the_check(unmigrated_app, silent_server):
    response, _seconds = health_within(unmigrated_app(REDIS_URL=f"redis://127.0.0.1:{silent_server}/0"), 15)
    assert response.status_code == 503
    assert response.json["redis"] == "error" and response.json["database"] == "ok"


def test_database_that_never_answers_does_not_hang_the_check(unmigrated_app, silent_server):
    url = f"postgresql+psycopg://postgres@127.0.0.1:{silent_server}/nothing"
    response, _seconds = health_within(unmigrated_app(SQLALCHEMY_DATABASE_URI=url), 15)
    assert response.status_code == 503
    assert response.json["database"] == "error" and response.json["redis"] == "ok"


def test_unreachable_sqlite_database(unmigrated_app, tmp_path):
    missing = tmp_path / "no-such-folder" / "egov.sqlite3"
    response = get_health(unmigrated_app(SQLALCHEMY_DATABASE_URI=f"sqlite:///{missing}"))
    assert response.status_code == 503
    assert response.json["database"] == "error" and response.json["status"] == "error"
    assert response.json["redis"] == "ok"
    assert not missing.parent.exists()  # the check creates nothing


def test_unreachable_postgresql(unmigrated_app):
    url = "postgresql+psycopg://postgres@127.0.0.1:1/nothing"
    response = get_health(unmigrated_app(SQLALCHEMY_DATABASE_URI=url))
    assert response.status_code == 503
    assert response.json["database"] == "error" and response.json["redis"] == "ok"


def test_database_and_redis_down_together(unmigrated_app, tmp_path):
    app = unmigrated_app(
        SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path}/missing/x.sqlite3", REDIS_URL="redis://127.0.0.1:1/0"
    )
    response = get_health(app)
    assert response.status_code == 503
    assert response.json == {"database": "error", "redis": "error", "workers": 0, "status": "error"}



def test_a_worker_with_a_stale_heartbeat_does_not_count(client, registered_worker):
    """A killed worker leaves its key behind, and a Redis restarted from its
    data file brings back keys of workers long gone: only a fresh heartbeat counts."""
    from core.queue import WORKER_STALE_AFTER, get_redis

    assert client.get("/healthz").json["workers"] == 1
    stale = datetime.now(UTC) - timedelta(seconds=WORKER_STALE_AFTER + 1)
    get_redis().hset(registered_worker.key, "last_heartbeat", stale.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
    response = client.get("/healthz")
    assert response.status_code == 503 and response.json["workers"] == 0

    registered_worker.heartbeat()  # alive after all
    assert client.get("/healthz").json == {"database": "ok", "redis": "ok", "workers": 1, "status": "ok"}


def test_a_registered_key_without_its_worker_does_not_count(client, registered_worker):
    from core.queue import get_redis

    get_redis().delete(registered_worker.key)  # expired, or lost with the Redis data
    assert client.get("/healthz").json["workers"] == 0


def test_each_live_worker_counts_once(client, app):
    from worker import build_worker

    workers = [build_worker(app) for _ in range(2)]
    for worker in workers:
        worker.register_birth()
        worker.heartbeat()
        worker.heartbeat()
    try:
        assert client.get("/healthz").json["workers"] == 2
    finally:
        for worker in workers:
            worker.register_death()
