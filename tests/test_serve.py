"""`flask serve` as an operator runs it: from the repository root, in a terminal.

These tests start the real command (gunicorn, RQ workers, the embedded Redis)
and check what a person would: it answers, the first start hands out admin
credentials that work, Ctrl-C stops everything and leaves no process behind.
"""
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from http.cookiejar import CookieJar
from pathlib import Path

import pytest

from tests.conftest import DATABASE_URL, REDIS_URL, free_port

ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT = 60
STOP_TIMEOUT = 30


# --- processes, seen from outside ------------------------------------------


def process_table():
    """{pid: (ppid, start time, state)} of every process."""
    table = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            data = Path(f"/proc/{name}/stat").read_bytes()
        except OSError:
            continue
        fields = data[data.rindex(b")") + 2:].split()
        table[int(name)] = (int(fields[1]), int(fields[19]), fields[0].decode())
    return table


def process_tree(pid):
    """{pid: start time} of every process below `pid`."""
    table = process_table()
    found, todo = {}, [pid]
    while todo:
        parent = todo.pop()
        for child, (ppid, start, _state) in table.items():
            if ppid == parent and child not in found:
                found[child] = start
                todo.append(child)
    return found


def survivors(tree):
    table = process_table()
    return {
        pid: Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        for pid, start in tree.items()
        if pid in table and table[pid][1] == start and table[pid][2] not in ("Z", "X")
    }


def cmdline(pid):
    return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")


# --- the command -------------------------------------------------------------


class Served:
    """One `flask serve` process with its output in a file."""

    def __init__(self, instance, port, log, workers=1, web_workers=2, **extra_env):
        self.instance, self.port, self.log = instance, port, log
        env = dict(os.environ, INSTANCE_PATH=str(instance), PYTHONUNBUFFERED="1")
        # The documented defaults: admin@localhost, plain-HTTP cookies.
        for name in ("ADMIN_EMAIL", "BASE_URL", "SECRET_KEY", "FLASK_APP"):
            env.pop(name, None)
        if not DATABASE_URL:
            env.pop("DATABASE_URL", None)
        if not REDIS_URL:
            env.pop("REDIS_URL", None)
        env.update(extra_env)
        self.env = env  # also for `flask` commands beside it (flask_command)
        with open(log, "wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "flask", "serve", "--port", str(port), "--workers", str(workers),
                 "--web-workers", str(web_workers)],
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    @property
    def output(self):
        return Path(self.log).read_text(encoding="utf-8", errors="replace")

    def health(self):
        try:
            with urllib.request.urlopen(self.url + "/healthz", timeout=5) as response:
                return response.status, json.load(response)
        except urllib.error.HTTPError as error:
            return error.code, json.load(error)
        except OSError:
            return None, None

    def wait_until_healthy(self):
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"flask serve ended early:\n{self.output}"
            status, report = self.health()
            if status == 200:
                assert report["database"] == "ok" and report["redis"] == "ok" and report["workers"] >= 1
                return report
            time.sleep(0.3)
        pytest.fail(f"/healthz did not answer 200 within {START_TIMEOUT} s:\n{self.output}")

    def wait_for_output(self, text, timeout=20):
        deadline = time.monotonic() + timeout
        while text not in self.output:
            assert time.monotonic() < deadline, f"{text!r} did not appear:\n{self.output}"
            time.sleep(0.2)

    def worker_pids(self):
        """The RQ workers started by `flask serve` (not their scheduler or work horses)."""
        table = process_table()
        children = [pid for pid, (ppid, _start, _state) in table.items() if ppid == self.process.pid]
        return [pid for pid in children if any(arg.endswith(b"worker.py") for arg in cmdline(pid))]

    def interrupt(self):
        """Ctrl-C; returns the exit code."""
        self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            pytest.fail(f"flask serve did not stop within {STOP_TIMEOUT} s:\n{self.output}")

    def kill_everything(self):
        tree = process_tree(self.process.pid)
        self.process.kill()
        self.process.wait()
        for pid in survivors(tree):
            os.kill(pid, signal.SIGKILL)


@pytest.fixture
def serve_instance(request, tmp_path_factory):
    """An instance folder of its own; shared servers are cleaned like the suite's."""
    if DATABASE_URL or REDIS_URL:
        request.getfixturevalue("make_app")()  # its teardown empties the tables and the Redis db
    return tmp_path_factory.mktemp("serve")


@pytest.fixture
def launch(serve_instance, tmp_path):
    started = []

    def start(port=None, workers=1, web_workers=2, **extra_env):
        served = Served(serve_instance, port or free_port(), tmp_path / f"serve-{len(started)}.log", workers,
                        web_workers, **extra_env)
        started.append(served)
        return served

    yield start
    for served in started:
        if served.process.poll() is None:
            served.kill_everything()


