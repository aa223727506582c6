"""The sending pipeline under failure: SMTP refusals, killed workers, a flushed Redis.

The crash tests run real worker processes (`python worker.py`) against the
test database and Redis, and a real SMTP server; they check what arrived.
"""
import collections
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select, update

from core.extensions import db
from directory.models import District
from newsletter import jobs, sending, services
from newsletter.models import Delivery, Newsletter
from subscribers.models import Subscriber, Suppression

ROOT = Path(__file__).resolve().parents[1]


def add_subscribers(count, district_key="08115", ags="08115003", prefix="person"):
    """Many active subscribers at once (the services' rules are tested elsewhere)."""
    from subscribers.models import new_public_id, utcnow

    now = utcnow()
    rows = [{
        "public_id": new_public_id(), "district_key": district_key, "email": f"{prefix}{n}@boeblingen.de",
        "email_key": f"{prefix}{n}@boeblingen.de", "name": f"Person {n}", "municipality_ags": ags,
        "department": "", "status": "active", "status_changed_at": now, "created_at": now, "updated_at": now,
        "consent_source": "import", "consent_text_version": "", "consent_requested_at": now,
        "consent_confirmed_at": now,
    } for n in range(count)]
    db.session.execute(insert(Subscriber), rows)
    db.session.commit()
    return [r["email"] for r in rows]


def new_newsletter(body="Hallo {{ name }} aus {{ municipality }}!", tracking=False):
    district = db.session.get(District, "08115")
    newsletter = services.create_newsletter(district, "Neues für {{ name }}", body, tracking=tracking)
    db.session.commit()
    return newsletter


def start(newsletter):
    count = services.send_now(newsletter)
    db.session.commit()
    jobs.enqueue_senders(newsletter.id)
    return count


def received(smtp_server):
    return collections.Counter(m["To"] for m in smtp_server.messages)


def status_of(newsletter_id):
    db.session.expire_all()
    return db.session.execute(select(Newsletter.status).where(Newsletter.id == newsletter_id)).scalar_one()


# --- SMTP answers ------------------------------------------------------------------


class Picky:
    """An SMTP handler that refuses some recipients: 451 once for `later`, 550 always for `never`."""

    def __init__(self, later, never):
        self.later, self.never = set(later), set(never)
        self.refused_once = set()
        self.messages = []

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        # Advertise PIPELINING, so the refusals go through the pipelined path.
        session.host_name = hostname
        return responses[:-1] + ["250-PIPELINING", responses[-1]]

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.never:
            return "550 5.1.1 User unknown"
        if address in self.later and address not in self.refused_once:
            self.refused_once.add(address)
            return "451 4.7.1 Greylisted, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        import email
        import email.policy

        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 OK"


@pytest.fixture
def picky_server():
    from aiosmtpd.controller import Controller

    from tests.conftest import free_port

    def start_server(later, never):
        handler = Picky(later, never)
        controller = Controller(handler, hostname="127.0.0.1", port=free_port())
        controller.start()
        handler.port = controller.port
        servers.append(controller)
        return handler

    servers = []
    yield start_server
    for controller in servers:
        controller.stop()


def test_451_arrives_after_retry_550_fails_and_is_suppressed(two_districts, make_app, picky_server, run_jobs):
    addresses = add_subscribers(30)
    later, never = addresses[:5], addresses[5:8]
    server = picky_server(later, never)
    app = make_app(MAIL_SERVER="127.0.0.1", MAIL_PORT=server.port, SEND_RETRY_BASE_SECONDS=0, SEND_BATCH_SIZE=7)
    with app.app_context():
        newsletter = new_newsletter()
        assert start(newsletter) == 30
        run_jobs()
        run_jobs()  # the retry of the deferred rows (due at once here)
        arrived = collections.Counter(m["To"] for m in server.messages)
        assert set(arrived) == set(addresses) - set(never)
        assert set(arrived.values()) == {1}
        rows = {d.subscriber.email: d for d in db.session.execute(select(Delivery)).scalars()}
        assert all(rows[a].status == "sent" and rows[a].attempts == 2 for a in later)
        for address in never:
            assert rows[address].status == "failed" and rows[address].smtp_reply.startswith("550")
            assert rows[address].subscriber.status == "bounced"
        assert db.session.execute(select(func.count()).select_from(Suppression)).scalar_one() == 3
        assert all(rows[a].attempts == 1 and rows[a].message_id for a in addresses[8:])
        assert status_of(newsletter.id) == "sent"


