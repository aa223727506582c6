"""Benchmark of the reach reports: the rollup against the raw rows, at the scale of the whole state.

    python bench/reach.py [--scale 1.0] [--repeat 30] [--raw-repeat 5] [--database-url URL] [--keep]

A fresh database (SQLite in a temporary folder, or `--database-url`
PostgreSQL: that database is DROPPED and created afresh on the same server)
is migrated and filled with three years of activity ending today, with a
fixed random seed: the real 44 districts and 1,101 municipalities, 100,000
subscribers spread unevenly over the municipalities, two newsletters a month
per district (~2 million deliveries, ~3 million tracking events of which ~20 %
are machine opens), ~1,500 events with ~30,000 registrations and their
invitations, and 5,000 logged contacts with one to three municipalities each
(`--scale` multiplies every count but the directory). The rows are written
with plain INSERTs (Core `insert()` executemany, large batches, one
transaction per group of tables), with the reach triggers dropped for the
load and created again afterwards (`--load-triggers` keeps them), then
`rollup.rebuild()` turns them into touches and the rollup once. PostgreSQL's
tables are ANALYZEd after the load and after the rebuild.

Then, for the last 12 months and since the programme start, each figure is
timed `--repeat` times from the rollup and `--raw-repeat` times from the raw
rows (`source="raw"`, the baseline), every call in a fresh session:

- state report:    `services.state_report(filters)`, then commit;
- district report: `District` loaded, `services.district_report(district,
                   filters)`, then commit; the districts of `--districts` in
                   rotation;
- district table:  the municipality rows alone: `services.cells(filters,
                   [key])`, `services.listed(filters.last, [key])` and the rows
                   built from them (`services._rows`), without the refresh.

The reports call `rollup.refresh` first, a no-op when nothing is dirty; it is
part of what a page does and stays in the figure. One untimed warm-up call
per rollup figure comes first. Both state reports, from the rollup and from
the raw rows, must agree (the state's summary and every district's).
"""
import argparse
import bisect
import csv
import math
import os
import random
import shutil
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA_DIRS = [ROOT / "directory" / "data", ROOT.parent / "shared" / "data"]

SEED = 20220701
YEARS = 3
SUBSCRIBERS = 100_000
DELIVERIES = 2_000_000
EVENTS = 1_500
CONTACTS = 5_000
NEWSLETTERS_PER_MONTH = 2
BATCH = 20_000

DEFAULT_DISTRICTS = "08115,08111,08116,08425,08335"
TARGET_STATE_MS = 200
TARGET_DISTRICT_MS = 100
TARGET_SPEEDUP = 10
FIGURES = ("state report", "district report", "district table")


# --- small helpers ---------------------------------------------------------------------


def percentile(values, q):
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    low = math.floor(k)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (k - low)


def say(message):
    print(message, flush=True)


def years_before(day, years):
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return date(day.year - years, 3, 1)


def read_directory():
    """[(district key, name, kind)], [(ags, name, district key)] from the package data or ../shared/data."""
    for folder in DATA_DIRS:
        if (folder / "bw_districts.csv").exists() and (folder / "bw_municipalities.csv").exists():
            with open(folder / "bw_districts.csv", encoding="utf-8") as fh:
                districts = [(r["district_key"], r["name"], r["kind"]) for r in csv.DictReader(fh)]
            with open(folder / "bw_municipalities.csv", encoding="utf-8") as fh:
                municipalities = [(r["ags"], r["name"], r["district_key"]) for r in csv.DictReader(fh)]
            return folder, districts, municipalities
    raise SystemExit("bw_districts.csv/bw_municipalities.csv not found in " + ", ".join(map(str, DATA_DIRS)))


# --- the database --------------------------------------------------------------------------


