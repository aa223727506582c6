"""`flask serve`: the web server, the RQ workers and the embedded Redis in one command.

A small supervisor so that a fresh checkout runs with one command and nothing
else installed. Larger installations run gunicorn and `worker.py` under
systemd or a container platform instead; this module adds no behaviour they
would miss.

One `flask serve` per instance folder: it holds `serve.lock` there for its
whole life, and a second start on the same folder refuses. Without REDIS_URL
it owns the embedded Redis (`core.queue.EmbeddedRedis`, under its own lock),
watches it like the other children and restarts it with back-off when it
dies; the workers and web processes wait for it meanwhile. On a stop the web
server and the workers get SIGTERM first (a running send finishes the mail in
flight and gives its rows back), up to SERVE_STOP_TIMEOUT seconds; Redis is
stopped last.
"""
import errno
import fcntl
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import click
from flask import current_app
from flask.cli import with_appcontext
from flask_babel import gettext as _
from flask_babel import lazy_gettext

from core.children import die_with_parent
from core.database import apply_migrations
from core.web_server import gunicorn_options
from core.extensions import ROOT, db

# gunicorn finishes its requests within this, and within SERVE_STOP_TIMEOUT.
GUNICORN_GRACEFUL_TIMEOUT = 10
STARTUP_TIMEOUT = 60.0
TICK = 0.2
TREE_REFRESH = 1.0
RESTART_DELAYS = (1, 2, 5, 10, 30)
# Redis is restarted at once: every other process waits for it.
REDIS_RESTART_DELAYS = (0.2, 1, 2, 5, 10, 30)
# How long to wait for the embedded Redis that another process is starting or stopping.
REDIS_HANDOVER_TIMEOUT = 15.0
SERVE_LOCK_FILE = "serve.lock"
# A worker that ran this long before dying starts over at the shortest delay.
STABLE_AFTER = 60.0
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class ServeError(click.ClickException):
    """A situation the operator can fix; shown as a message, not a traceback."""


# --- processes -------------------------------------------------------------


def process_table():
    """{pid: (ppid, start time)} of the living processes; empty without /proc.

    The start time tells a process apart from a later one that got the same
    pid, so a remembered pid is never killed by mistake.
    """
    table = {}
    try:
        names = os.listdir("/proc")
    except OSError:
        return table
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as fh:
                data = fh.read()
        except OSError:
            continue
        # The command name in parentheses may contain spaces and parentheses.
        fields = data[data.rindex(b")") + 2:].split()
        if fields[0] in (b"Z", b"X"):
            continue  # already dead, only waiting to be reaped by its parent
        table[int(name)] = (int(fields[1]), int(fields[19]))
    return table


def descendants(pid, table):
    """{pid: start time} of every process below `pid`."""
    children = {}
    for child, (parent, _start) in table.items():
        children.setdefault(parent, []).append(child)
    found, todo = {}, list(children.get(pid, ()))
    while todo:
        child = todo.pop()
        found[child] = table[child][1]
        todo.extend(children.get(child, ()))
    return found


class Child:
    """One supervised process and every process it started."""

    def __init__(self, label, argv, env):
        self.label = label
        self.argv = argv
        self.env = env
        self.process = None
        self.started_at = 0.0
        self.failures = 0
        self.restart_at = None
        self.tree = {}

    def start(self):
        self.tree = {}
        self.restart_at = None
        self.process = subprocess.Popen(
            self.argv,
            cwd=ROOT,
            env=self.env,
            stdin=subprocess.DEVNULL,
            # Own session: a Ctrl-C in the terminal reaches only the supervisor,
            # which then stops the children once and in order. RQ would take
            # a second signal as "cold shutdown" and kill the running job.
            start_new_session=True,
            # If `flask serve` itself is killed (even with SIGKILL), the child
            # gets SIGTERM instead of running on as an orphan.
            preexec_fn=die_with_parent(),
        )
        self.started_at = time.monotonic()

    def running(self):
        return self.process is not None and self.process.poll() is None

    def terminate(self):
        if self.running():
            self.process.send_signal(signal.SIGTERM)

    def remember_tree(self, table):
        """Record the child's descendants while they can still be found.

        Once a process dies its children move to init, so gunicorn workers of
        a crashed master, or an RQ work horse (in its own process group), can
        only be found afterwards through this record.
        """
        alive = {pid: start for pid, start in self.tree.items() if table.get(pid, (0, None))[1] == start}
        if self.running():
            alive.update(descendants(self.process.pid, table))
        self.tree = alive

    def kill(self):
        """SIGKILL the child, then whatever it left behind."""
        if self.process is None:
            return
        self.remember_tree(process_table())
        # The parent first: a gunicorn master would replace killed workers.
        if self.running():
            self.process.kill()
        self.process.wait()
        for pid in self.tree:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.tree = {}


