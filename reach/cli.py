"""`flask contacts import`: a district's logged contacts (Kontakte) from a CSV file."""
import click
from flask.cli import AppGroup
from flask_babel import gettext as _
from flask_babel import ngettext

from core.database import needs_schema
from core.extensions import db
from directory.cli import CSV_FILE, read_file
from subscribers.cli import district_or_exit

contacts_cli = AppGroup("contacts", help="Kontakte der Kreise: Import.")


@contacts_cli.command("import")
@click.argument("district_key")
@click.argument("path", type=CSV_FILE)
@click.option("--dry-run", is_flag=True, help="Nur prüfen und berichten, nichts schreiben.")
@needs_schema
def import_contacts_command(district_key, path, dry_run):
    """Kontakte aus einer CSV-Datei für einen Kreis übernehmen.

    Spalten (Kopfzeile nötig, Reihenfolge und Groß-/Kleinschreibung beliebig):
    datum, gemeinden und art (Pflicht), themen, notiz. Mehrere Gemeinden
    (AGS oder Name) oder Themen in einer Zelle durch ; oder | getrennt.
    Trennzeichen , oder ; und UTF-8 oder Windows-1252 werden erkannt.

    Gültige Zeilen werden übernommen, jede fehlerhafte wird mit Zeilennummer
    auf stderr gemeldet. Exit-Code 0, auch wenn einzelne Zeilen übersprungen
    wurden; 1, wenn die Datei als Ganzes unlesbar ist oder der Kreis unbekannt
    (dann wird nichts geschrieben).
    """
    from reach import contacts_csv

    district = district_or_exit(district_key)
    data, _name = read_file(path)
    result = contacts_csv.import_contacts(district, data, dry_run=dry_run)
    plan = result.plan
    if not plan.readable:
        db.session.rollback()
        raise click.ClickException(_("%(path)s: %(reason)s Es wurde nichts importiert.", path=path, reason=plan.error))
    for problem in plan.problems:
        click.echo(str(problem), err=True)
    if dry_run:
        db.session.rollback()
    else:
        db.session.commit()
    click.echo(_summary(result, dry_run))


def _summary(result, dry_run):
    skipped = ngettext("%(num)d Zeile übersprungen", "%(num)d Zeilen übersprungen", result.plan.rejected_lines)
    if dry_run:
        would = ngettext("%(num)d Kontakt würde importiert", "%(num)d Kontakte würden importiert",
                         len(result.plan.rows))
        return _("Probelauf: %(would)s, %(skipped)s. Es wurde nichts geschrieben.", would=would, skipped=skipped)
    imported = ngettext("%(num)d Kontakt importiert", "%(num)d Kontakte importiert", result.imported)
    return _("%(imported)s, %(skipped)s.", imported=imported, skipped=skipped)