def create_postgres_database(url):
    """Drop and create the database of `url` on its server (through the `postgres` database)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    target = make_url(url)
    name = target.database
    if not name or name in ("postgres", "template0", "template1"):
        raise SystemExit(f"refusing to drop and create the database {name!r}: name a throwaway database")
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()


def drop_postgres_database(url):
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    target = make_url(url)
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)'))
    admin.dispose()


def make_app(args, workdir):
    from app import create_app

    for name in ("DATABASE_URL", "REDIS_URL"):  # an outer one must not point the benchmark elsewhere
        os.environ.pop(name, None)
    url = args.database_url or "sqlite:///" + os.path.join(workdir, "reach.sqlite3")
    return create_app({"INSTANCE_PATH": workdir, "SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench-secret",
                       "BASE_URL": "https://egov.example"})


def migrate(app):
    import flask_migrate

    with app.app_context():
        flask_migrate.upgrade()


# --- the data set ---------------------------------------------------------------------------


class Loader:
    """Writes row dicts in batches with Core insert() executemany, counting rows.

    A full buffer flushes every buffer, in the order the tables were first
    added to (parents first), so no row is written before a row it refers to.
    """

    def __init__(self, connection):
        self.connection = connection
        self.buffers = {}
        self.counts = {}

    def add(self, table, row):
        buffer = self.buffers.setdefault(table, [])
        buffer.append(row)
        if len(buffer) >= BATCH:
            self.flush()

    def flush(self):
        from sqlalchemy import insert

        for table, buffer in self.buffers.items():
            if buffer:
                self.connection.execute(insert(table), buffer)
                self.counts[table.name] = self.counts.get(table.name, 0) + len(buffer)
                self.buffers[table] = []


class DataSet:
    """Generates the state's three years of activity; every row in memory only a batch at a time."""

    def __init__(self, app, scale, seed, districts, municipalities, keep_triggers=False):
        self.app = app
        self.keep_triggers = keep_triggers
        self.scale = scale
        self.rng = random.Random(seed)
        self.districts = districts
        self.municipalities = municipalities
        # The history ends at the start of today (UTC): the same data set all day long.
        self.today = datetime.now(UTC).date()
        self.now = datetime.combine(self.today, datetime.min.time(), UTC)
        self.history_start = years_before(self.today, YEARS) + timedelta(days=1)
        self.start_ts = datetime.combine(self.history_start, datetime.min.time(), UTC).timestamp()
        self.now_ts = self.now.timestamp()
        self.counts = {}
        self.seconds = {}
        self.dialect = None

    # -- plumbing

    def ts(self, value):
        return datetime.fromtimestamp(value, UTC)

    def group(self, name, generate):
        from core.extensions import db

        started = time.perf_counter()
        with db.engine.begin() as connection:
            if self.dialect == "sqlite":
                connection.exec_driver_sql("PRAGMA synchronous=OFF")
                connection.exec_driver_sql("PRAGMA cache_size=-262144")  # 256 MiB while loading
            loader = Loader(connection)
            generate(loader)
            loader.flush()
        self.seconds[name] = time.perf_counter() - started
        self.counts.update(loader.counts)
        say(f"  {name}: " + ", ".join(f"{n:,} {t}" for t, n in loader.counts.items())
            + f" in {self.seconds[name]:.1f} s")

    def load(self):
        from core.extensions import db
        from reach import triggers

        with self.app.app_context():
            self.dialect = db.engine.dialect.name
            started = time.perf_counter()
            if not self.keep_triggers:
                # rebuild() recomputes everything anyway; the marks would only slow the load down (2× on SQLite).
                with db.engine.begin() as connection:
                    for statement in triggers.drop_statements(self.dialect):
                        connection.exec_driver_sql(statement)
            self.group("directory", self.directory)
            self.group("subscribers", self.subscribers)
            self.group("newsletters", self.newsletters)
            self.group("deliveries and tracking", self.deliveries)
            self.group("events", self.events)
            self.group("contacts", self.contacts)
            if self.dialect == "postgresql":
                self.set_sequences()
                analyze("ANALYZE")  # autovacuum would, on a live database; without it the plans are guesses
            if not self.keep_triggers:
                with db.engine.begin() as connection:
                    for statement in triggers.create_statements(self.dialect):
                        connection.exec_driver_sql(statement)
            self.load_seconds = time.perf_counter() - started
            db.session.remove()
            db.engine.dispose()  # later connections get the app's pragmas, not the load's

    def set_sequences(self):
        from sqlalchemy import text

        from core.extensions import db

        with db.engine.begin() as connection:
            for table in ("subscribers", "newsletters", "deliveries", "tracking_events", "events", "event_slots",
                          "registrations", "event_mails", "contacts"):
                connection.execute(text(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), COALESCE(MAX(id), 1)) FROM {table}"))

    # -- directory

    def directory(self, loader):
        from directory.models import District, Municipality

        for key, name, kind in self.districts:
            loader.add(District.__table__, {"key": key, "name": name, "kind": kind})
        loader.flush()
        for ags, name, key in self.municipalities:
            loader.add(Municipality.__table__, {"ags": ags, "name": name, "district_key": key})

    # -- subscribers

    def subscribers(self, loader):
        from subscribers.models import Subscriber

        rng = self.rng
        # Skewed: a log-normal weight per municipality, towns and cities more, some with nobody at all.
        weights = []
        for _ags, name, _key in self.municipalities:
            weight = 0.0 if rng.random() < 0.06 else rng.lognormvariate(0, 1.1)
            if "Stadt" in name:
                weight *= 3
            weights.append(weight)
        self.municipality_weights = weights
        count = max(len(self.districts) * 10, round(SUBSCRIBERS * self.scale))
        places = rng.choices([m[0] for m in self.municipalities], weights=weights, k=count)
        span = self.now_ts - self.start_ts
        # By district: (confirmed timestamp, left timestamp, id, ags), sorted by confirmation.
        self.lists = {key: [] for key, _name, _kind in self.districts}
        table = Subscriber.__table__
        for n, ags in enumerate(places, start=1):
            # A third was on the list before the history starts; the rest joined over the three years.
            joined = self.start_ts - rng.uniform(0, 365 * 86400) if rng.random() < 0.33 else \
                self.start_ts + span * rng.random() ** 0.8
            draw = rng.random()
            status = ("active" if draw < 0.84 else "unsubscribed" if draw < 0.92 else "bounced" if draw < 0.96
                      else "complained" if draw < 0.97 else "pending")
            confirmed = None if status == "pending" else joined + rng.uniform(60, 86400)
            if confirmed is not None and confirmed > self.now_ts:
                confirmed = None
                status = "pending"
            changed = joined if status in ("active", "pending") else rng.uniform(confirmed, self.now_ts)
            email = f"p{n}@m{ags}.example"
            loader.add(table, {
                "id": n, "public_id": f"bench{n}", "district_key": ags[:5], "email": email, "email_key": email,
                "name": f"Person {n}", "municipality_ags": ags, "department": "", "status": status,
                "status_changed_at": self.ts(changed), "created_at": self.ts(joined), "updated_at": self.ts(changed),
                "consent_source": "import" if joined < self.start_ts else "form", "consent_text_version": "bench",
                "consent_requested_at": self.ts(joined),
                "consent_confirmed_at": None if confirmed is None else self.ts(confirmed),
            })
            if confirmed is not None:
                left = changed if status in ("unsubscribed", "bounced", "complained") else math.inf
                self.lists[ags[:5]].append((confirmed, left, n, ags))
        for members in self.lists.values():
            members.sort()
        self.joined_ts = {key: [m[0] for m in members] for key, members in self.lists.items()}

    def on_list(self, key, at):
        """(subscriber id, ags) of a district's list at the timestamp `at`."""
        members = self.lists[key]
        end = bisect.bisect_left(self.joined_ts[key], at)
        return [(m[2], m[3]) for m in members[:end] if m[1] > at]

    # -- newsletters, deliveries, tracking events

    def newsletters(self, loader):
        from newsletter.models import Newsletter

        rng = self.rng
        sends = []
        month = self.history_start.replace(day=1)
        while month <= self.today:
            for key, _name, _kind in self.districts:
                for half in range(NEWSLETTERS_PER_MONTH):
                    day = month + timedelta(days=rng.randrange(14 * half, 14 * half + 14))
                    at = datetime.combine(day, datetime.min.time(), UTC).timestamp() + rng.uniform(6, 10) * 3600
                    if self.start_ts <= at < self.now_ts - 600:
                        sends.append((at, key))
            month = (month + timedelta(days=32)).replace(day=1)
        sends.sort()
        self.sends = []
        table = Newsletter.__table__
        for n, (at, key) in enumerate(sends, start=1):
            self.sends.append((n, key, at))
            loader.add(table, {
                "id": n, "district_key": key, "subject": f"Neuigkeiten {n}", "preheader": "", "body_format": "markdown",
                "body": "", "tracking": True, "status": "sent", "started_at": self.ts(at),
                "finished_at": self.ts(at + 60), "created_at": self.ts(at - 86400), "updated_at": self.ts(at + 60),
            })

    def deliveries(self, loader):
        from newsletter.models import Delivery, TrackingEvent

        rng = self.rng
        eligible = sum(len(self.on_list(key, at)) for _n, key, at in self.sends)
        share = min(1.0, DELIVERIES * self.scale / max(eligible, 1))  # each newsletter to its topics' part of the list
        say(f"  {len(self.sends):,} newsletters, {eligible:,} subscribers on their lists, each sent to {share:.0%}")
        deliveries, tracking = Delivery.__table__, TrackingEvent.__table__
        delivery_id = event_id = 0
        now_ts = self.now_ts
        for newsletter_id, key, at in self.sends:
            audience = self.on_list(key, at)
            audience = rng.sample(audience, round(len(audience) * share))
            audience.sort()
            for position, (subscriber_id, ags) in enumerate(audience):
                delivery_id += 1
                sent = at + position * 0.001 + 1
                draw = rng.random()
                status = "sent" if draw < 0.98 else "bounced" if draw < 0.995 else "failed"
                loader.add(deliveries, {
                    "id": delivery_id, "newsletter_id": newsletter_id, "subscriber_id": subscriber_id,
                    "district_key": key, "municipality_ags": ags, "status": status, "attempts": 1,
                    "next_attempt_at": self.ts(at), "smtp_reply": "250 ok",
                    "sent_at": None if status == "failed" else self.ts(sent),
                })
                if status != "sent":
                    continue
                times = []  # (kind, machine, timestamp)
                if rng.random() < 0.28:  # scanners and prefetching proxies, seconds after delivery
                    times.append(("open", True, sent + rng.uniform(1, 8)))
                    if rng.random() < 0.1:
                        times.append(("click", True, sent + rng.uniform(1, 8)))
                if rng.random() < 0.5:  # a person: mostly in the first two days, decaying
                    opened = sent + rng.expovariate(1 / (9 * 3600))
                    times.append(("open", False, opened))
                    while rng.random() < 0.5:
                        times.append(("open", False, opened + rng.expovariate(1 / 86400)))
                    if rng.random() < 0.35:
                        clicked = opened + rng.expovariate(1 / 600)
                        times.append(("click", False, clicked))
                        if rng.random() < 0.4:
                            times.append(("click", False, clicked + rng.expovariate(1 / 300)))
                for kind, machine, moment in times:
                    if moment >= now_ts:
                        continue
                    event_id += 1
                    loader.add(tracking, {
                        "id": event_id, "delivery_id": delivery_id, "district_key": key, "kind": kind,
                        "machine": machine, "created_at": self.ts(moment),
                    })

    # -- events, slots, registrations, invitations

    def events(self, loader):
        from events.models import Event, EventMail, Registration, Slot

        rng = self.rng
        count = max(len(self.districts), round(EVENTS * self.scale))
        last = self.now_ts + 42 * 86400  # a few are still ahead
        keys = [key for key, _name, _kind in self.districts]
        sizes = [len(self.lists[key]) + 20 for key in keys]  # larger lists, somewhat more events
        district_places = {}
        for (ags, _name, key), weight in zip(self.municipalities, self.municipality_weights, strict=True):
            district_places.setdefault(key, []).append((ags, weight + 0.2))
        slot_id = registration_id = mail_id = 0
        tables = Event.__table__, Slot.__table__, Registration.__table__, EventMail.__table__
        starts = sorted(self.start_ts + 30 * 86400 + rng.random() * (last - self.start_ts - 30 * 86400)
                        for _ in range(count))
        for event_id, start in enumerate(starts, start=1):
            key = rng.choices(keys, weights=sizes)[0]
            day = datetime.fromtimestamp(start, UTC).date()
            if day.weekday() >= 5:
                day += timedelta(days=7 - day.weekday())
            starts_at = datetime.combine(day, datetime.min.time(), UTC).timestamp() + rng.choice((7, 8, 12)) * 3600
            office_hours = rng.random() < 0.3
            cancelled = rng.random() < 0.07
            invited = starts_at - 21 * 86400
            slot_count = rng.randint(6, 10) if office_hours else 1
            minutes = 30 if office_hours else 120
            slots = []
            loader.add(tables[0], {
                "id": event_id, "uid": f"bench-event-{event_id}", "district_key": key,
                "kind": "office_hours" if office_hours else "workshop",
                "title": f"{'Sprechstunde' if office_hours else 'Workshop'} {event_id}",
                "starts_at": self.ts(starts_at), "ends_at": self.ts(starts_at + slot_count * minutes * 60),
                "slot_minutes": minutes if office_hours else None, "capacity": 1 if office_hours else 40,
                "status": "cancelled" if cancelled else "published", "sequence": 1 if cancelled else 0,
                "invited_at": self.ts(invited) if invited < self.now_ts else None,
                "cancelled_at": self.ts(starts_at - 5 * 86400) if cancelled else None,
                "created_at": self.ts(invited - 86400), "updated_at": self.ts(invited),
            })
            for s in range(slot_count):
                slot_id += 1
                slot_start = starts_at + s * minutes * 60
                slots.append((slot_id, slot_start))
                loader.add(tables[1], {
                    "id": slot_id, "event_id": event_id, "district_key": key, "starts_at": self.ts(slot_start),
                    "ends_at": self.ts(slot_start + minutes * 60), "capacity": 1 if office_hours else 40,
                    "cancelled": office_hours and rng.random() < 0.04,
                })
            audience = self.on_list(key, min(invited, self.now_ts))
            if not office_hours and invited < self.now_ts:
                for subscriber_id, ags in rng.sample(audience, min(len(audience), 40)):
                    mail_id += 1
                    loader.add(tables[3], {
                        "id": mail_id, "event_id": event_id, "subscriber_id": subscriber_id, "district_key": key,
                        "municipality_ags": ags, "kind": "invitation", "method": "REQUEST", "sequence": 0,
                        "status": "sent", "attempts": 1, "next_attempt_at": self.ts(invited),
                        "sent_at": self.ts(invited + rng.uniform(1, 600)), "created_at": self.ts(invited),
                    })
            # Registrations: workshops 5-45 seats, office hours up to two bookings a slot.
            wanted = [(slots[0], rng.randint(5, 45))] if not office_hours else \
                [(slot, rng.choice((0, 1, 1, 1, 2))) for slot in slots]
            places, place_weights = zip(*district_places[key], strict=True)
            for (sid, slot_start), seats in wanted:
                people = rng.sample(audience, min(len(audience), seats))
                guests = sum(rng.random() < 0.15 for _ in people) + max(0, seats - len(people))
                people = people[:len(people) - min(guests, len(people))]
                people += [(None, ags) for ags in rng.choices(places, weights=place_weights, k=guests)]
                for subscriber_id, ags in people:
                    registration_id += 1
                    draw = rng.random()
                    status = ("confirmed" if draw < 0.82 else "waiting" if draw < 0.86 else "declined"
                              if draw < 0.96 else "removed")
                    attendance = None
                    if status == "confirmed" and slot_start + minutes * 60 < self.now_ts and not cancelled:
                        mark = rng.random()
                        attendance = "attended" if mark < 0.73 else "no_show" if mark < 0.95 else None
                    email = f"p{subscriber_id}@m{ags}.example" if subscriber_id else f"g{registration_id}@m{ags}.example"
                    created = min(self.now_ts, invited + rng.uniform(0, 20 * 86400))
                    loader.add(tables[2], {
                        "id": registration_id, "public_id": f"bench{registration_id}",
                        "uid": f"bench-booking-{registration_id}", "event_id": event_id, "slot_id": sid,
                        "district_key": key, "subscriber_id": subscriber_id, "municipality_ags": ags,
                        "email": email, "email_key": email, "name": f"Person {registration_id}", "status": status,
                        "partstat": {"confirmed": "ACCEPTED", "declined": "DECLINED"}.get(status, "NEEDS-ACTION"),
                        "source": "invitation" if subscriber_id else "form", "attendance": attendance,
                        "answered_at": self.ts(created), "created_at": self.ts(created),
                        "updated_at": self.ts(created),
                    })

    # -- contacts

    def contacts(self, loader):
        from reach.models import Contact, contact_municipalities

        rng = self.rng
        count = max(len(self.districts), round(CONTACTS * self.scale))
        by_district = {}
        for ags, _name, key in self.municipalities:
            by_district.setdefault(key, []).append(ags)
        keys = sorted(by_district)
        days = (self.today - self.history_start).days
        kinds = ("vor_ort", "telefon", "video", "email", "veranstaltung_extern", "sonstiges")
        for contact_id in range(1, count + 1):
            key = rng.choice(keys)
            day = self.history_start + timedelta(days=rng.randrange(days + 1))
            at = self.ts(datetime.combine(day, datetime.min.time(), UTC).timestamp() + 15 * 3600)
            loader.add(Contact.__table__, {
                "id": contact_id, "district_key": key, "date": day, "kind": rng.choice(kinds), "note": "",
                "created_at": at, "updated_at": at,
            })
            size = min(len(by_district[key]), rng.choices((1, 2, 3), weights=(60, 25, 15))[0])
            for ags in rng.sample(by_district[key], size):
                loader.add(contact_municipalities, {"contact_id": contact_id, "municipality_ags": ags})