def restart_delay(delays, failures):
    return delays[min(failures, len(delays)) - 1]


class EmbeddedRedisKeeper:
    """The embedded Redis under supervision.

    Normally started here and restarted with back-off when it dies. If
    another process owns it (a one-off command started it before), it is
    used as it is and taken over as soon as that owner has stopped it.
    """

    def __init__(self, server):
        self.server = server
        self.shared = False
        self.failures = 0
        self.started_at = 0.0
        self.restart_at = None
        self.next_check = 0.0

    def start(self):
        from core.queue import EmbeddedRedisBusy

        deadline = time.monotonic() + REDIS_HANDOVER_TIMEOUT
        while not self.server.acquire():
            if self.server.is_running():
                self.shared = True
                click.echo(_("Das eingebettete Redis läuft bereits und wird mitbenutzt."))
                return
            if time.monotonic() > deadline:
                raise ServeError(
                    _(
                        "Das eingebettete Redis wird von einem anderen Prozess verwaltet (Sperrdatei %(path)s), "
                        "antwortet aber nicht.",
                        path=self.server.lock_path,
                    )
                )
            time.sleep(TICK)  # its owner is starting or stopping it
        try:
            self._spawn()
        except EmbeddedRedisBusy:
            self.server.release()
            self.shared = True
            click.echo(_("Das eingebettete Redis läuft bereits und wird mitbenutzt."))
        except RuntimeError as exc:
            self.server.release()
            raise ServeError(_("Das eingebettete Redis startet nicht: %(error)s", error=exc)) from None

    def _spawn(self):
        self.restart_at = None
        self.server.spawn()
        self.started_at = time.monotonic()

    def watch(self):
        """Called every tick: restart a dead server, take over a shared one whose owner left."""
        now = time.monotonic()
        if self.shared:
            if now < self.next_check:
                return
            self.next_check = now + TREE_REFRESH
            if self.server.is_running() or not self.server.acquire():
                return
            self.shared = False
            click.echo(_("Das eingebettete Redis wurde von seinem Besitzer beendet und wird jetzt hier gestartet."),
                       err=True)
            self.failures = 0
            self.restart_at = now
        elif self.server.process_alive():
            return
        if self.restart_at is None:
            self.failures = 1 if now - self.started_at >= STABLE_AFTER else self.failures + 1
            delay = restart_delay(REDIS_RESTART_DELAYS, self.failures)
            click.echo(
                _(
                    "Das eingebettete Redis wurde unerwartet beendet (Code %(code)s); Neustart in %(delay)s s.",
                    code=self.server.process.returncode,
                    delay=delay,
                ),
                err=True,
            )
            self.restart_at = now + delay
        if now >= self.restart_at:
            try:
                self._spawn()
            except RuntimeError as exc:
                click.echo(_("Das eingebettete Redis startet nicht: %(error)s", error=exc), err=True)
                self.started_at = time.monotonic()
                self.restart_at = None  # counts as one more failure on the next tick

    def stop(self):
        if not self.shared:
            self.server.stop()  # SIGTERM: Redis saves its data file; then the lock is released


