"""`flask reach rebuild|refresh`: the rollup from the shell."""
import time

import click
from flask.cli import AppGroup
from flask_babel import gettext as _

from core.database import needs_schema
from core.extensions import db
from reach import rollup

reach_cli = AppGroup("reach", help="Reichweite: Berührungen und ihre Verdichtung.")


@reach_cli.command("rebuild")
@needs_schema
def rebuild_command():
    """Alle Berührungen und die Verdichtung aus den Rohdaten neu berechnen.

    Sicher jederzeit; ändert keine Zahl, solange die Verdichtung stimmt. Die
    Datenbank ist währenddessen für andere Schreibvorgänge gesperrt (SQLite).
    """
    started = time.monotonic()
    touches = rollup.rebuild()
    db.session.commit()
    click.echo(_("%(n)d Berührungen neu berechnet in %(seconds).1f s.", n=touches,
                 seconds=time.monotonic() - started))


@reach_cli.command("refresh")
@needs_schema
def refresh_command():
    """Nur geänderte Tage neu berechnen (das tun auch die Worker alle paar Sekunden)."""
    marks = rollup.refresh()
    db.session.commit()
    click.echo(_("%(n)d geänderte Tage neu berechnet.", n=marks))