# --- rebuild ------------------------------------------------------------------------------------


def analyze(statement):
    """Run ANALYZE (PostgreSQL) and say how long it took."""
    from core.extensions import db

    started = time.perf_counter()
    with db.engine.begin() as connection:
        connection.exec_driver_sql(statement)
    say(f"  {statement}: {time.perf_counter() - started:.1f} s")


def rebuild(app):
    from sqlalchemy import func, select

    from core.extensions import db
    from reach import rollup
    from reach.models import Rollup

    with app.app_context():
        started = time.perf_counter()
        touches = rollup.rebuild()
        computed = time.perf_counter()
        db.session.commit()
        done = time.perf_counter()
        tiers = dict(db.session.execute(select(Rollup.tier, func.count()).group_by(Rollup.tier)).all())
        db.session.remove()
        if db.engine.dialect.name == "postgresql":
            analyze("ANALYZE reach_touches, reach_rollup")
    return {"seconds": done - started, "commit": done - computed, "touches": touches, "tiers": tiers}


# --- measuring ------------------------------------------------------------------------------------


def periods(today, programme_start):
    from reach.period import Filters

    return [
        ("last 12 months", Filters(years_before(today, 1) + timedelta(days=1), today, "12monate")),
        ("since programme start", Filters(programme_start, today, "programm")),
    ]