def test_a_server_that_is_down_loses_nothing(two_districts, make_app, picky_server, run_jobs):
    from tests.conftest import free_port

    addresses = add_subscribers(10)
    dead_port = free_port()  # nothing listens here
    app = make_app(MAIL_SERVER="127.0.0.1", MAIL_PORT=dead_port, SEND_RETRY_BASE_SECONDS=0,
                   SEND_RECONNECT_GIVE_UP_SECONDS=0.5)
    with app.app_context():
        newsletter = new_newsletter()
        newsletter_id = newsletter.id
        start(newsletter)
        run_jobs()
        counts = sending.progress(newsletter_id)
        assert counts == {**counts, "sent": 0, "failed": 0, "sending": 0, "queued": 10}
        # Nothing was tried: no attempt is counted against any recipient.
        assert db.session.execute(select(func.max(Delivery.attempts))).scalar_one() == 0
        assert status_of(newsletter_id) == "sending"
    server = picky_server((), ())
    app = make_app(MAIL_SERVER="127.0.0.1", MAIL_PORT=server.port, SEND_RETRY_BASE_SECONDS=0)
    with app.app_context():
        jobs.reconcile()
        run_jobs()
        assert sorted(m["To"] for m in server.messages) == sorted(addresses)
        assert status_of(newsletter_id) == "sent"


def test_each_recipient_gets_their_own_personalisation_and_list_headers(two_districts, make_subscriber, smtp_app,
                                                                        smtp_server, run_jobs):
    make_subscriber("anna@boeblingen.de", name="Anna Alt", ags="08115003")
    make_subscriber("bernd@boeblingen.de", name="Bernd Berg", ags="08115045")
    newsletter = new_newsletter("Liebe/r {{ name }} in {{ municipality }}, [Einstellungen]({{ preferences_url }})")
    start(newsletter)
    run_jobs()
    messages = {m["To"]: m for m in smtp_server.wait_for(2)}
    assert set(messages) == {"anna@boeblingen.de", "bernd@boeblingen.de"}
    anna = messages["anna@boeblingen.de"]
    html, text = anna.get_body(("html",)).get_content(), anna.get_body(("plain",)).get_content()
    assert anna.get_content_type() == "multipart/alternative"
    assert "Anna Alt" in html and "Böblingen, Stadt" in html and "Anna Alt" in text
    assert "Bernd" not in html + text and "Sindelfingen" not in html + text
    assert anna["Subject"] == "Neues für Anna Alt"
    assert anna["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "/unsubscribe/" in anna["List-Unsubscribe"] and "mailto:" in anna["List-Unsubscribe"]
    assert "kreis-08115." in anna["List-Id"] and anna["Message-ID"]
    # Its one-click URL unsubscribes exactly Anna.
    import re

    url = re.search(r"<(https?://[^>]+)>", anna["List-Unsubscribe"]).group(1)
    client = smtp_app.test_client()
    assert client.post(re.sub(r"^https?://[^/]+", "", url), data={"List-Unsubscribe": "One-Click"}).status_code == 200
    db.session.expire_all()
    statuses = dict(db.session.execute(select(Subscriber.email, Subscriber.status)).all())
    assert statuses == {"anna@boeblingen.de": "unsubscribed", "bernd@boeblingen.de": "active"}


def test_pause_resume_and_cancel(two_districts, smtp_app, smtp_server, run_jobs):
    add_subscribers(20)
    newsletter = new_newsletter()
    start(newsletter)
    services.pause(newsletter)
    db.session.commit()
    run_jobs()
    assert smtp_server.messages == []
    services.resume(newsletter)
    db.session.commit()
    jobs.enqueue_senders(newsletter.id)
    run_jobs()
    assert len(smtp_server.wait_for(20)) == 20
    other = new_newsletter()
    start(other)
    services.cancel(other)
    db.session.commit()
    run_jobs()
    assert len(smtp_server.messages) == 20
    assert status_of(other.id) == "cancelled"


def test_scheduled_newsletter_starts_when_due_from_the_database_alone(two_districts, smtp_app, smtp_server, run_jobs):
    from datetime import timedelta

    from core.queue import get_redis
    from subscribers.models import utcnow

    add_subscribers(3)
    newsletter = new_newsletter()
    services.schedule(newsletter, utcnow() + timedelta(hours=1))
    db.session.commit()
    jobs.reconcile()
    run_jobs()
    assert smtp_server.messages == [] and status_of(newsletter.id) == "scheduled"
    newsletter.scheduled_at = utcnow() - timedelta(seconds=1)  # the time has come
    db.session.commit()
    get_redis().flushdb()  # nothing about it was ever in Redis
    jobs.reconcile()
    run_jobs()
    assert len(smtp_server.wait_for(3)) == 3 and status_of(newsletter.id) == "sent"


# --- crashes ---------------------------------------------------------------------------


class Workers:
    """Real `python worker.py` processes against the test's database, Redis and SMTP server."""

    def __init__(self, app, smtp_port, tmp_path):
        from core.queue import redis_url

        self.env = dict(
            os.environ,
            INSTANCE_PATH=app.instance_path,
            DATABASE_URL=app.config["SQLALCHEMY_DATABASE_URI"],
            REDIS_URL=redis_url(app),
            SECRET_KEY=app.config["SECRET_KEY"],
            BASE_URL=app.config["BASE_URL"],
            MAIL_SERVER="127.0.0.1",
            MAIL_PORT=str(smtp_port),
            SEND_LEASE_SECONDS="2",
            SEND_BATCH_SIZE="20",
            SEND_PARALLEL_JOBS="2",
            RECONCILE_INTERVAL="1",
            PYTHONUNBUFFERED="1",
        )
        self.log = open(tmp_path / "workers.log", "ab")
        self.processes = []

    def start(self):
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "worker.py")], cwd=ROOT, env=self.env,
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        self.processes.append(process)
        return process

    def kill(self, process):
        """SIGKILL the worker and the work horse it forked: a crash, nothing cleans up."""
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait()

    def stop_all(self):
        for process in self.processes:
            self.kill(process)
        self.log.close()


