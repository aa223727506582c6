"""`flask serve` under faults, with real processes and a real mail server.

A newsletter to 3,000 recipients goes out through `flask serve` (gunicorn,
two forking RQ workers, the embedded Redis) to an SMTP server in this test
process, which counts what each recipient receives. While it sends:

- the embedded redis-server is SIGKILLed: `flask serve` starts exactly one
  new one, the workers carry on, /healthz counts them right, and every
  recipient gets the mail (at most one duplicate);
- `flask serve` is stopped with SIGTERM and started again: the running jobs
  stop between two mails and give their rows back, so nothing is sent twice,
  nothing is lost, and the second start picks up at once;
- a second `flask serve` on the same instance folder refuses to start.
"""
import collections
import os
import signal
import time
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select

from app import create_app
from core.extensions import db
from tests.conftest import DATABASE_URL, REDIS_URL
from tests.test_serve import STOP_TIMEOUT, launch, process_tree, serve_instance, survivors  # noqa: F401 (fixtures)

RECIPIENTS = 3000
SEND_TIMEOUT = 120
RECONCILE_INTERVAL = 5


class CountingSMTP:
    """What each recipient received; no parsing, so it keeps up with the workers."""

    def __init__(self):
        self.received = collections.Counter()

    async def handle_DATA(self, server, session, envelope):
        for address in envelope.rcpt_tos:
            self.received[address] += 1
        return "250 OK"

    @property
    def total(self):
        return sum(self.received.values())

    def wait_for(self, count, timeout):
        deadline = time.monotonic() + timeout
        while self.total < count:
            assert time.monotonic() < deadline, f"only {self.total} of {count} mails arrived"
            time.sleep(0.05)


@pytest.fixture
def mail_server():
    from aiosmtpd.controller import Controller

    from tests.conftest import free_port

    handler = CountingSMTP()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    handler.port = controller.port
    yield handler
    controller.stop()


@pytest.fixture
def newsletter(serve_instance):
    """A sending newsletter to RECIPIENTS subscribers in the served instance; its rows are due.

    Nothing is enqueued: the workers' reconciler finds the due rows when they start.
    """
    from directory.models import District, Municipality
    from newsletter import services
    from subscribers.models import Subscriber, new_public_id, utcnow

    app = create_app({
        "INSTANCE_PATH": str(serve_instance),
        "SQLALCHEMY_DATABASE_URI": DATABASE_URL or f"sqlite:///{serve_instance}/egov.sqlite3",
        "REDIS_URL": REDIS_URL,
    })
    with app.app_context():
        import flask_migrate

        flask_migrate.upgrade()
        district = District(key="08115", name="Böblingen", kind="Landkreis")
        db.session.add(district)
        db.session.flush()
        municipalities = [(f"08115{n:03d}", f"Gemeinde {n}") for n in range(1, 4)]
        db.session.execute(insert(Municipality), [
            {"ags": ags, "name": name, "district_key": "08115"} for ags, name in municipalities
        ])
        now = utcnow()
        addresses = [f"person{n}@gemeinde{n % 3}.example" for n in range(RECIPIENTS)]
        db.session.execute(insert(Subscriber), [
            {
                "public_id": new_public_id(), "district_key": "08115", "email": address, "email_key": address,
                "name": f"Person {n}", "municipality_ags": municipalities[n % 3][0], "department": "",
                "status": "active", "status_changed_at": now, "created_at": now, "updated_at": now,
                "consent_source": "import", "consent_text_version": "test", "consent_requested_at": now,
                "consent_confirmed_at": now,
            }
            for n, address in enumerate(addresses)
        ])
        letter = services.create_newsletter(district, "Neuigkeiten für {{ municipality }}",
                                            "Liebe/r {{ name }},\n\nNeues aus dem Kreis.", tracking=False)
        assert services.send_now(letter) == RECIPIENTS
        db.session.commit()
        newsletter_id = letter.id
        db.session.remove()
    return Sending(app, newsletter_id, set(addresses))


class Sending:
    def __init__(self, app, newsletter_id, addresses):
        self.app, self.id, self.addresses = app, newsletter_id, addresses

    def rows(self):
        """{status: count} of the newsletter's delivery rows."""
        from newsletter.models import Delivery

        with self.app.app_context():
            counts = dict(db.session.execute(
                select(Delivery.status, func.count()).where(Delivery.newsletter_id == self.id)
                .group_by(Delivery.status)
            ).all())
            db.session.remove()
        return counts

    def wait_until_sent(self, served, timeout=SEND_TIMEOUT):
        deadline = time.monotonic() + timeout
        while (rows := self.rows()).get("sent", 0) < RECIPIENTS:
            assert served.process.poll() is None, f"flask serve ended:\n{served.output}"
            assert time.monotonic() < deadline, f"not sent within {timeout} s: {rows}\n{served.output}"
            time.sleep(0.5)


def send_env(mail_server, **extra):
    env = {
        "MAIL_SERVER": "127.0.0.1", "MAIL_PORT": str(mail_server.port),
        "RECONCILE_INTERVAL": str(RECONCILE_INTERVAL), "SEND_BATCH_SIZE": "100", "SERVE_STOP_TIMEOUT": "20",
    }
    env.update(extra)
    return env


