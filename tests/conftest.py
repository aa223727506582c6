"""Fixtures: the app from the factory, its client and CLI runner, factories for
rows, a real SMTP server, and an in-process RQ worker.

By default the suite runs on SQLite and the embedded Redis. With DATABASE_URL
and/or REDIS_URL set it runs against those servers instead; the database's
tables are dropped and migrated afresh at the start and emptied after every
test, and the Redis database is flushed: point them at throwaway databases.
"""
import email
import email.policy
import os
import socket
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from app import create_app
from core.extensions import db

DATABASE_URL = os.environ.get("DATABASE_URL")
REDIS_URL = os.environ.get("REDIS_URL")
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def instance_path(tmp_path_factory):
    # Short path: the embedded Redis's Unix socket lives in it.
    return str(tmp_path_factory.mktemp("inst"))


@pytest.fixture(scope="session")
def base_config(instance_path):
    return {
        "TESTING": True,
        "INSTANCE_PATH": instance_path,
        "SECRET_KEY": "test-secret",
        "SQLALCHEMY_DATABASE_URI": DATABASE_URL or "sqlite:///" + os.path.join(instance_path, "test.sqlite3"),
        "REDIS_URL": REDIS_URL,
        "MAIL_SERVER": None,
        "WTF_CSRF_ENABLED": False,
        "BASE_URL": "http://localhost",
        "SERVER_NAME": None,
        # Explicit: the limiter is one object for every app, and Flask-Limiter
        # takes its current state as the default of the next app's setting, so
        # a test that turns limits off would leave them off for the rest.
        "RATELIMIT_ENABLED": True,
    }


@pytest.fixture(scope="session")
def embedded_redis(instance_path):
    """The embedded Redis of the test instance, unless REDIS_URL is given."""
    if REDIS_URL:
        yield None
        return
    from core.queue import EmbeddedRedis

    server = EmbeddedRedis(instance_path).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def _database(base_config, embedded_redis):
    """Migrate the schema once per session, from nothing."""
    import flask_migrate

    app = create_app(base_config)
    with app.app_context():
        db.drop_all()
        db.session.execute(text("DROP TABLE IF EXISTS alembic_version"))
        db.session.commit()
        flask_migrate.upgrade()
    return True


@pytest.fixture
def make_app(base_config, _database, tmp_path):
    """Build an app with extra config; the database and Redis are cleaned afterwards."""
    apps = []

    def factory(**overrides):
        config = dict(base_config, OUTBOX_DIR=str(tmp_path / "outbox"))
        config.update(overrides)
        app = create_app(config)
        apps.append(app)
        with app.app_context():
            from core.queue import get_redis
            from newsletter.tracking import reset_address_limits

            get_redis().flushdb()
            reset_address_limits()
        return app

    yield factory
    if apps:
        with apps[0].app_context():
            db.session.remove()
            for table in reversed(db.metadata.sorted_tables):
                db.session.execute(table.delete())
            db.session.commit()
            from core.queue import get_redis

            get_redis().flushdb()


@pytest.fixture
def app(make_app):
    app = make_app()
    with app.app_context():
        yield app


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def shared_data():
    """The official list of BW districts and municipalities (skipped when absent)."""
    if not (SHARED_DATA / "bw_districts.csv").exists():
        pytest.skip("../shared/data is not available")
    return SHARED_DATA


# --- row factories -------------------------------------------------------


@pytest.fixture
def make_district(app):
    from directory.models import District, Municipality

    def factory(key="08115", name="Böblingen", kind="Landkreis", municipalities=()):
        district = District(key=key, name=name, kind=kind)
        db.session.add(district)
        for ags, mname in municipalities:
            db.session.add(Municipality(ags=ags, name=mname, district_key=key))
        db.session.commit()
        return district

    return factory


@pytest.fixture
def two_districts(make_district):
    """Böblingen and Esslingen with two municipalities each."""
    boeblingen = make_district(
        "08115", "Böblingen", municipalities=[("08115003", "Böblingen, Stadt"), ("08115045", "Sindelfingen, Stadt")]
    )
    esslingen = make_district(
        "08116", "Esslingen", municipalities=[("08116019", "Esslingen am Neckar, Stadt"), ("08116050", "Nürtingen, Stadt")]
    )
    return boeblingen, esslingen


@pytest.fixture
def make_topic(app):
    from subscribers.services import create_topic

    def factory(name="service-bw", district_key="08115"):
        topic = create_topic(district_key, name)
        db.session.commit()
        return topic

    return factory