def figure_call(figure, filters, source, district_keys):
    """A function of the call number that computes one figure once (in the current session)."""
    from core.extensions import db
    from directory.models import District
    from reach import services

    if figure == "state report":
        # The summaries are kept as plain values: the commit expires the districts.
        return lambda n: summaries(services.state_report(filters, source=source))
    if figure == "district report":
        return lambda n: services.district_report(db.session.get(District, district_keys[n % len(district_keys)]),
                                                  filters, source=source)

    def table(n):
        keys = [district_keys[n % len(district_keys)]]
        cells = services.cells(filters, keys, source)
        listed = services.listed(filters.last, keys)
        return services._rows(keys[0], cells, listed)

    return table


def summaries(state_report):
    """{None: the state's summary, district key: its summary} of a state report."""
    result = {line.district.key: line.summary for line in state_report.districts}
    result[None] = state_report.summary
    return result


def timed(call, repeat, warmup):
    """Wall seconds and this process's CPU seconds of `repeat` calls, each in a fresh session and committed;
    and the last result."""
    from core.extensions import db

    seconds, cpu = [], []
    result = None
    for n in range(-warmup, repeat):
        db.session.remove()  # a fresh session: nothing cached in the identity map
        started, cpu_started = time.perf_counter(), time.process_time()
        result = call(max(n, 0))
        db.session.commit()
        elapsed, cpu_elapsed = time.perf_counter() - started, time.process_time() - cpu_started
        if n >= 0:
            seconds.append(elapsed)
            cpu.append(cpu_elapsed)
    db.session.remove()
    return seconds, cpu, result


