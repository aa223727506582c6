"""`flask newsletter send ID [--at ISO] [--wait]`: start or schedule a send and follow its progress;
`flask newsletter pause|resume|cancel ID`."""
import sys
import time
from datetime import datetime

import click
from flask.cli import AppGroup
from flask_babel import format_datetime, lazy_gettext
from flask_babel import gettext as _

from core.database import needs_schema
from core.extensions import db
from newsletter import jobs, sending, services
from newsletter.models import Newsletter
from newsletter.services import ContentError, NewsletterError

newsletter_cli = AppGroup("newsletter", help="Newsletter senden und den Versand steuern.")

# Rows a worker still has to handle; --wait follows the send until none is left.
PENDING = ("queued", "sending", "deferred")
REFUSALS = (NewsletterError, ContentError, sending.SendingError)


def load_newsletter(newsletter_id):
    newsletter = db.session.get(Newsletter, newsletter_id)
    if newsletter is None:
        raise click.ClickException(_("Newsletter %(id)d gibt es nicht.", id=newsletter_id))
    return newsletter


def parse_at(value):
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            _("kein Zeitpunkt nach ISO 8601, zum Beispiel 2026-12-01T09:00:00+01:00"), param_hint="--at"
        ) from None
    if at.tzinfo is None:
        raise click.BadParameter(_("der Zeitpunkt braucht eine Zeitzone, zum Beispiel +01:00"), param_hint="--at")
    return at


def progress_line(counts):
    total = sum(counts.values())
    line = _(
        "%(sent)d/%(total)d gesendet, %(deferred)d zurückgestellt, %(failed)d fehlgeschlagen",
        sent=counts["sent"], total=total, deferred=counts["deferred"], failed=counts["failed"] + counts["bounced"],
    )
    if counts["suppressed"]:
        line += _(", %(count)d übersprungen", count=counts["suppressed"])
    return line


def _refuse(error):
    db.session.rollback()
    raise click.ClickException(str(error))


def start(newsletter, at):
    """Send now or schedule; a send already under way only gets its jobs back."""
    try:
        if at is not None:
            services.schedule(newsletter, at)
            db.session.commit()
            click.echo(_("Newsletter %(id)d ist geplant für %(when)s.", id=newsletter.id,
                         when=format_datetime(newsletter.scheduled_at, "dd.MM.yyyy HH:mm")))
            return
        if newsletter.status == "sending":
            click.echo(_("Newsletter %(id)d wird bereits versendet.", id=newsletter.id))
        else:
            written = services.send_now(newsletter)
            db.session.commit()
            click.echo(_("Versand von Newsletter %(id)d an %(count)d Empfänger begonnen.", id=newsletter.id,
                         count=written))
    except REFUSALS as error:
        _refuse(error)
    jobs.enqueue_senders(newsletter.id)


def wait_for(newsletter_id, interval=1.0):
    """Print the progress until the send is over, paused or cancelled, or no row is left to send.

    On a terminal the line is rewritten in place; otherwise a line is
    printed whenever the figures change. Returns the final status.
    """
    live = sys.stdout.isatty()
    last = None
    warned = False
    while True:
        # A new transaction each round: SQLite would otherwise keep showing the first snapshot.
        db.session.rollback()
        status = db.session.execute(db.select(Newsletter.status).where(Newsletter.id == newsletter_id)).scalar_one()
        counts = sending.progress(newsletter_id)
        line = progress_line(counts)
        if line != last:
            # On a terminal, spaces wipe what a longer previous line left behind.
            click.echo("\r" + line.ljust(len(last or "")) if live else line, nl=not live)
            last = line
        left = sum(counts[state] for state in PENDING)
        if status == "sending" and not left and sending.finish_if_done(newsletter_id):
            status = "sent"
        if status not in ("scheduled", "sending"):
            if live:
                click.echo()
            return status
        if not warned and not workers_running():
            click.echo(_("Hinweis: Es läuft kein Worker; der Versand beginnt, sobald `flask worker` läuft."), err=True)
            warned = True
        time.sleep(interval)


def workers_running():
    from core.queue import get_redis, live_workers

    try:
        # Live by heartbeat: a killed worker's key would otherwise count for minutes.
        return bool(live_workers(get_redis()))
    except Exception:  # noqa: BLE001 - only a hint; Redis trouble shows elsewhere
        return True


STATUS_TEXTS = {
    "sent": lazy_gettext("Versand abgeschlossen."),
    "paused": lazy_gettext("Versand angehalten."),
    "cancelled": lazy_gettext("Versand abgebrochen."),
}


@newsletter_cli.command("send")
@click.argument("newsletter_id", metavar="ID", type=int)
@click.option("--at", "at", metavar="ISO", help="Zeitpunkt nach ISO 8601 mit Zeitzone; ohne: sofort senden.")
@click.option("--wait", is_flag=True, help="Den Fortschritt zeigen, bis der Versand beendet ist.")
@needs_schema
def send_command(newsletter_id, at, wait):
    """Newsletter ID jetzt senden oder mit --at planen.

    Mit --wait zeigt der Befehl den Fortschritt, bis alle Mails verschickt
    sind oder der Versand angehalten oder abgebrochen wurde; das geht auch
    für einen Versand, der schon läuft oder abgeschlossen ist. Die Mails
    verschickt ein laufender Worker (`flask worker`).
    """
    newsletter = load_newsletter(newsletter_id)
    at = parse_at(at) if at else None
    if not (wait and at is None and newsletter.status in ("paused", "sent", "cancelled")):
        start(newsletter, at)
    if wait:
        status = wait_for(newsletter.id)
        if status in STATUS_TEXTS:
            click.echo(str(STATUS_TEXTS[status]))


def change_state(newsletter_id, action, done, enqueue=False):
    newsletter = load_newsletter(newsletter_id)
    try:
        action(newsletter)
    except REFUSALS as error:
        _refuse(error)
    db.session.commit()
    if enqueue:
        jobs.enqueue_senders(newsletter.id)
    click.echo(str(done))


@newsletter_cli.command("pause")
@click.argument("newsletter_id", metavar="ID", type=int)
@needs_schema
def pause_command(newsletter_id):
    """Den laufenden Versand von Newsletter ID anhalten."""
    change_state(newsletter_id, services.pause, STATUS_TEXTS["paused"])


@newsletter_cli.command("resume")
@click.argument("newsletter_id", metavar="ID", type=int)
@needs_schema
def resume_command(newsletter_id):
    """Den angehaltenen Versand von Newsletter ID fortsetzen."""
    change_state(newsletter_id, services.resume, lazy_gettext("Versand wird fortgesetzt."), enqueue=True)


@newsletter_cli.command("cancel")
@click.argument("newsletter_id", metavar="ID", type=int)
@needs_schema
def cancel_command(newsletter_id):
    """Den Versand von Newsletter ID endgültig abbrechen."""
    change_state(newsletter_id, services.cancel, STATUS_TEXTS["cancelled"])
