"""The pipeline against a mail server that fails, and a job asked to stop.

Connection faults (a cut connection, a 421) are the server's, not the
recipient's: the job reconnects and sends the interrupted mail again, counts
no attempt, and finishes the send in one pass. A stop between mails records
the mail in flight and gives the unsent claimed rows back at once. The jobs
run through the tests' in-process RQ worker (`run_jobs`).
"""
import pytest
from sqlalchemy import func, select

from core import shutdown
from core.extensions import db
from events import jobs as event_jobs
from events import services as event_services
from events.models import EventMail
from newsletter import sending
from newsletter.models import Delivery
from tests.conftest import SMTPSink
from tests.faulty_smtp import FaultySMTPServer
from tests.test_sending import add_subscribers, new_newsletter, start, status_of


@pytest.fixture(autouse=True)
def clear_stop_flag():
    shutdown.reset()
    yield
    shutdown.reset()


@pytest.fixture
def faulty_server():
    servers = []

    def start_server(**options):
        server = FaultySMTPServer(**options).start()
        servers.append(server)
        return server

    yield start_server
    for server in servers:
        server.stop()


def rows_by_status(model=Delivery):
    db.session.expire_all()
    return dict(db.session.execute(select(model.status, func.count()).group_by(model.status)).all())


def max_attempts(model=Delivery, status=None):
    query = select(func.max(model.attempts))
    if status:
        query = query.where(model.status == status)
    return db.session.execute(query).scalar_one()


# --- connection faults ------------------------------------------------------------------


def test_cuts_and_a_421_outage_lose_nothing_and_finish_in_one_pass(two_districts, make_app, faulty_server, run_jobs):
    addresses = add_subscribers(800)
    server = faulty_server(cut_rate=0.03, seed=11, outage_after=300, outage_seconds=1.5)
    app = make_app(MAIL_SERVER="127.0.0.1", MAIL_PORT=server.port, SEND_BATCH_SIZE=100,
                   SEND_RECONNECT_BACKOFF_SECONDS=0.1, SEND_RECONNECT_BACKOFF_MAX_SECONDS=0.5)
    with app.app_context():
        newsletter = new_newsletter()
        assert start(newsletter) == 800
        run_jobs()  # one pass: no reconciler, no backoff of rows
        assert server.cuts >= 10 and server.refused_421 >= 1, (server.cuts, server.refused_421)
        assert set(server.received) == set(addresses), "a mail was lost"
        assert server.duplicates() <= server.cuts_after_data <= server.cuts
        assert status_of(newsletter.id) == "sent"
        assert rows_by_status() == {"sent": 800}
        # Every row was sent with one attempt: no cut or 421 counted against a recipient.
        assert db.session.execute(select(func.min(Delivery.attempts))).scalar_one() == 1
        assert max_attempts() == 1
        assert db.session.execute(select(func.count()).where(Delivery.smtp_reply != "250")).scalar_one() == 0


def test_a_server_that_stays_away_gets_the_rows_back_untouched(two_districts, make_app, faulty_server, run_jobs):
    addresses = add_subscribers(60)
    server = faulty_server(outage_after=25, outage_seconds=60)
    app = make_app(MAIL_SERVER="127.0.0.1", MAIL_PORT=server.port, SEND_BATCH_SIZE=20,
                   SEND_RECONNECT_BACKOFF_SECONDS=0.05, SEND_RECONNECT_BACKOFF_MAX_SECONDS=0.2,
                   SEND_RECONNECT_GIVE_UP_SECONDS=1)
    with app.app_context():
        newsletter = new_newsletter()
        start(newsletter)
        run_jobs()
        assert server.accepted == 25
        counts = rows_by_status()
        assert counts == {"sent": 25, "queued": 35}
        # Given back as they were: due now, no attempt, no lease.
        open_rows = db.session.execute(select(Delivery).where(Delivery.status == "queued")).scalars().all()
        assert all(r.attempts == 0 and r.claimed_until is None and r.smtp_reply == "" for r in open_rows)
        assert status_of(newsletter.id) == "sending"
        server.outage_until = 0  # the server is back
        sending.reclaim_expired()
        from newsletter import jobs

        jobs.reconcile()
        run_jobs()
        assert set(server.received) == set(addresses) and server.duplicates() == 0
        assert status_of(newsletter.id) == "sent"