def credentials(output):
    email = re.search(r"E-Mail:\s+(\S+)", output)
    password = re.search(r"Passwort:\s+(\S+)", output)
    assert email and password, output
    return email.group(1), password.group(1)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def log_in(base_url, email, password):
    """Log in through the login form as a browser would; returns the response status."""
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()), NoRedirect())
    with opener.open(base_url + "/login", timeout=10) as response:
        page = response.read().decode()
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
    assert token, page
    form = urllib.parse.urlencode({"csrf_token": token.group(1), "email": email, "password": password}).encode()
    try:
        with opener.open(base_url + "/login", data=form, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


# --- tests ---------------------------------------------------------------------


def test_serve_runs_everything_and_stops_cleanly(launch, serve_instance):
    served = launch()
    served.wait_until_healthy()
    served.wait_for_output(f"Läuft auf http://127.0.0.1:{served.port}")
    output = served.output
    assert "Traceback" not in output

    email, password = credentials(output)
    assert email == "admin@localhost"
    assert log_in(served.url, email, password) == 302
    assert log_in(served.url, email, password + "x") == 200  # the form again, with an error

    # A worker that dies is replaced.
    (worker,) = served.worker_pids()
    os.kill(worker, signal.SIGKILL)
    deadline = time.monotonic() + 20
    while served.worker_pids() in ([], [worker]):
        assert time.monotonic() < deadline, f"the worker was not restarted:\n{served.output}"
        time.sleep(0.2)

    tree = process_tree(served.process.pid)
    assert len(tree) >= 4, tree  # gunicorn and its 2 workers, the RQ worker (and Redis)
    assert served.interrupt() == 0, served.output
    assert survivors(tree) == {}
    assert "Traceback" not in served.output
    if not REDIS_URL:
        assert (serve_instance / "redis.db").exists()  # Redis saved its data when it stopped


def test_second_start_creates_no_new_admin_and_reuses_a_running_redis(launch, serve_instance):
    first = launch()
    first.wait_until_healthy()
    credentials(first.output)
    assert first.interrupt() == 0, first.output

    redis = None
    if not REDIS_URL:
        from core.queue import EmbeddedRedis

        redis = EmbeddedRedis(str(serve_instance)).start()
    try:
        second = launch()
        second.wait_until_healthy()
        second.wait_for_output("Läuft auf")
        assert "Passwort" not in second.output
        if redis:
            assert "läuft bereits" in second.output
        tree = process_tree(second.process.pid)
        assert second.interrupt() == 0, second.output
        assert survivors(tree) == {}
        if redis:
            assert redis.is_running(), "flask serve stopped a Redis it did not start"
    finally:
        if redis:
            redis.stop()


def test_port_in_use_is_a_clear_message(launch):
    import socket

    with socket.create_server(("127.0.0.1", 0)) as taken:
        served = launch(port=taken.getsockname()[1])
        code = served.process.wait(STOP_TIMEOUT)
    assert code != 0
    assert "bereits belegt" in served.output
    assert "Traceback" not in served.output


def test_unreachable_database_is_a_clear_message(launch):
    served = launch(DATABASE_URL="postgresql://postgres@127.0.0.1:1/nothing")
    code = served.process.wait(STOP_TIMEOUT)
    assert code != 0
    assert "Datenbankmigration ist fehlgeschlagen" in served.output
    assert "Traceback" not in served.output


# --- the address in links ------------------------------------------------------


def flask_command(served, *args):
    """A `flask` command on the served instance, as an operator would run it beside `flask serve`."""
    return subprocess.run([sys.executable, "-m", "flask", *args], cwd=ROOT, env=served.env, capture_output=True,
                          text=True, timeout=180)


def test_without_base_url_links_in_mails_answer_on_the_served_port(launch, serve_instance):
    served = launch()
    served.wait_until_healthy()
    served.wait_for_output("Öffnen Sie")
    lines = served.output.splitlines()
    opening = lines.index(f"Öffnen Sie http://127.0.0.1:{served.port} im Browser.")
    derived = [n for n, line in enumerate(lines) if line.startswith(
        f"Links in E-Mails führen auf http://127.0.0.1:{served.port} (abgeleitet aus --host/--port")]
    credentials_at = [n for n, line in enumerate(lines) if "Passwort:" in line]
    running = [n for n, line in enumerate(lines) if line.startswith("Läuft auf")]
    # The banner ends with the line to open, after the credentials and the address of the links.
    assert credentials_at and derived and running and max(credentials_at + derived + running) < opening
    imported = flask_command(served, "directory", "import")
    assert imported.returncode == 0, imported.stdout + imported.stderr

    # Subscribe through the public form, as a visitor does; the confirmation mail lands in the outbox.
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
    with opener.open(served.url + "/d/08115/subscribe", timeout=10) as response:
        page = response.read().decode()
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
    assert token, page
    form = urllib.parse.urlencode({"csrf_token": token.group(1), "email": "erika@ehningen.de",
                                   "municipality": "08115016", "consent": "y"}).encode()
    with opener.open(served.url + "/d/08115/subscribe", data=form, timeout=10) as response:
        assert response.status == 200
    outbox = serve_instance / "outbox"
    deadline = time.monotonic() + 30
    while not list(outbox.glob("*.eml")):
        assert time.monotonic() < deadline, f"no confirmation mail:\n{served.output}"
        time.sleep(0.3)
    import email
    import email.policy

    (mail,) = [email.message_from_bytes(p.read_bytes(), policy=email.policy.default) for p in outbox.glob("*.eml")]
    text = mail.get_body(("plain",)).get_content()
    links = re.findall(r"https?://[^\s<>\"]+", text)
    confirm = [link for link in links if "/confirm/" in link]
    assert confirm and all(link.startswith(f"http://127.0.0.1:{served.port}/") for link in confirm), links
    with urllib.request.urlopen(confirm[0], timeout=10) as response:
        assert response.status == 200
    assert served.interrupt() == 0