@pytest.fixture
def make_subscriber(app):
    """A subscriber through the services; `status` other than active/pending goes through its own rule."""
    from directory.models import District
    from subscribers import privacy, services

    def factory(email="anna.beispiel@boeblingen.de", district_key="08115", ags=None, name="Anna Beispiel",
                status="active", topics=(), department="", source="admin"):
        district = db.session.get(District, district_key)
        ags = ags or district.municipalities[0].ags
        subscriber = services.add_subscriber(
            district, email, name, ags, topics=topics, department=department, source=source,
            double_opt_in=status == "pending", consent_version="2026-11-de",
        )
        if status == "unsubscribed":
            services.unsubscribe(subscriber)
        elif status in ("bounced", "complained"):
            services.mark_undeliverable(subscriber, status)
        elif status == "erased":
            privacy.erase_subscriber(subscriber)
        db.session.commit()
        return subscriber

    return factory


@pytest.fixture
def make_user(app):
    from accounts.services import create_user

    def factory(email="koordination@lrabb.de", role="coordinator", districts=("08115",), password=None):
        user, password = create_user(email, role, districts, password=password)
        db.session.commit()
        user.plain_password = password
        return user

    return factory


@pytest.fixture
def make_token(app):
    from accounts.services import issue_token

    def factory(user):
        token = issue_token(user)
        db.session.commit()
        return {"Authorization": f"Bearer {token}"}

    return factory


@pytest.fixture
def login(client):
    def do_login(user):
        response = client.post("/login", data={"email": user.email, "password": user.plain_password})
        assert response.status_code == 302, response.get_data(as_text=True)
        return client

    return do_login


@pytest.fixture
def sign_in(client):
    """Sign in without the login form: a server-side session and its keys in the cookie."""

    from tests.signin import sign_in_client

    def do_sign_in(user):
        return sign_in_client(client, user)

    return do_sign_in


# --- real SMTP server and RQ worker --------------------------------------


class SMTPSink:
    """Messages received by the aiosmtpd server, parsed as a mail client would."""

    def __init__(self):
        self.messages = []
        self.envelopes = []

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 OK"

    def wait_for(self, count, timeout=5.0):
        deadline = time.monotonic() + timeout
        while len(self.messages) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.messages


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def smtp_server():
    """A real SMTP server on localhost; `.messages` holds what it received."""
    from aiosmtpd.controller import Controller

    sink = SMTPSink()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port())
    controller.start()
    sink.port = controller.port
    yield sink
    controller.stop()


@pytest.fixture
def smtp_app(make_app, smtp_server):
    """An app whose mail goes to the test SMTP server."""
    app = make_app(MAIL_SERVER="127.0.0.1", MAIL_PORT=smtp_server.port)
    with app.app_context():
        yield app


@pytest.fixture
def run_jobs():
    """Run every queued job in this process (an RQ SimpleWorker in burst mode)."""
    from flask import current_app

    from worker import build_worker

    def run():
        worker = build_worker(current_app._get_current_object(), simple=True)
        worker.work(burst=True, with_scheduler=False)
        return worker

    return run


# --- events ---------------------------------------------------------------


def next_local(weekday, hour, minute=0, days_ahead=7):
    """UTC of the next `weekday` (0 = Monday) at hour:minute Europe/Berlin, at least `days_ahead` days from now."""
    from datetime import datetime, timedelta, timezone
    from zoneinfo import ZoneInfo

    berlin = ZoneInfo("Europe/Berlin")
    day = datetime.now(berlin).date() + timedelta(days=days_ahead)
    while day.weekday() != weekday:
        day += timedelta(days=1)
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=berlin).astimezone(timezone.utc)


@pytest.fixture
def make_event(app):
    """An event through the services, published unless `status="draft"`.

    Workshop by default: Thursday 09:00–12:00 (Berlin) at least a week ahead,
    20 seats, on site. `kind="office_hours"`: Tuesdays 09:00–12:00, every
    second week, 3 times, 30-minute slots for one municipality each.
    """
    from datetime import timedelta

    from events import services

    def factory(district_key="08115", kind="workshop", title=None, capacity=20, location=None, online_url="",
                starts_at=None, hours=3, rrule="FREQ=WEEKLY;INTERVAL=2;BYDAY=TU;COUNT=3", slot_minutes=30,
                public=True, status="published", topics=(), municipalities=(), reminder_hours=24, description=""):
        office = kind == "office_hours"
        starts_at = starts_at or next_local(1 if office else 3, 9)
        data = services.EventData(
            kind=kind, title=title or ("Sprechstunde Digitalisierung" if office else "Workshop E-Rechnung"),
            description=description,
            location="Landratsamt Böblingen, Parkstraße 16, 71034 Böblingen" if location is None else location,
            online_url=online_url, starts_at=starts_at, ends_at=starts_at + timedelta(hours=hours),
            rrule=rrule if office else "", slot_minutes=slot_minutes if office else None,
            capacity=(1 if office and capacity == 20 else capacity), public=public, reminder_hours=reminder_hours,
            topics=list(topics), municipalities=list(municipalities),
        )
        event = services.create_event(district_key, data)
        if status == "published":
            services.publish(event)
        db.session.commit()
        return event

    return factory
