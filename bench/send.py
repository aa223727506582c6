"""Benchmark of the newsletter pipeline against a plain Flask-Mail loop (issue 4, item 12).

    python bench/send.py [--recipients 20000] [--workers 2] [--baseline 2000] [--raw 5000]

Everything runs in a temporary instance folder: SQLite and the embedded Redis
(or `--database-url` PostgreSQL, whose tables are dropped and created afresh),
Postfix's `smtp-sink` on a free local port as the mail server, and real
worker processes (`worker.py`, forking RQ workers).

The pipeline figure is the wall time from the start of `services.send_now`
(the delivery rows are written) through `jobs.enqueue_senders` until every
row of the newsletter is `sent` in the database, i.e. database rows → RQ jobs
→ workers → SMTP → rows marked sent. The workers are started before and wait
idle, as they do in production; `--cold` instead starts `worker.py --burst`
after the enqueue, so the workers' start-up counts too.

While a send runs, the RSS of the worker processes and of the work horses
they fork is sampled; with `--memory-check` (the default) a smaller list
(`--small`, another district) is sent first, so the two peaks can be compared.

The baseline sends `--baseline` mails of the same newsletter, personalised the
same way, with one `flask_mail.Message` and `mail.send(msg)` per recipient
(Flask-Mail opens an SMTP connection per `mail.send`) into the same smtp-sink.

The raw one-client limits send `--raw` prebuilt mails of the same newsletter
over one connection in a loop (only the loop is timed): what a single client
pushes into this smtp-sink on this machine in the same run, once with
smtplib's `sendmail` (the pipeline should reach at least TARGET_RAW_RATIO of
it) and once with the pipeline's own protocol (one round trip per mail; the
ratio to it is printed as the stricter yardstick).
"""
import argparse
import csv
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
SMTP_SINK = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"

BIG_DISTRICT = ("08115", "Böblingen", "Landkreis")
SMALL_DISTRICT = ("08116", "Esslingen", "Landkreis")
TARGET_RATE = 1500
TARGET_RATIO = 5
TARGET_RAW_RATIO = 0.67  # of the raw one-client smtplib limit, measured in the same run

NEWSLETTER_BODY = """\
Liebe/r {{ name }},

hier sind die Neuigkeiten der E-Government-Koordination für **{{ municipality }}** und den ganzen Kreis.

## Onlinezugangsgesetz: was im Herbst ansteht

Die nächste Welle der *Einer-für-Alle*-Leistungen geht in Betrieb. Für {{ municipality }} betrifft das vor allem:

- die **Wohnsitzanmeldung** über [service-bw](https://www.service-bw.de/zufi/leistungen),
- den digitalen **Bauantrag** ([Informationen des Landes](https://www.baden-wuerttemberg.de/de/service/onlinezugangsgesetz/)),
- die **Hundesteuer** an- und abmelden,
- den Antrag auf **Wohngeld** (seit Juli landesweit freigeschaltet).

Bitte prüfen Sie, ob die Zuständigkeitsfinder-Einträge Ihrer Verwaltung aktuell sind. Eine Checkliste
finden Sie im [Handbuch für Kommunen](https://www.service-bw.de/zufi/lebenslagen/5000312).

## E-Rechnung ab 1. Januar

Ab dem 1. Januar müssen alle Kommunen **E-Rechnungen im Format XRechnung** empfangen und verarbeiten können.
Die Landesplattform nimmt Rechnungen über das [Portal der E-Rechnung](https://xrechnung-bdr.de/) entgegen.

1. Prüfen Sie die Leitweg-ID Ihrer Kommune.
2. Richten Sie ein Postfach für eingehende E-Rechnungen ein.
3. Stimmen Sie die Freigabewege mit der Kämmerei ab.

> Tipp: Das Rechenzentrum bietet eine Schulung an, Termine im [Veranstaltungskalender](https://www.komm.one/veranstaltungen).

## Sprechstunden im Landratsamt

Unsere offenen Sprechstunden finden jeden zweiten Dienstag von 9 bis 12 Uhr statt, für Fragen rund um
DMS, E-Akte, Online-Dienste und Förderprogramme. Eine Anmeldung ist nicht nötig.

- **14. Oktober**: Digitale Bauantragsverfahren
- **28. Oktober**: E-Rechnung in der Kämmerei
- **11. November**: Barrierefreie Webseiten

## Förderprogramm „Digitale Zukunftskommune“

Das Land fördert Vorhaben kleiner und mittlerer Gemeinden mit bis zu 80 % der Kosten. Anträge sind bis
zum 30. November möglich; die [Förderrichtlinie](https://www.digital-bw.de/) nennt die Bedingungen.

Mit freundlichen Grüßen
Ihre E-Government-Koordination

---

Sie erhalten diesen Newsletter, weil Sie ihn für {{ municipality }} abonniert haben.
[Abmelden]({{ unsubscribe_url }}) · [Einstellungen]({{ preferences_url }}) · [Im Browser ansehen]({{ web_url }})
"""


