"""`flask users`: accounts and API tokens from the command line.

Every command calls accounts.services and commits only when the service
accepted the change; a broken rule becomes a click error with the service's
German message, and nothing is written.
"""
import sys
from contextlib import contextmanager

import click
from flask.cli import AppGroup
from flask_babel import gettext as _
from sqlalchemy import select

from accounts import services, sessions
from accounts.models import ROLES, User
from core.database import needs_schema
from core.extensions import db

users_cli = AppGroup("users", help="Benutzerkonten.")

password_stdin_option = click.option(
    "--password-stdin", is_flag=True,
    help="Passwort als eine Zeile von der Standardeingabe lesen, statt es zu erzeugen.",
)


@contextmanager
def account_rules():
    """Commit on success; turn an AccountError into a click error and roll back."""
    try:
        yield
    except services.AccountError as exc:
        db.session.rollback()
        raise click.ClickException(str(exc)) from exc
    db.session.commit()


def existing_user(email):
    user = services.find_user(email)
    if user is None:
        raise click.ClickException(_("Es gibt kein Konto für %(email)s.", email=email))
    return user


def password_from_stdin():
    """One line from stdin; the line break is not part of the password."""
    password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise click.ClickException(_("Auf der Standardeingabe kam kein Passwort an."))
    return password


@users_cli.command("create")
@click.argument("email")
@click.option("--role", required=True, type=click.Choice(ROLES), help="admin, coordinator oder viewer.")
@click.option("--district", "districts", multiple=True, metavar="KEY", help="Kreisschlüssel; mehrfach möglich.")
@click.option("--name", default="", help="Anzeigename.")
@password_stdin_option
@needs_schema
def create_command(email, role, districts, name, password_stdin):
    """Ein Konto anlegen; ohne --password-stdin wird ein Passwort erzeugt und einmal angezeigt."""
    password = password_from_stdin() if password_stdin else None
    with account_rules():
        user, password = services.create_user(email, role, districts, password=password, name=name)
    click.echo(_("Konto %(email)s (%(role)s) angelegt.", email=user.email, role=user.role))
    if not password_stdin:
        click.echo(_("Passwort (wird nur jetzt angezeigt): %(password)s", password=password))


@users_cli.command("token")
@click.argument("email")
@click.option("--label", default="", help="Wofür das Token gedacht ist, z. B. der Name des Skripts.")
@needs_schema
def token_command(email, label):
    """Ein neues API-Token ausgeben (es wird nur dieses eine Mal angezeigt)."""
    user = existing_user(email)
    if not user.active:
        raise click.ClickException(_("Das Konto %(email)s ist deaktiviert.", email=user.email))
    with account_rules():
        token = services.issue_token(user, label=label)
    click.echo(token)


@users_cli.command("list")
@needs_schema
def list_command():
    """Alle Konten mit Rolle, Kreisen und Status."""
    users = db.session.execute(select(User).order_by(User.email)).scalars().all()
    if not users:
        click.echo(_("Es gibt noch keine Konten."))
        return
    rows = [(_("E-Mail"), _("Rolle"), _("Kreise"), _("Aktiv"))]
    rows += [(user.email, user.role, district_list(user), _("ja") if user.active else _("nein")) for user in users]
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(value.ljust(width) for value, width in zip(row, widths)).rstrip())


def district_list(user):
    if user.district_keys is None:
        return _("alle")
    return ", ".join(user.district_keys)


@users_cli.command("set-password")
@click.argument("email")
@password_stdin_option
@needs_schema
def set_password_command(email, password_stdin):
    """Ein neues Passwort setzen; ohne --password-stdin wird eines erzeugt und einmal angezeigt.

    Bestehende Anmeldungen des Kontos enden damit.
    """
    user = existing_user(email)
    password = password_from_stdin() if password_stdin else services.generate_password()
    with account_rules():
        services.set_password(user, password)
    click.echo(_("Passwort für %(email)s geändert.", email=user.email))
    if not password_stdin:
        click.echo(_("Neues Passwort (wird nur jetzt angezeigt): %(password)s", password=password))


@users_cli.command("end-sessions")
@click.argument("email", required=False)
@click.option("--expired", is_flag=True, help="Nur abgelaufene Anmeldungen aller Konten entfernen.")
@needs_schema
def end_sessions_command(email, expired):
    """Alle Anmeldungen eines Kontos beenden, oder mit --expired die abgelaufenen aller Konten entfernen.

    Etwa bei einem verlorenen Gerät. Das Passwort bleibt; wer es kennt, kann
    sich wieder anmelden.
    """
    if bool(email) == expired:
        raise click.UsageError(_("Bitte genau eines angeben: eine E-Mail-Adresse oder --expired."))
    if expired:
        with account_rules():
            count = sessions.purge_expired()
        click.echo(_("%(count)d abgelaufene Anmeldungen entfernt.", count=count))
        return
    user = existing_user(email)
    with account_rules():
        count = sessions.end_all(user)
    click.echo(_("%(count)d Anmeldungen von %(email)s beendet.", count=count, email=user.email))