def redis_servers(socket_path):
    """Pids of the redis-server processes serving `socket_path`."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            argv = Path(f"/proc/{name}/cmdline").read_bytes().split(b"\0")
            state = Path(f"/proc/{name}/stat").read_bytes().rsplit(b")", 1)[1].split()[0]
        except OSError:
            continue
        # Redis rewrites its title to "…/redis-server unixsocket:<path>".
        wanted = socket_path.encode()
        if (state not in (b"Z", b"X") and b"redis-server" in argv[0]
                and any(arg == wanted or arg.endswith(b":" + wanted) or arg.endswith(b" " + wanted) for arg in argv)):
            found.append(int(name))
    return found


def wait_for_health(served, workers, timeout):
    """Seconds until /healthz answers 200 with exactly `workers` workers."""
    started = time.monotonic()
    while True:
        status, report = served.health()
        if status == 200 and report["workers"] == workers:
            return time.monotonic() - started
        assert time.monotonic() - started < timeout, (
            f"/healthz not 200 with {workers} workers within {timeout} s (last: {status} {report}):\n{served.output}"
        )
        time.sleep(0.2)


def duplicates(mail_server):
    return sum(count - 1 for count in mail_server.received.values() if count > 1)


@pytest.mark.skipif(bool(REDIS_URL), reason="kills the embedded Redis; with REDIS_URL there is none")
def test_killed_redis_is_restarted_once_and_the_send_completes(launch, serve_instance, newsletter, mail_server):
    from core.queue import embedded_socket_path

    socket_path = embedded_socket_path(str(serve_instance))
    served = launch(workers=2, web_workers=1, **send_env(mail_server))
    served.wait_until_healthy()
    mail_server.wait_for(300, timeout=60)
    (old,) = redis_servers(socket_path)

    os.kill(old, signal.SIGKILL)
    killed_at = time.monotonic()
    seen = []
    while time.monotonic() - killed_at < 8:  # long enough to see a second server, if one came up
        seen.append(redis_servers(socket_path))
        time.sleep(0.05)
    assert all(len(pids) <= 1 for pids in seen), f"two redis-servers at once: {seen}"
    first = next((n for n, pids in enumerate(seen) if pids and pids != [old]), None)
    assert first is not None, f"no new redis-server:\n{served.output}"
    assert first * 0.05 <= 5.0 + 0.5, f"the new redis-server took {first * 0.05:.1f} s"
    assert seen[-1] != [old] and len(seen[-1]) == 1
    assert "Das eingebettete Redis wurde unerwartet beendet" in served.output

    wait_for_health(served, workers=2, timeout=30 - (time.monotonic() - killed_at))
    newsletter.wait_until_sent(served)
    assert set(mail_server.received) == newsletter.addresses
    assert duplicates(mail_server) <= 1, {a: n for a, n in mail_server.received.items() if n > 1}
    # Both workers lived through the outage: no worker restart was needed.
    assert "Worker 1 wurde unerwartet beendet" not in served.output
    assert "Worker 2 wurde unerwartet beendet" not in served.output

    tree = process_tree(served.process.pid)
    assert served.interrupt() == 0, served.output
    assert survivors(tree) == {}
    assert redis_servers(socket_path) == []


def test_stop_mid_send_and_start_again_sends_everything_once(launch, newsletter, mail_server):
    env = send_env(mail_server)
    first = launch(workers=2, web_workers=1, **env)
    first.wait_until_healthy()
    mail_server.wait_for(600, timeout=60)

    first.process.send_signal(signal.SIGTERM)
    code = first.process.wait(STOP_TIMEOUT)
    assert code == 0, first.output
    assert "abgebrochen" not in first.output, "a worker had to be killed:\n" + first.output
    stopped = mail_server.total
    rows = newsletter.rows()
    assert rows.get("sent", 0) == stopped < RECIPIENTS, (rows, stopped)
    assert rows.get("sending", 0) == 0, f"claimed rows were not given back at once: {rows}"
    assert duplicates(mail_server) == 0

    second = launch(workers=2, web_workers=1, **env)
    second.wait_until_healthy()
    ready = time.monotonic()
    while mail_server.total == stopped:
        assert time.monotonic() - ready <= RECONCILE_INTERVAL, f"no mail within one reconcile:\n{second.output}"
        time.sleep(0.05)
    newsletter.wait_until_sent(second)
    assert set(mail_server.received) == newsletter.addresses
    assert duplicates(mail_server) == 0, {a: n for a, n in mail_server.received.items() if n > 1}
    assert second.interrupt() == 0, second.output


def test_second_serve_on_the_same_instance_refuses(launch, serve_instance):
    first = launch(web_workers=1)
    first.wait_until_healthy()
    second = launch(web_workers=1)  # another port: only the instance folder is shared
    code = second.process.wait(STOP_TIMEOUT)
    assert code != 0
    assert "läuft bereits „flask serve“" in second.output, second.output
    assert str(first.process.pid) in second.output
    assert "Traceback" not in second.output
    assert first.health()[0] == 200, "the first one was disturbed"
    assert first.interrupt() == 0, first.output