class InstanceLock:
    """`flask serve`'s lock on its instance folder, held for the life of the process."""

    def __init__(self, instance_path):
        self.path = os.path.join(instance_path, SERVE_LOCK_FILE)
        self.fd = None

    def acquire(self):
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise ServeError(
                _(
                    "Für den Instanzordner %(path)s läuft bereits „flask serve“ (Prozess %(pid)s). "
                    "Ein zweiter Start ist nicht möglich: den laufenden Dienst verwenden oder ihn zuerst beenden.",
                    path=os.path.dirname(self.path),
                    pid=owner,
                )
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self.fd = fd

    def release(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


# --- checks before anything starts ----------------------------------------


def check_port(host, port):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        # gunicorn binds with SO_REUSEADDR too; without it a port still in
        # TIME_WAIT from the last run would look taken.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ServeError(
                    _(
                        "Port %(port)d auf %(host)s ist bereits belegt. Läuft der Dienst schon? "
                        "Sonst einen anderen Port wählen: flask serve --port %(other)d",
                        port=port,
                        host=host,
                        other=port + 1,
                    )
                ) from None
            raise ServeError(
                _("Adresse %(host)s:%(port)d ist nicht nutzbar: %(error)s", host=host, port=port, error=exc)
            ) from None


def ensure_admin():
    """Create the first admin account; returns (email, password) or None."""
    from accounts.services import create_user, user_count

    if user_count():
        return None
    # check_email=False: the default admin@localhost has no public domain.
    user, password = create_user(current_app.config["ADMIN_EMAIL"], "admin", (), check_email=False)
    db.session.commit()
    return user.email, password


def show_admin(email, password):
    rule = "=" * 64
    click.echo(rule)
    click.echo(_("Erster Start: Ein Administrationskonto wurde angelegt."))
    click.echo("  " + _("E-Mail:   %(email)s", email=email))
    click.echo("  " + _("Passwort: %(password)s", password=password))
    click.echo(_("Das Passwort wird nur dieses eine Mal angezeigt. Bitte jetzt sicher notieren."))
    click.echo(rule)


def bracket(host):
    return f"[{host}]" if ":" in host else host


def public_host(host):
    """The host name for links: a wildcard address is not one, the machine's name is."""
    if host in ("0.0.0.0", "", "::"):
        return socket.gethostname() or "localhost"
    return host


def probe_host(host):
    """Where to knock: a wildcard address accepts connections on loopback."""
    return {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(host, host)


def web_answers(url):
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except urllib.error.HTTPError:
        return True  # 503 from /healthz while the workers start still means "up"
    except (urllib.error.URLError, OSError):
        return False


# --- the supervisor -------------------------------------------------------


class Supervisor:
    """Starts the children, restarts RQ workers that die, stops all on a signal.

    Gunicorn is not restarted: a web server that dies is a fault the operator
    must see, so `flask serve` stops everything and exits non-zero.
    """

    def __init__(self, app, host, port, workers, web_workers):
        self.app = app
        self.host = host
        self.port = port
        self.worker_count = workers
        self.web_workers = web_workers
        self.redis = None  # the embedded server's keeper, stopped last
        self.stop_timeout = max(1, app.config["SERVE_STOP_TIMEOUT"])
        self.lock = InstanceLock(app.instance_path)
        self.web = None
        self.workers = []
        self.stop_requested = False
        self.force = False
        self._previous_handlers = {}

    @property
    def url(self):
        return f"http://{bracket(self.host)}:{self.port}"

    def _settle_base_url(self):
        """Without BASE_URL, links in mails point at the address this command serves on.

        Returns the line the start banner says about it. The web server, the
        workers and this process all use the derived address.
        """
        config = self.app.config
        if config.get("BASE_URL_FROM_ENV"):
            return _("Links in E-Mails führen auf %(url)s (BASE_URL).", url=config["BASE_URL"])
        base = f"http://{bracket(public_host(self.host))}:{self.port}"
        config["BASE_URL"] = base
        line = _("Links in E-Mails führen auf %(url)s (abgeleitet aus --host/--port, weil BASE_URL nicht gesetzt "
                 "ist).", url=base)
        if public_host(self.host) != self.host:
            line += " " + _("Für Empfänger auf anderen Rechnern BASE_URL auf die öffentliche Adresse setzen.")
        return line

    @property
    def open_url(self):
        """What the operator opens in a browser: BASE_URL when it is set, else this command's own address."""
        if self.app.config.get("BASE_URL_FROM_ENV"):
            return self.app.config["BASE_URL"]
        return f"http://{bracket(public_host(self.host))}:{self.port}"

    def run(self):
        """Start everything, supervise until a stop signal; returns the exit code."""
        from core.queue import get_redis

        self.lock.acquire()
        try:
            # Whatever touches Redis in this process only connects: the embedded
            # server is started by the keeper below, under its lock.
            get_redis(self.app, start=False)
            check_port(self.host, self.port)
            address_line = self._settle_base_url()
            apply_migrations()
            admin = ensure_admin()
            # The children open their own connections; the supervisor keeps none.
            db.session.remove()
            db.engine.dispose()
            if admin:
                show_admin(*admin)
            self._install_signal_handlers()
            try:
                self._start_redis()
                if self.stop_requested:
                    return 0
                self._start_children()
                if not self._wait_for_web():
                    return 0
                click.echo(_("Läuft auf %(url)s – Strg+C beendet.", url=self.url))
                click.echo(address_line)
                click.echo(_("Öffnen Sie %(url)s im Browser.", url=self.open_url))
                return self._supervise()
            finally:
                self._shutdown()
                self._restore_signal_handlers()
        finally:
            self.lock.release()

    # signals

    def _install_signal_handlers(self):
        for signum in STOP_SIGNALS:
            self._previous_handlers[signum] = signal.signal(signum, self._on_signal)

    def _restore_signal_handlers(self):
        for signum, handler in self._previous_handlers.items():
            signal.signal(signum, handler)

    def _on_signal(self, signum, frame):
        if self.stop_requested:
            # A second Ctrl-C: the operator does not want to wait for running jobs.
            self.force = True
        self.stop_requested = True

    # start

    def _start_redis(self):
        from core.queue import EmbeddedRedis, get_redis

        if self.app.config.get("REDIS_URL"):
            self._check_external_redis(get_redis(self.app, start=False))
            return
        self.redis = EmbeddedRedisKeeper(EmbeddedRedis(self.app.instance_path))
        self.redis.start()

    @staticmethod
    def _check_external_redis(connection):
        import redis

        try:
            connection.ping()
        except (redis.RedisError, OSError) as exc:
            raise ServeError(_("Redis (REDIS_URL) ist nicht erreichbar: %(error)s", error=exc)) from None
        finally:
            connection.close()

    def _child_env(self):
        env = dict(os.environ)
        # The children build their own app; these make it the same app: same
        # SQLite file, secret key file, outbox and Redis socket.
        env["INSTANCE_PATH"] = self.app.instance_path
        env["DATABASE_URL"] = self.app.config["SQLALCHEMY_DATABASE_URI"]
        env["BASE_URL"] = self.app.config["BASE_URL"]
        if self.app.config.get("REDIS_URL"):
            env["REDIS_URL"] = self.app.config["REDIS_URL"]
        else:
            env.pop("REDIS_URL", None)
        env["PYTHONUNBUFFERED"] = "1"  # their log lines appear when they happen
        return env

    def _start_children(self):
        env = self._child_env()
        for number in range(1, self.worker_count + 1):
            worker = Child(_("Worker %(n)d", n=number), [sys.executable, os.path.join(ROOT, "worker.py")], env)
            worker.start()
            self.workers.append(worker)
        gunicorn = [
            sys.executable, "-m", "gunicorn",
            "--bind", f"{bracket(self.host)}:{self.port}",
            "--workers", str(self.web_workers),
            "--graceful-timeout", str(min(GUNICORN_GRACEFUL_TIMEOUT, max(1, int(self.stop_timeout) - 1))),
            "--access-logfile", "-",
            *gunicorn_options(),
            "app:create_app()",
        ]
        self.web = Child(_("Webserver"), gunicorn, env)
        self.web.start()

    def _wait_for_web(self):
        """True once the web server answers; False if a stop came first."""
        probe = f"http://{bracket(probe_host(self.host))}:{self.port}/healthz"
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not self.stop_requested:
            self._watch_redis()
            if not self.web.running():
                raise ServeError(
                    _(
                        "Der Webserver ist beim Start beendet worden (Code %(code)s); Meldungen siehe oben.",
                        code=self.web.process.returncode,
                    )
                )
            if web_answers(probe):
                return True
            if time.monotonic() > deadline:
                raise ServeError(_("Der Webserver antwortet nach %(n)d Sekunden noch nicht.", n=STARTUP_TIMEOUT))
            time.sleep(TICK)
        return False

    # run

    def _supervise(self):
        next_refresh = 0.0
        while not self.stop_requested:
            if not self.web.running():
                click.echo(
                    _(
                        "Der Webserver wurde unerwartet beendet (Code %(code)s); alles wird angehalten.",
                        code=self.web.process.returncode,
                    ),
                    err=True,
                )
                return 1
            self._watch_redis()
            for worker in self.workers:
                self._keep_alive(worker)
            if time.monotonic() >= next_refresh:
                self._remember_trees()
                next_refresh = time.monotonic() + TREE_REFRESH
            time.sleep(TICK)
        return 0

    def _keep_alive(self, worker):
        if worker.running():
            return
        now = time.monotonic()
        if worker.restart_at is None:
            # Its scheduler process or work horse may have outlived it.
            worker.kill()
            worker.failures = 1 if now - worker.started_at >= STABLE_AFTER else worker.failures + 1
            delay = restart_delay(RESTART_DELAYS, worker.failures)
            click.echo(
                _(
                    "%(name)s wurde unerwartet beendet (Code %(code)s); Neustart in %(delay)d s.",
                    name=worker.label,
                    code=worker.process.returncode,
                    delay=delay,
                ),
                err=True,
            )
            worker.restart_at = now + delay
        elif now >= worker.restart_at:
            worker.start()

    def _watch_redis(self):
        if self.redis is not None:
            self.redis.watch()

    def _children(self):
        return [child for child in [self.web, *self.workers] if child is not None and child.process is not None]

    def _remember_trees(self):
        table = process_table()
        for child in self._children():
            child.remember_tree(table)

    # stop

    def _shutdown(self):
        children = self._children()
        if children:
            click.echo(_("Webserver und Worker werden beendet …"))
            self._remember_trees()
            for child in children:
                child.terminate()
            # RQ's warm shutdown asks a running job to stop (a send finishes
            # the mail in flight and gives its rows back); gunicorn finishes
            # its requests. Both are bounded by SERVE_STOP_TIMEOUT; Redis,
            # which the workers need to record their jobs, is kept up meanwhile.
            deadline = time.monotonic() + self.stop_timeout
            while any(child.running() for child in children) and time.monotonic() < deadline and not self.force:
                self._remember_trees()
                self._watch_redis()
                time.sleep(TICK)
            for child in children:
                if child.running():
                    click.echo(
                        _(
                            "%(name)s ist nach %(n)d s noch nicht beendet (laufender Job?) und wird abgebrochen.",
                            name=child.label,
                            n=self.stop_timeout,
                        ),
                        err=True,
                    )
                child.kill()
        if self.redis is not None:
            # Last: the workers needed it until they were gone. Redis saves its data file.
            self.redis.stop()
            self.redis = None
        if children:
            click.echo(_("Beendet."))


@click.command(
    "serve", help=lazy_gettext("Startet Webserver, RQ-Worker und (ohne REDIS_URL) das eingebettete Redis.")
)
@click.option(
    "--host", default="127.0.0.1", show_default=True, help=lazy_gettext("Adresse, auf der der Webserver lauscht.")
)
@click.option(
    "--port", default=5000, show_default=True, type=click.IntRange(1, 65535), help=lazy_gettext("Port des Webservers.")
)
@click.option(
    "--workers", default=2, show_default=True, type=click.IntRange(min=1), help=lazy_gettext("Anzahl der RQ-Worker.")
)
@click.option(
    "--web-workers",
    default=2,
    show_default=True,
    type=click.IntRange(min=1),
    help=lazy_gettext("Anzahl der gunicorn-Prozesse."),
)
@with_appcontext
def serve_command(host, port, workers, web_workers):
    supervisor = Supervisor(current_app._get_current_object(), host, port, workers, web_workers)
    code = supervisor.run()
    if code:
        sys.exit(code)