# --- small helpers -------------------------------------------------------------------


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"smtp-sink did not open port {port}")


def cpu_busy_seconds():
    """CPU seconds the whole machine spent not idle so far (Linux), or None."""
    try:
        with open("/proc/stat") as fh:
            fields = [int(v) for v in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def rate(count, seconds):
    return count / seconds if seconds > 0 else float("inf")


def mib(n):
    return n / (1024 * 1024)


class SmtpSink:
    """Postfix's smtp-sink: accepts and discards; `-c` counters tell how many mails it got."""

    def __init__(self, workdir):
        self.port = free_port()
        self.log_path = os.path.join(workdir, "smtp-sink.log")
        command = [SMTP_SINK, "-c"]
        if os.geteuid() == 0:
            command += ["-u", "nobody"]  # smtp-sink refuses to run as root without it
        command += [f"127.0.0.1:{self.port}", "2000"]
        with open(self.log_path, "wb") as log:  # the child keeps its own descriptor
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        wait_for_port(self.port)

    def messages(self):
        """Messages received so far (the last counter line smtp-sink wrote)."""
        with open(self.log_path, "rb") as fh:
            data = fh.read().replace(b"\r", b"\n").split(b"\n")
        for line in reversed(data):
            if b"mesg=" in line:
                return int(line.rsplit(b"mesg=", 1)[1].split()[0])
        return 0

    def stop(self):
        self.process.terminate()
        self.process.wait(5)


class Sampler(threading.Thread):
    """Peak RSS and CPU time of the worker processes, their work horses and the mail server.

    Children that a worker already has when sampling starts are its
    scheduler (RQ's `--with-scheduler` process); children that appear later
    are the work horses forked per job. CPU counts from the start of
    sampling (a work horse's from its fork).
    """

    def __init__(self, worker_pids, sink_pid, interval=0.1):
        super().__init__(daemon=True)
        import psutil

        self.psutil = psutil
        self.interval = interval
        self.workers = [psutil.Process(pid) for pid in worker_pids]
        self.roles = {}  # pid -> role
        self.processes = {}  # pid -> psutil.Process
        self.cpu_start = {}  # pid -> CPU seconds when first seen (0 for work horses)
        self.cpu_last = {}
        self.peak = {"worker": 0, "scheduler": 0, "horse": 0}
        self.peak_total = 0  # all worker processes at one moment
        for worker in self.workers:
            self._track(worker, "worker")
            for child in self.children(worker):
                self._track(child, "scheduler")
        self._track(psutil.Process(sink_pid), "smtp-sink")
        self.stop_event = threading.Event()

    def _track(self, process, role, cpu_from_zero=False):
        try:
            times = process.cpu_times()
        except self.psutil.Error:
            return
        self.roles[process.pid] = role
        self.processes[process.pid] = process
        self.cpu_start[process.pid] = 0.0 if cpu_from_zero else times.user + times.system
        self.cpu_last[process.pid] = times.user + times.system

    def children(self, process):
        # Linux lists a process's children itself; psutil's children() reads
        # every process's stat file (4 ms a call here, a tenth of a CPU when sampling).
        try:
            with open(f"/proc/{process.pid}/task/{process.pid}/children") as fh:
                pids = [int(pid) for pid in fh.read().split()]
        except OSError:
            try:
                return process.children()
            except self.psutil.Error:
                return []
        children = []
        for pid in pids:
            try:
                children.append(self.processes.get(pid) or self.psutil.Process(pid))
            except self.psutil.Error:
                pass
        return children

    def sample(self):
        total = 0
        for worker in self.workers:
            for child in self.children(worker):
                if child.pid not in self.roles:
                    self._track(child, "horse", cpu_from_zero=True)
        for pid, process in self.processes.items():
            try:
                with process.oneshot():
                    rss = process.memory_info().rss
                    times = process.cpu_times()
            except self.psutil.Error:
                continue  # exited; its last sample stands
            self.cpu_last[pid] = times.user + times.system
            role = self.roles[pid]
            if role in self.peak:
                self.peak[role] = max(self.peak[role], rss)
                total += rss
        self.peak_total = max(self.peak_total, total)

    def run(self):
        while not self.stop_event.is_set():
            self.sample()
            time.sleep(self.interval)

    def stop(self):
        self.stop_event.set()
        self.join()
        self.sample()

    def cpu(self, role):
        return sum(self.cpu_last[pid] - self.cpu_start[pid] for pid, r in self.roles.items() if r == role)


# --- the instance -------------------------------------------------------------------------


def read_directory():
    """{district key: (name, kind, [(ags, name)])} from the shared data, or a synthetic pair."""
    districts = {}
    if (SHARED_DATA / "bw_districts.csv").exists():
        with open(SHARED_DATA / "bw_districts.csv", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                districts[row["district_key"]] = (row["name"], row["kind"], [])
        with open(SHARED_DATA / "bw_municipalities.csv", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                if row["district_key"] in districts:
                    districts[row["district_key"]][2].append((row["ags"], row["name"]))
    wanted = {}
    for key, name, kind in (BIG_DISTRICT, SMALL_DISTRICT):
        if key in districts and districts[key][2]:
            wanted[key] = districts[key]
        else:
            wanted[key] = (name, kind, [(f"{key}{n:03d}", f"Gemeinde {n}") for n in range(1, 21)])
    return wanted


def prepare_database(app, drop):
    import flask_migrate
    from sqlalchemy import text

    from core.extensions import db

    with app.app_context():
        if drop:
            db.drop_all()
            db.session.execute(text("DROP TABLE IF EXISTS alembic_version"))
            db.session.commit()
        flask_migrate.upgrade()


def seed(app, big, small):
    """Two districts with their municipalities, a coordinator, and `big`/`small` active subscribers."""
    from sqlalchemy import insert

    from accounts.services import create_user
    from core.extensions import db
    from directory.models import District, Municipality
    from subscribers.models import Subscriber, new_public_id, utcnow

    directory = read_directory()
    with app.app_context():
        for key, (name, kind, municipalities) in directory.items():
            db.session.add(District(key=key, name=name, kind=kind))
            db.session.flush()
            db.session.execute(insert(Municipality), [
                {"ags": ags, "name": mname, "district_key": key} for ags, mname in municipalities
            ])
        create_user("koordination@lrabb.example", "coordinator", [BIG_DISTRICT[0]], name="Kim Koordination",
                    check_email=False)
        create_user("koordination@lres.example", "coordinator", [SMALL_DISTRICT[0]], name="Sam Koordination",
                    check_email=False)
        now = utcnow()
        offset = 0
        for (key, _name, _kind), count in ((BIG_DISTRICT, big), (SMALL_DISTRICT, small)):
            municipalities = directory[key][2]
            rows = []
            for n in range(offset, offset + count):
                m = n % len(municipalities)
                email = f"person{n}@gemeinde{m}.example"
                rows.append({
                    "public_id": new_public_id(), "district_key": key, "email": email, "email_key": email,
                    "name": f"Person {n}", "municipality_ags": municipalities[m][0], "department": "",
                    "status": "active", "status_changed_at": now, "created_at": now, "updated_at": now,
                    "consent_source": "import", "consent_text_version": "bench", "consent_requested_at": now,
                    "consent_confirmed_at": now,
                })
            for start in range(0, len(rows), 5000):
                db.session.execute(insert(Subscriber), rows[start:start + 5000])
            offset += count
        db.session.commit()


def create_newsletter(app, district_key, tracking):
    from core.extensions import db
    from directory.models import District
    from newsletter import services

    with app.app_context():
        district = db.session.get(District, district_key)
        newsletter = services.create_newsletter(
            district, "Neuigkeiten für {{ municipality }}: OZG, E-Rechnung, Sprechstunden", NEWSLETTER_BODY,
            preheader="Was im Herbst für die Verwaltungen im Kreis ansteht", tracking=tracking,
        )
        db.session.commit()
        return newsletter.id


def tracking_ready():
    try:
        from newsletter.tracking import rewrite_links, tracking_context  # noqa: F401
    except ImportError:
        return False
    return True


# --- workers ---------------------------------------------------------------------------


def start_workers(count, env, workdir, burst, tag):
    processes = []
    for n in range(count):
        command = [sys.executable, str(ROOT / "worker.py"), "--name", f"bench-{tag}-{n}-{os.getpid()}"]
        if burst:
            command.append("--burst")
        with open(os.path.join(workdir, f"worker-{tag}-{n}.log"), "ab") as log:
            processes.append(subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                              stdin=subprocess.DEVNULL))
    return processes


def wait_workers_idle(app, processes, timeout=30.0):
    """Until every worker has registered with Redis and sits idle (its start-up reconcile done)."""
    from rq import Worker

    from core.queue import get_redis

    pids = {p.pid for p in processes}
    deadline = time.monotonic() + timeout
    with app.app_context():
        connection = get_redis()
        while time.monotonic() < deadline:
            ours = [w for w in Worker.all(connection=connection) if w.pid in pids]
            if len(ours) == len(pids) and all(w.get_state() == "idle" for w in ours):
                return
            for process in processes:
                if process.poll() is not None:
                    raise RuntimeError(f"worker {process.pid} exited with {process.returncode}; see the worker logs")
            time.sleep(0.05)
    raise RuntimeError("workers did not become ready")


def stop_workers(processes, timeout=30.0):
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)  # RQ's warm shutdown
    for process in processes:
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# --- the pipeline run ---------------------------------------------------------------------


def unfinished(app, newsletter_id):
    """{status: count} of the newsletter's rows not yet `sent`; cheap enough to poll."""
    from sqlalchemy import func, select

    from core.extensions import db
    from newsletter.models import Delivery

    with app.app_context():
        rows = dict(db.session.execute(
            select(Delivery.status, func.count()).where(Delivery.newsletter_id == newsletter_id,
                                                        Delivery.status != "sent").group_by(Delivery.status)
        ).all())
        db.session.remove()
    return rows


def last_sent_at(app, newsletter_id):
    from sqlalchemy import func, select

    from core.extensions import db
    from newsletter.models import Delivery

    with app.app_context():
        value = db.session.execute(
            select(func.max(Delivery.sent_at)).where(Delivery.newsletter_id == newsletter_id)
        ).scalar_one()
        db.session.remove()
    if isinstance(value, str):  # SQLite hands back text from an aggregate
        from datetime import datetime

        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        from datetime import UTC

        value = value.replace(tzinfo=UTC)
    return value.timestamp()


def pipeline_run(app, env, workdir, sink, district_key, expected, args, tag):
    """Send one newsletter through the real pipeline; returns a dict of figures.

    The end is the `sent_at` of the last row (written by the worker right
    after the server's 250), so polling slowly costs no precision.
    """
    from core.extensions import db
    from newsletter import jobs, services
    from newsletter.models import Newsletter

    newsletter_id = create_newsletter(app, district_key, args.tracking)
    workers = []
    if not args.cold:
        workers = start_workers(args.workers, env, workdir, burst=False, tag=tag)
        wait_workers_idle(app, workers)
        sampler = Sampler([w.pid for w in workers], sink.process.pid)
        sampler.start()

    own_cpu = time.process_time()
    machine_cpu = cpu_busy_seconds()
    with app.app_context():
        started_wall = time.time()
        started = time.perf_counter()
        newsletter = db.session.get(Newsletter, newsletter_id)
        written = services.send_now(newsletter)
        db.session.commit()
        rows_done = time.perf_counter()
        jobs.enqueue_senders(newsletter_id)
        enqueued = time.perf_counter()
        db.session.remove()
    if written != expected:
        raise RuntimeError(f"{written} delivery rows written, expected {expected}")

    if args.cold:
        workers = start_workers(args.workers, env, workdir, burst=True, tag=tag)
        sampler = Sampler([w.pid for w in workers], sink.process.pid)
        sampler.start()

    deadline = time.monotonic() + args.timeout
    try:
        while True:
            time.sleep(0.2)
            rows = unfinished(app, newsletter_id)
            if not rows:
                break
            stuck = {status: n for status, n in rows.items() if status in ("failed", "bounced", "suppressed")}
            if stuck:
                raise RuntimeError(f"rows that will not be sent: {rows}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"timeout after {args.timeout}s: {rows}")
            if args.cold and all(w.poll() is not None for w in workers):
                raise RuntimeError(f"all workers exited before the end: {rows}")
    finally:
        sampler.stop()
        stop_workers(workers)
    own_cpu = time.process_time() - own_cpu
    if machine_cpu is not None:
        machine_cpu = cpu_busy_seconds() - machine_cpu

    total = last_sent_at(app, newsletter_id) - started_wall
    enqueue_offset = enqueued - started
    cpu = {role: sampler.cpu(role) for role in ("horse", "worker", "scheduler", "smtp-sink")}
    cpu["benchmark"] = own_cpu
    return {
        "tag": tag, "recipients": expected, "seconds": total, "rate": rate(expected, total),
        "rows_seconds": rows_done - started, "enqueue_seconds": enqueued - rows_done,
        "send_rate": rate(expected, total - enqueue_offset),
        "peak_worker": sampler.peak["worker"], "peak_horse": sampler.peak["horse"],
        "peak_scheduler": sampler.peak["scheduler"], "peak_total": sampler.peak_total,
        "cpu": cpu, "machine_cpu": machine_cpu, "wall": time.perf_counter() - started,
    }


# --- the baseline --------------------------------------------------------------------------


def baseline_run(app, count, tracking):
    """`count` mails of the same newsletter, one flask_mail.Message and mail.send per recipient."""
    import flask_mail
    from sqlalchemy import select

    from core.extensions import db, mail
    from core.tokens import make_token
    from core.urls import external_url
    from directory.identity import district_sender
    from directory.models import District, Municipality
    from newsletter import compose
    from newsletter.models import Newsletter
    from subscribers.models import Subscriber

    newsletter_id = create_newsletter(app, BIG_DISTRICT[0], tracking)
    with app.app_context():
        newsletter = db.session.get(Newsletter, newsletter_id)
        html, text, subject = newsletter.compiled_html, newsletter.compiled_text, newsletter.subject
        district = db.session.get(District, BIG_DISTRICT[0])
        sender = district_sender(district)
        web_url = external_url("archive.newsletter", key=district.key, id=newsletter_id)
        base = app.config["BASE_URL"]
        recipients = db.session.execute(
            select(Subscriber.public_id, Subscriber.email, Subscriber.name, Municipality.name)
            .join(Municipality, Municipality.ags == Subscriber.municipality_ags)
            .where(Subscriber.district_key == district.key).order_by(Subscriber.id).limit(count)
        ).all()
        if tracking:
            from newsletter.tracking import tracking_context
        started = time.perf_counter()
        for n, (public_id, email, name, municipality) in enumerate(recipients):
            context = {
                "name": name, "email": email, "municipality": municipality, "web_url": web_url,
                "preferences_url": f"{base}/preferences/" + make_token("subscriber-manage", {"s": public_id}),
                "unsubscribe_url": f"{base}/unsubscribe/" + make_token("subscriber-unsubscribe", {"s": public_id}),
            }
            if tracking:
                context.update(tracking_context(n + 1))
            personal_subject, personal_html, personal_text = compose.personalised(html, text, subject, context)
            msg = flask_mail.Message(personal_subject, sender=sender, recipients=[email],
                                     body=personal_text, html=personal_html)
            mail.send(msg)
        seconds = time.perf_counter() - started
        db.session.remove()
    return {"recipients": len(recipients), "seconds": seconds, "rate": rate(len(recipients), seconds)}


# --- the raw one-client limit ------------------------------------------------------------------


def prebuilt_messages(app, newsletter_id, count):
    """[(envelope from, recipient, bytes)] of `count` mails of the newsletter, built as the work horses build them."""
    from types import SimpleNamespace

    from sqlalchemy import select

    from core.extensions import db
    from directory.models import Municipality
    from newsletter.models import Newsletter
    from newsletter.sending import Batch
    from subscribers.models import Subscriber

    with app.app_context():
        newsletter = db.session.get(Newsletter, newsletter_id)
        batch = Batch(newsletter)
        recipients = db.session.execute(
            select(Subscriber.id, Subscriber.public_id, Subscriber.email, Subscriber.name, Municipality.name)
            .join(Municipality, Municipality.ags == Subscriber.municipality_ags)
            .where(Subscriber.district_key == newsletter.district_key).order_by(Subscriber.id).limit(count)
        ).all()
        messages = []
        for n, (sid, public_id, email, name, municipality) in enumerate(recipients):
            person = SimpleNamespace(id=sid, public_id=public_id, email=email, name=name, status="active")
            messages.append((batch.envelope_from, email, batch.build(n + 1, person, municipality)[1]))
        db.session.remove()
    return messages


def raw_run(app, sink, count, tracking):
    """The one-client limits: one SMTP connection sends prebuilt messages to smtp-sink in a loop, twice.

    Only the SMTP loops are timed (no database, no building): what one
    client connection pushes into this smtp-sink on this machine now.
    - `smtplib`: `smtplib.SMTP.sendmail` per mail, as any Python client
      does (MAIL, RCPT, DATA and the message, each waiting for its answer):
      issue 11's "raw one-client smtplib limit", which the pipeline's target
      is measured against.
    - `protocol`: the pipeline's own protocol through the same
      `core.mail.SMTPRawConnection`: each message goes out in one write with
      MAIL, RCPT and DATA of the next mail, one round trip per mail. The
      ratio to it says how much of what the protocol allows the pipeline
      reaches (printed, not a target).
    """
    import smtplib

    from core.mail import SMTPRawConnection

    messages = prebuilt_messages(app, create_newsletter(app, BIG_DISTRICT[0], tracking), count)
    figures = {}
    host = smtplib.SMTP("127.0.0.1", sink.port, timeout=30)
    try:
        host.ehlo()
        started = time.perf_counter()
        for envelope_from, recipient, data in messages:
            host.sendmail(envelope_from, [recipient], data)
        figures["smtplib"] = time.perf_counter() - started
    finally:
        host.quit()
    connection = SMTPRawConnection(lambda: smtplib.SMTP("127.0.0.1", sink.port, timeout=30)).connect()
    try:
        connection.host.ehlo()
        started = time.perf_counter()
        for n, (envelope_from, recipient, data) in enumerate(messages):
            following = messages[n + 1][:2] if n + 1 < len(messages) else None
            connection.submit(envelope_from, recipient, data, then=following)
            connection.result()
        figures["protocol"] = time.perf_counter() - started
    finally:
        connection.close()
    return {"recipients": len(messages), "mails": 2 * len(messages),
            **{f"{name}_seconds": seconds for name, seconds in figures.items()},
            **{f"{name}_rate": rate(len(messages), seconds) for name, seconds in figures.items()}}


# --- main -----------------------------------------------------------------------------------


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipients", type=int, default=20000, help="list size of the main run (20000)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (2)")
    parser.add_argument("--baseline", type=int, default=2000, help="mails of the Flask-Mail baseline (2000; 0: skip)")
    parser.add_argument("--raw", type=int, default=5000,
                        help="mails of the raw one-client smtplib loop (5000; 0: skip)")
    parser.add_argument("--memory-check", action=argparse.BooleanOptionalAction, default=True,
                        help="also send to a smaller list first and compare the workers' peak RSS (on)")
    parser.add_argument("--small", type=int, default=5000, help="list size of the memory check (5000)")
    parser.add_argument("--parallel-jobs", type=int, default=None,
                        help="SEND_PARALLEL_JOBS (default: the app's, raised to the number of workers)")
    parser.add_argument("--batch-size", type=int, default=None, help="SEND_BATCH_SIZE (default: the app's)")
    parser.add_argument("--tracking", action=argparse.BooleanOptionalAction, default=True,
                        help="send with open and click tracking (on)")
    parser.add_argument("--cold", action="store_true",
                        help="start `worker.py --burst` after the enqueue (their start-up is timed too)")
    parser.add_argument("--database-url", default=None,
                        help="PostgreSQL URL of a throwaway database: its tables are DROPPED and created afresh")
    parser.add_argument("--redis-url", default=None,
                        help="Redis URL of a throwaway database: it is FLUSHED (default: embedded Redis)")
    parser.add_argument("--timeout", type=float, default=600, help="give up a send after this many seconds")
    parser.add_argument("--keep", action="store_true", help="keep the instance folder (logs, database)")
    return parser.parse_args(argv)


def configure_environment(args, workdir, sink):
    env = dict(os.environ)
    # Only what the benchmark sets: an outer DATABASE_URL/REDIS_URL must not
    # point the benchmark at a database it would then fill.
    for name in ("DATABASE_URL", "REDIS_URL"):
        env.pop(name, None)
    env.update({
        "INSTANCE_PATH": workdir,
        "SECRET_KEY": "bench-secret",
        "BASE_URL": "https://egov.example",
        "MAIL_SERVER": "127.0.0.1",
        "MAIL_PORT": str(sink.port),
        "MAIL_DEFAULT_SENDER": "E-Government-Koordination <newsletter@egov.example>",
        "PYTHONUNBUFFERED": "1",
    })
    if args.parallel_jobs:
        env["SEND_PARALLEL_JOBS"] = str(args.parallel_jobs)
    if args.batch_size:
        env["SEND_BATCH_SIZE"] = str(args.batch_size)
    if args.database_url:
        env["DATABASE_URL"] = args.database_url
    if args.redis_url:
        env["REDIS_URL"] = args.redis_url
    os.environ.clear()
    os.environ.update(env)
    return env


def report(args, config, runs, baseline, raw, sink_count, expected_mails):
    main_run = runs[-1]
    lines = ["", "=== summary ==="]
    lines.append(f"setup: {args.workers} worker{'s' if args.workers != 1 else ''} "
                 f"({'cold, --burst' if args.cold else 'warm'}), "
                 f"SEND_PARALLEL_JOBS={config['SEND_PARALLEL_JOBS']}, SEND_BATCH_SIZE={config['SEND_BATCH_SIZE']}, "
                 f"tracking {'on' if args.tracking else 'off'}, database {config['db']}, "
                 f"{os.cpu_count()} CPUs, load average {config['load'][0]:.2f} before the run "
                 f"(other processes on the machine lower the figures)")
    for run in runs:
        lines.append(
            f"pipeline {run['recipients']:>6} recipients: {run['seconds']:6.2f} s = {run['rate']:5.0f} msg/s end to end "
            f"(rows written in {run['rows_seconds']:.2f} s, enqueue {run['enqueue_seconds'] * 1000:.0f} ms; "
            f"from the enqueue {run['send_rate']:.0f} msg/s)"
        )
    for run in runs:
        cpu = run["cpu"]
        per_mail = {role: seconds * 1000 / run["recipients"] for role, seconds in cpu.items()}
        used = sum(cpu.values()) / run["wall"]
        machine = "" if run["machine_cpu"] is None else f", {run['machine_cpu'] / run['wall']:.2f} with anything"
        lines.append(
            f"  CPU per mail: work horses {per_mail['horse']:.2f} ms, workers {per_mail['worker']:.2f} ms, "
            f"schedulers {per_mail['scheduler']:.2f} ms, smtp-sink {per_mail['smtp-sink']:.2f} ms, "
            f"this script {per_mail['benchmark']:.2f} ms; of {os.cpu_count()} CPUs {used:.2f} were busy with "
            f"these{machine}"
        )
    for run in runs:
        lines.append(f"peak RSS at {run['recipients']:>6} recipients: work horse {mib(run['peak_horse']):.1f} MiB, "
                     f"worker {mib(run['peak_worker']):.1f} MiB, scheduler {mib(run['peak_scheduler']):.1f} MiB, "
                     f"all worker processes together {mib(run['peak_total']):.1f} MiB")
    if baseline:
        lines.append(f"baseline Flask-Mail loop, {baseline['recipients']} recipients: {baseline['seconds']:.2f} s = "
                     f"{baseline['rate']:.0f} msg/s")
    if raw:
        lines.append(f"raw one-client smtplib limit (one connection, prebuilt messages, smtplib's sendmail), "
                     f"{raw['recipients']} mails: {raw['smtplib_seconds']:.2f} s = {raw['smtplib_rate']:.0f} msg/s")
        lines.append(f"raw one-client protocol limit (one connection, prebuilt messages, the pipeline's protocol: "
                     f"one round trip per mail), {raw['recipients']} mails: {raw['protocol_seconds']:.2f} s = "
                     f"{raw['protocol_rate']:.0f} msg/s; the pipeline reaches "
                     f"{main_run['rate'] / raw['protocol_rate']:.2f}× of it")
    lines.append(f"smtp-sink received {sink_count} messages (expected {expected_mails})")
    checks = [(f"pipeline ≥ {TARGET_RATE} msg/s", main_run["rate"] >= TARGET_RATE, f"{main_run['rate']:.0f} msg/s")]
    if baseline:
        ratio = main_run["rate"] / baseline["rate"]
        checks.append((f"pipeline ≥ {TARGET_RATIO}× baseline", ratio >= TARGET_RATIO, f"{ratio:.1f}×"))
    if raw:
        ratio = main_run["rate"] / raw["smtplib_rate"]
        checks.append((f"pipeline ≥ {TARGET_RAW_RATIO}× the raw one-client smtplib limit", ratio >= TARGET_RAW_RATIO,
                       f"{ratio:.2f}× ({main_run['rate']:.0f} / {raw['smtplib_rate']:.0f} msg/s)"))
    if len(runs) > 1:
        small, big = runs[0], runs[-1]
        # Allow noise: a few MiB, or 10 %, whichever is larger.
        grew = big["peak_horse"] - small["peak_horse"]
        allowed = max(4 * 1024 * 1024, 0.10 * small["peak_horse"])
        checks.append((
            "work horse memory does not grow with the list", grew <= allowed,
            (f"{mib(small['peak_horse']):.1f} MiB at {small['recipients']}, {mib(big['peak_horse']):.1f} MiB at "
             f"{big['recipients']}"),
        ))
    checks.append(("every mail reached the SMTP server", sink_count == expected_mails, f"{sink_count}/{expected_mails}"))
    lines += verdict_lines(checks)
    print("\n".join(lines), flush=True)
    return all(ok for _label, ok, _figure in checks)


def verdict_lines(checks):
    """`[PASS]`/`[FAIL]` lines of (label, passed, figure) checks, as every benchmark here ends."""
    return [f"[{'PASS' if ok else 'FAIL'}] {label}: {figure}" for label, ok, figure in checks]


def remove_workdir(workdir, keep):
    """Delete the temporary instance folder, or say where it is kept (`--keep`)."""
    if keep:
        print(f"kept {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)


def flush_redis():
    import redis

    try:
        redis.Redis.from_url(os.environ["REDIS_URL"]).flushdb()
    except (redis.RedisError, KeyError):
        pass


def stop_embedded_redis():
    from core import queue

    for server in list(queue._owned_servers.values()):
        server.stop()


def open_app(env, workers, drop):
    """The benchmark's app on the environment `configure_environment` set, its Redis empty and its schema fresh.

    The benchmark plays `flask serve`: it owns the embedded Redis, which the
    workers then share. `env` (the workers' environment) gets
    SEND_PARALLEL_JOBS raised to the number of workers: each job keeps one
    worker busy, so fewer jobs than workers would leave workers idle.
    """
    from app import create_app
    from core.queue import ensure_embedded_redis, get_redis, uses_embedded_redis

    app = create_app()
    if app.config["SEND_PARALLEL_JOBS"] < workers:
        env["SEND_PARALLEL_JOBS"] = os.environ["SEND_PARALLEL_JOBS"] = str(workers)
        app.config["SEND_PARALLEL_JOBS"] = workers
    with app.app_context():
        if uses_embedded_redis(app):
            ensure_embedded_redis(app)
        get_redis().flushdb()
    prepare_database(app, drop=drop)
    return app


def main(argv=None):
    args = parse_args(argv)
    sys.path.insert(0, str(ROOT))
    # Short path: the embedded Redis's Unix socket lives in the instance folder.
    workdir = tempfile.mkdtemp(prefix="egovbench-", dir="/tmp")
    sink = SmtpSink(workdir)
    ok = False
    try:
        env = configure_environment(args, workdir, sink)
        app = open_app(env, args.workers, drop=bool(args.database_url))
        config = {
            "SEND_PARALLEL_JOBS": app.config["SEND_PARALLEL_JOBS"], "SEND_BATCH_SIZE": app.config["SEND_BATCH_SIZE"],
            "db": app.config["SQLALCHEMY_DATABASE_URI"].split(":", 1)[0], "load": os.getloadavg(),
        }
        if args.tracking and not tracking_ready():
            print("newsletter.tracking is not ready: running with tracking off", flush=True)
            args.tracking = False
        small = args.small if args.memory_check else 0
        t = time.perf_counter()
        seed(app, args.recipients, small)
        print(f"instance {workdir}: {args.recipients} + {small} subscribers seeded in {time.perf_counter() - t:.1f} s; "
              f"smtp-sink on port {sink.port}", flush=True)

        runs = []
        if small:
            runs.append(pipeline_run(app, env, workdir, sink, SMALL_DISTRICT[0], small, args, "small"))
            print(f"memory check: {small} recipients sent in {runs[-1]['seconds']:.2f} s", flush=True)
        runs.append(pipeline_run(app, env, workdir, sink, BIG_DISTRICT[0], args.recipients, args, "main"))
        print(f"pipeline: {args.recipients} recipients sent in {runs[-1]['seconds']:.2f} s", flush=True)
        baseline = None
        if args.baseline:
            baseline = baseline_run(app, args.baseline, args.tracking)
            print(f"baseline: {baseline['recipients']} mails in {baseline['seconds']:.2f} s", flush=True)
        raw = None
        if args.raw:
            raw = raw_run(app, sink, min(args.raw, args.recipients), args.tracking)
            print(f"raw one-client loops: {raw['recipients']} mails each, smtplib {raw['smtplib_seconds']:.2f} s, "
                  f"protocol {raw['protocol_seconds']:.2f} s", flush=True)
        time.sleep(0.3)  # smtp-sink writes its counters when a session ends
        expected_mails = (sum(r["recipients"] for r in runs) + (baseline["recipients"] if baseline else 0)
                          + (raw["mails"] if raw else 0))
        ok = report(args, config, runs, baseline, raw, sink.messages(), expected_mails)
    finally:
        sink.stop()
        if args.redis_url:
            flush_redis()
        stop_embedded_redis()
        remove_workdir(workdir, args.keep)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