def test_a_mail_that_always_loses_the_session_is_deferred_and_the_rest_goes_out(two_districts, make_app,
                                                                                faulty_server, run_jobs):
    addresses = add_subscribers(12)
    victim = addresses[4]
    server = faulty_server(always_cut=[victim])
    app = make_app(MAIL_SERVER="127.0.0.1", MAIL_PORT=server.port, SEND_RECONNECT_BACKOFF_SECONDS=0.01,
                   SEND_RECONNECT_BACKOFF_MAX_SECONDS=0.05, SEND_RECONNECT_MAIL_CUTS=3)
    with app.app_context():
        start(new_newsletter())
        run_jobs()
        assert set(server.received) == set(addresses) - {victim}
        assert server.cuts == 3
        row = db.session.execute(select(Delivery).where(Delivery.status != "sent")).scalar_one()
        assert row.subscriber.email == victim
        assert row.status == "deferred" and row.attempts == 1 and row.smtp_reply.startswith("connection")


# --- a stop on request ------------------------------------------------------------------


class StopsAfter(SMTPSink):
    """Accepts mail; after `count` of them the process is asked to stop (as SIGTERM would)."""

    def __init__(self, count):
        super().__init__()
        self.count = count

    async def handle_DATA(self, server, session, envelope):
        answer = await super().handle_DATA(server, session, envelope)
        if len(self.messages) == self.count:
            shutdown.request_stop()
        return answer


@pytest.fixture
def stopping_server():
    from aiosmtpd.controller import Controller

    from tests.conftest import free_port

    controllers = []

    def start_server(count):
        sink = StopsAfter(count)
        controller = Controller(sink, hostname="127.0.0.1", port=free_port())
        controller.start()
        controllers.append(controller)
        sink.port = controller.port
        return sink

    yield start_server
    for controller in controllers:
        controller.stop()


def test_a_stop_mid_batch_records_the_mail_in_flight_and_gives_the_rest_back(two_districts, make_app,
                                                                             stopping_server, run_jobs):
    addresses = add_subscribers(50)
    server = stopping_server(7)
    # One job: the in-process worker clears the flag before its next job (a new work horse).
    app = make_app(MAIL_SERVER="127.0.0.1", MAIL_PORT=server.port, SEND_BATCH_SIZE=20, SEND_PARALLEL_JOBS=1)
    with app.app_context():
        newsletter = new_newsletter()
        start(newsletter)
        run_jobs()
        assert len(server.messages) == 7
        assert rows_by_status() == {"sent": 7, "queued": 43}
        open_rows = db.session.execute(select(Delivery).where(Delivery.status == "queued")).scalars().all()
        assert all(r.attempts == 0 and r.claimed_until is None for r in open_rows)
        assert status_of(newsletter.id) == "sending"
        # The next worker (a restart) sends the rest at once: nothing waits for a lease.
        shutdown.reset()
        from newsletter import jobs

        jobs.reconcile()
        run_jobs()
        received = [m["To"] for m in server.messages]
        assert sorted(received) == sorted(addresses)  # each exactly once
        assert status_of(newsletter.id) == "sent"


def test_a_stop_also_ends_an_event_mail_job(two_districts, make_subscriber, make_event, make_app, stopping_server,
                                            run_jobs):
    for n in range(6):
        make_subscriber(f"gast{n}@boeblingen.de", "08115", ags="08115003", name=f"Gast {n}")
    server = stopping_server(2)
    app = make_app(MAIL_SERVER="127.0.0.1", MAIL_PORT=server.port, SEND_BATCH_SIZE=4)
    with app.app_context():
        event = make_event()
        assert event_services.invite(event) == 6
        db.session.commit()
        event_jobs.enqueue_senders(event.id)
        run_jobs()
        assert len(server.messages) == 2
        assert rows_by_status(EventMail) == {"sent": 2, "queued": 4}
        assert max_attempts(EventMail, "queued") == 0
        shutdown.reset()
        event_jobs.reconcile()
        run_jobs()
        assert len(server.messages) == 6 and len({m["To"] for m in server.messages}) == 6
        assert rows_by_status(EventMail) == {"sent": 6}