def measure(app, args, district_keys):
    from reach.definition import berlin_today
    from reach.period import programme_start

    results = {}  # (figure, period) -> {"rollup": [s], "raw": [s]}
    reports = {}  # (period, source) -> the last state report
    with app.app_context():
        for period, filters in periods(berlin_today(), programme_start()):
            for figure in FIGURES:
                figures = results.setdefault((figure, period), {})
                for source, repeat, warmup in (("rollup", args.repeat, 1), ("raw", args.raw_repeat, 0)):
                    seconds, cpu, result = timed(figure_call(figure, filters, source, district_keys), repeat,
                                                 warmup)
                    figures[source] = seconds
                    figures[source + " cpu"] = cpu
                    if figure == "state report":
                        reports[(period, source)] = result
                    say(f"  {figure}, {period}, {source}: p50 {percentile(seconds, 0.5) * 1000:.1f} ms, "
                        f"p95 {percentile(seconds, 0.95) * 1000:.1f} ms ({len(seconds)} calls; CPU of this process "
                        f"p50 {percentile(cpu, 0.5) * 1000:.1f} ms, p95 {percentile(cpu, 0.95) * 1000:.1f} ms)")
    return results, reports


def compare(reports):
    """[(period, equal, detail)]: the state summary and each district's line, rollup against raw."""
    outcome = []
    for period in dict.fromkeys(p for p, _source in reports):
        fast, raw = reports[(period, "rollup")], reports[(period, "raw")]
        differences = [f"{key or 'state'}: rollup {fast.get(key)} != raw {raw.get(key)}"
                       for key in sorted(set(fast) | set(raw), key=lambda k: k or "")
                       if fast.get(key) != raw.get(key)]
        s = fast[None]
        detail = (f"{s.total} municipalities, reached {s.reached}, active {s.active}, listed {s.listed}, "
                  f"ladder {s.ladder}, last {s.last}")
        outcome.append((period, not differences, detail if not differences else "; ".join(differences[:5])))
    return outcome