@pytest.fixture
def workers(two_districts, smtp_app, smtp_server, tmp_path):
    started = Workers(smtp_app, smtp_server.port, tmp_path)
    yield started
    started.stop_all()


def wait_until(condition, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_killed_workers_lose_nothing_and_duplicate_at_most_one_per_kill(workers, smtp_server, tmp_path):
    addresses = add_subscribers(2000)
    newsletter = new_newsletter()
    start(newsletter)
    process = workers.start()
    workers.start()
    for threshold in (300, 800, 1300):
        assert wait_until(lambda: len(smtp_server.messages) >= threshold), (tmp_path / "workers.log").read_text()
        workers.kill(process)
        process = workers.start()
    assert wait_until(lambda: status_of(newsletter.id) == "sent", timeout=120), (tmp_path / "workers.log").read_text()
    counts = received(smtp_server)
    assert set(counts) == set(addresses)
    duplicates = sum(n - 1 for n in counts.values())
    assert duplicates <= 3
    assert sending.progress(newsletter.id)["sent"] == 2000


def test_flushing_redis_mid_send_still_delivers_exactly_once(workers, smtp_server, tmp_path):
    from core.queue import get_redis

    addresses = add_subscribers(1500)
    newsletter = new_newsletter()
    start(newsletter)
    workers.start()
    assert wait_until(lambda: len(smtp_server.messages) >= 200), (tmp_path / "workers.log").read_text()
    get_redis().flushdb()
    assert wait_until(lambda: status_of(newsletter.id) == "sent", timeout=120), (tmp_path / "workers.log").read_text()
    counts = received(smtp_server)
    assert set(counts) == set(addresses)
    assert set(counts.values()) == {1}


def test_dkim_signature_verifies_against_the_published_key(two_districts, make_subscriber, make_app, smtp_server,
                                                           run_jobs, tmp_path):
    import base64
    import shutil

    import dkim

    if not shutil.which("openssl"):
        pytest.skip("openssl is needed to make a test key")
    key = tmp_path / "dkim.pem"
    subprocess.run(["openssl", "genrsa", "-out", str(key), "2048"], check=True, capture_output=True)
    public_der = subprocess.run(["openssl", "rsa", "-in", str(key), "-pubout", "-outform", "DER"], check=True,
                                capture_output=True).stdout
    make_subscriber("anna@boeblingen.de")
    app = make_app(MAIL_SERVER="127.0.0.1", MAIL_PORT=smtp_server.port, DKIM_PRIVATE_KEY=str(key),
                   DKIM_SELECTOR="egov", DKIM_DOMAIN="lrabb.example")
    with app.app_context():
        start(new_newsletter())
        run_jobs()
    smtp_server.wait_for(1)
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(public_der)

    def dns(name, timeout=5):
        return record if name == b"egov._domainkey.lrabb.example." else None

    assert smtp_server.envelopes[0].content.startswith(b"DKIM-Signature:")
    signed = smtp_server.envelopes[0].content
    assert dkim.verify(signed, dnsfunc=dns)
    assert not dkim.verify(signed.replace(b"\r\nSubject: ", b"\r\nSubject: Re: ", 1), dnsfunc=dns)


# --- the journal of sent mails ---------------------------------------------------------


def _journal_a_half_sent_batch(count=6, sent=4):
    """A batch claimed by a job that recorded `sent` mails in the journal and died before applying them."""
    from core.pipeline import recording
    from newsletter.sending import delivery_rows
    from subscribers.models import utcnow

    add_subscribers(count)
    newsletter = new_newsletter()
    services.send_now(newsletter)
    db.session.commit()
    ids = delivery_rows.claim_batch(newsletter.id, count)
    with recording():
        for n, row_id in enumerate(ids[:sent]):
            delivery_rows.record(row_id, status="sent", sent_at=utcnow(), message_id=f"<m{n}@egov.example>",
                                 smtp_reply="250")
    return newsletter, ids


def test_a_sent_mail_is_journaled_and_applied_to_its_row_at_the_end_of_the_batch(two_districts, smtp_app,
                                                                                  smtp_server, run_jobs):
    from core.models import SentMail

    newsletter, ids = _journal_a_half_sent_batch()
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(SentMail)) == 4
    assert {d.status for d in db.session.scalars(select(Delivery))} == {"sending"}  # not applied yet
    from newsletter.sending import delivery_rows

    assert delivery_rows.apply_sent(SentMail.row_id.in_(ids)) == 4
    assert delivery_rows.apply_sent(SentMail.row_id.in_(ids)) == 0  # safe to run again
    db.session.expire_all()
    rows = {d.id: d for d in db.session.scalars(select(Delivery))}
    assert [rows[i].status for i in ids] == ["sent"] * 4 + ["sending"] * 2
    assert rows[ids[0]].message_id == "<m0@egov.example>" and rows[ids[0]].attempts == 1
    assert rows[ids[0]].sent_at is not None and rows[ids[0]].claimed_until is None
    assert db.session.scalar(select(func.count()).select_from(SentMail)) == 0


def test_a_dead_jobs_journal_is_applied_before_its_rows_go_back_to_the_queue(two_districts, smtp_app,
                                                                            smtp_server, run_jobs):
    from datetime import timedelta

    from core.models import SentMail
    from subscribers.models import utcnow

    newsletter, ids = _journal_a_half_sent_batch()
    db.session.execute(update(Delivery).values(claimed_until=utcnow() - timedelta(seconds=1)))  # the lease is over
    db.session.commit()
    jobs.reconcile()
    run_jobs()
    # The four journaled mails are not sent again; the two others are.
    assert sorted(received(smtp_server).values()) == [1, 1]
    db.session.expire_all()
    assert {d.status for d in db.session.scalars(select(Delivery))} == {"sent"}
    assert db.session.scalar(select(func.count()).select_from(SentMail)) == 0
    assert status_of(newsletter.id) == "sent"


def test_a_bounce_finds_a_mail_still_in_the_journal(two_districts, smtp_app, smtp_server):
    from newsletter.bounces import _find_delivery

    newsletter, ids = _journal_a_half_sent_batch()
    delivery = _find_delivery(["<m2@egov.example>"])
    assert delivery is not None and delivery.id == ids[2] and delivery.status == "sent"