# --- where the time goes -------------------------------------------------------------------------


def profile(app, district_key, explain):
    """The SQL statements of one rollup call of each figure (since programme start), with their times.

    SQLite runs most of a query while its rows are fetched, after the cursor's
    execute; so each SELECT is run again on its own with every row fetched, and
    that time is its SQL time. The rest of the call is Python.
    """
    from sqlalchemy import event

    from core.extensions import db
    from reach.definition import berlin_today
    from reach.period import programme_start

    with app.app_context():
        filters = periods(berlin_today(), programme_start())[1][1]
        engine = db.engine
        for figure in FIGURES:
            statements = []

            def capture(conn, cursor, statement, parameters, context, executemany, statements=statements):
                statements.append((statement, parameters))

            event.listen(engine, "before_cursor_execute", capture)
            try:
                db.session.remove()
                started = time.perf_counter()
                figure_call(figure, filters, "rollup", [district_key])(0)
                db.session.commit()
                total = time.perf_counter() - started
            finally:
                event.remove(engine, "before_cursor_execute", capture)
                db.session.remove()
            timings = []
            with engine.connect() as connection:
                for statement, parameters in statements:
                    if not statement.lstrip().upper().startswith("SELECT"):
                        continue
                    started = time.perf_counter()
                    rows = connection.exec_driver_sql(statement, parameters).fetchall()
                    timings.append((time.perf_counter() - started, len(rows), statement, parameters))
                connection.rollback()
            in_sql = sum(t[0] for t in timings)
            say(f"  {figure} ({district_key if figure != 'state report' else 'state'}): {total * 1000:.1f} ms; "
                f"{len(statements)} statements, the {len(timings)} SELECTs {in_sql * 1000:.1f} ms with their rows "
                f"fetched; Python ≈ {max(total - in_sql, 0) * 1000:.1f} ms")
            for seconds, count, statement, parameters in sorted(timings, key=lambda t: -t[0])[:3]:
                say(f"    {seconds * 1000:7.1f} ms {count:>6} rows  {' '.join(statement.split())[:130]}")
                if explain and seconds >= 0.005:
                    for line in explain_plan(engine, statement, parameters):
                        say(f"                          {line}")


def explain_plan(engine, statement, parameters):
    prefix = "EXPLAIN QUERY PLAN " if engine.dialect.name == "sqlite" else "EXPLAIN (ANALYZE, BUFFERS) "
    with engine.connect() as connection:
        rows = connection.exec_driver_sql(prefix + statement, parameters).all()
        connection.rollback()  # EXPLAIN ANALYZE of a DELETE … RETURNING would run it
    if engine.dialect.name == "sqlite":
        return [f"{row[1]:>3} {row[3]}" for row in rows]
    return [row[0] for row in rows]


# --- the report -----------------------------------------------------------------------------------


def report(results, agreement, dialect):
    lines = ["", "=== summary ==="]
    head = (f"{'figure':<16} {'period':<22} {'rollup p50':>11} {'rollup p95':>11} {'raw p50':>10} {'raw p95':>10} "
            f"{'speed-up':>9} {'rollup CPU p50/p95':>19}")
    lines += [head, "-" * len(head)]
    for (figure, period), by_source in results.items():
        fast, raw, cpu = by_source["rollup"], by_source["raw"], by_source["rollup cpu"]
        f95, r95 = percentile(fast, 0.95), percentile(raw, 0.95)
        lines.append(f"{figure:<16} {period:<22} {percentile(fast, 0.5) * 1000:8.1f} ms {f95 * 1000:8.1f} ms "
                     f"{percentile(raw, 0.5) * 1000:7.0f} ms {r95 * 1000:7.0f} ms {r95 / f95:8.0f}× "
                     f"{percentile(cpu, 0.5) * 1000:8.1f}/{percentile(cpu, 0.95) * 1000:.1f} ms")
    lines.append(f"(wall ms per call, each in a fresh session; CPU: of this process only, so on SQLite query and "
                 f"Python, on PostgreSQL Python alone; targets specified for SQLite, this run: {dialect}; "
                 f"load average now {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs)")
    checks = []
    for (figure, period), by_source in results.items():
        limit = {"state report": TARGET_STATE_MS, "district report": TARGET_DISTRICT_MS}.get(figure)
        if limit is None:
            continue
        f95, r95 = percentile(by_source["rollup"], 0.95), percentile(by_source["raw"], 0.95)
        checks.append((f"{figure} p95 ≤ {limit} ms, {period}", f95 * 1000 <= limit, f"{f95 * 1000:.1f} ms"))
        checks.append((f"{figure} ≥ {TARGET_SPEEDUP}× faster than raw (p95), {period}", r95 / f95 >= TARGET_SPEEDUP,
                       f"{r95 / f95:.0f}× ({r95 * 1000:.0f} ms / {f95 * 1000:.1f} ms)"))
    for period, equal, detail in agreement:
        checks.append((f"rollup equals raw, {period}", equal, detail))
    for label, ok, figure in checks:
        lines.append(f"[{'PASS' if ok else 'FAIL'}] {label}: {figure}")
    say("\n".join(lines))
    return all(ok for _label, ok, _figure in checks)


# --- main -----------------------------------------------------------------------------------------


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0,
                        help="fraction of the state-scale data set (1.0; 0.05 for a quick try)")
    parser.add_argument("--repeat", type=int, default=30, help="timed calls per rollup figure (30)")
    parser.add_argument("--raw-repeat", type=int, default=5, help="timed calls per raw-row figure (5)")
    parser.add_argument("--districts", default=DEFAULT_DISTRICTS,
                        help=f"district reports and tables in rotation ({DEFAULT_DISTRICTS})")
    parser.add_argument("--seed", type=int, default=SEED, help=f"random seed of the data set ({SEED})")
    parser.add_argument("--load-triggers", action="store_true",
                        help="keep the reach triggers while loading (slower; by default they are dropped for the "
                             "load and created again before the rebuild)")
    parser.add_argument("--explain", action="store_true",
                        help="also print the query plans of the slower statements of one rollup call")
    parser.add_argument("--database-url", default=None,
                        help="PostgreSQL URL of a throwaway database: it is DROPPED and created afresh "
                             "(through the server's `postgres` database), and dropped at the end unless --keep")
    parser.add_argument("--keep", action="store_true", help="keep the database (and the temporary folder)")
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.raw_repeat < 1:
        parser.error("--repeat and --raw-repeat must be at least 1")
    if args.database_url and not args.database_url.startswith("postgresql"):
        parser.error("--database-url: a PostgreSQL URL (SQLite is the default, in a temporary folder)")
    if args.scale <= 0:
        parser.error("--scale must be above 0")
    return args


def main(argv=None):
    args = parse_args(argv)
    # The repository first: `import reach` must find the package, not this file's folder.
    sys.path.insert(0, str(ROOT))
    workdir = tempfile.mkdtemp(prefix="egovreach-", dir="/tmp")
    ok = False
    try:
        if args.database_url:
            create_postgres_database(args.database_url)
        app = make_app(args, workdir)
        migrate(app)
        dialect = app.config["SQLALCHEMY_DATABASE_URI"].split(":", 1)[0]
        folder, districts, municipalities = read_directory()
        keys = [key.strip() for key in args.districts.split(",") if key.strip()]
        known = {key for key, _name, _kind in districts}
        if not keys or set(keys) - known:
            raise SystemExit(f"unknown districts in --districts: {sorted(set(keys) - known) or keys}")
        say(f"database {dialect} in {workdir if not args.database_url else args.database_url}; "
            f"{len(districts)} districts and {len(municipalities)} municipalities from {folder}; "
            f"scale {args.scale}, seed {args.seed}; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")

        say("loading:")
        data = DataSet(app, args.scale, args.seed, districts, municipalities, args.load_triggers)
        data.load()
        rows = sum(data.counts.values())
        say(f"loaded {rows:,} rows in {data.load_seconds:.1f} s ({rows / data.load_seconds:,.0f} rows/s), "
            f"history {data.history_start} … {data.today}")
        if dialect == "sqlite":
            size = os.path.getsize(os.path.join(workdir, "reach.sqlite3"))
            say(f"database file {size / 2**20:,.0f} MiB")

        say("rebuild:")
        built = rebuild(app)
        say(f"rollup.rebuild() + commit: {built['seconds']:.1f} s (commit {built['commit']:.1f} s); "
            f"{built['touches']:,} touches, rollup rows: "
            + ", ".join(f"{built['tiers'].get(tier, 0):,} {name}" for tier, name in ((1, "day"), (2, "month"),
                                                                                  (3, "year")))
            + f" ({sum(built['tiers'].values()):,} in all)")

        say("where the time of one rollup call goes (since programme start):")
        profile(app, keys[0], args.explain)

        say(f"measuring (rollup ×{args.repeat}, raw ×{args.raw_repeat}; districts {', '.join(keys)} in rotation):")
        results, reports = measure(app, args, keys)
        ok = report(results, compare(reports), dialect)
    finally:
        if "app" in locals():
            from core.extensions import db

            with app.app_context():
                db.engine.dispose()  # before the database is dropped
        if args.database_url and not args.keep:
            drop_postgres_database(args.database_url)
        if args.keep:
            say(f"kept {workdir}" + (f" and {args.database_url}" if args.database_url else ""))
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
