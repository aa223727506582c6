"""`flask directory import`: the official list of districts and municipalities;
`flask subscribers import|export`: a district's subscriber list as CSV."""
import sys

import click
from flask.cli import AppGroup
from flask_babel import gettext as _
from flask_babel import ngettext

from app import db
from core.database import needs_schema
from subscribers import directory

directory_cli = AppGroup("directory", help="Kreise und Gemeinden.")
subscribers_cli = AppGroup("subscribers", help="Abonnentenlisten der Kreise: Import und Export.")

CSV_FILE = click.Path(exists=True, dir_okay=False, readable=True)


def read_file(path):
    """(bytes, name) for the directory service; the path as typed names the file in messages."""
    if path is None:
        return None
    try:
        with open(path, "rb") as fh:
            return fh.read(), path
    except OSError as exc:
        raise click.ClickException(_("%(path)s kann nicht gelesen werden: %(reason)s", path=path, reason=exc.strerror))


def echo_counts(label, counts):
    click.echo(_(
        "%(label)s: %(new)d neu, %(changed)d geändert, %(unchanged)d unverändert",
        label=label, new=counts.new, changed=counts.changed, unchanged=counts.unchanged,
    ))


def import_or_exit(districts_path, municipalities_path):
    """Import without committing; on any problem list them all, write nothing and exit 1."""
    result = directory.import_directory(read_file(districts_path), read_file(municipalities_path))
    if result.ok:
        return result
    db.session.rollback()
    for problem in result.problems:
        click.echo(str(problem), err=True)
    click.echo(_(
        "Import abgebrochen: %(n)d Fehler gefunden, es wurde nichts geschrieben.", n=len(result.problems)
    ), err=True)
    raise click.exceptions.Exit(1)


def echo_result(result):
    if result.districts is not None:
        echo_counts(_("Kreise"), result.districts)
    if result.municipalities is not None:
        echo_counts(_("Gemeinden"), result.municipalities)


def directory_file_options(command):
    """--districts and --municipalities; `flask demo` takes the same pair."""
    command = click.option(
        "--municipalities", "municipalities_path", type=CSV_FILE,
        help="CSV mit den Spalten ags,name,district_key (UTF-8).",
    )(command)
    return click.option(
        "--districts", "districts_path", type=CSV_FILE,
        help="CSV mit den Spalten district_key,name,kind (UTF-8).",
    )(command)


@directory_cli.command("import")
@directory_file_options
@needs_schema
def import_command(districts_path, municipalities_path):
    """Kreise und Gemeinden aus den amtlichen CSV-Dateien einlesen oder aktualisieren.

    Die Dateien werden vollständig geprüft; bei einem Fehler wird nichts
    geschrieben. Wiederholtes Einlesen aktualisiert Namen, löscht aber keine
    Gemeinden.
    """
    if districts_path is None and municipalities_path is None:
        raise click.UsageError(_("Bitte --districts und/oder --municipalities angeben."))
    result = import_or_exit(districts_path, municipalities_path)
    db.session.commit()
    echo_result(result)


# --- subscriber lists ------------------------------------------------------


def district_or_exit(key):
    from subscribers.models import District

    district = db.session.get(District, key)
    if district is None:
        raise click.ClickException(_("Unbekannter Kreis: %(key)s", key=key))
    return district


@subscribers_cli.command("import")
@click.argument("district_key")
@click.argument("path", type=CSV_FILE)
@click.option("--dry-run", is_flag=True, help="Nur prüfen und berichten, nichts schreiben.")
@click.option("--opt-in", "opt_in", is_flag=True,
              help="Adressen als unbestätigt anlegen und ihnen eine Bestätigungsmail senden (Double-Opt-in).")
@needs_schema
def import_subscribers_command(district_key, path, dry_run, opt_in):
    """Abonnenten aus einer CSV-Datei in die Liste eines Kreises übernehmen.

    Spalten (Kopfzeile nötig, Reihenfolge und Groß-/Kleinschreibung beliebig):
    email und ags (Pflicht), name, topics, department. Mehrere Themen in einer
    Zelle durch ; getrennt (in einer ;-getrennten Datei die Zelle in
    Anführungszeichen). Trennzeichen , oder ; und UTF-8 oder Windows-1252
    werden erkannt.

    Gültige Zeilen werden übernommen, jede fehlerhafte wird mit Zeilennummer
    auf stderr gemeldet. Exit-Code 0, auch wenn einzelne Zeilen übersprungen
    wurden; 1, wenn die Datei als Ganzes unlesbar ist oder der Kreis unbekannt
    (dann wird nichts geschrieben).
    """
    from subscribers import csvio, jobs

    district = district_or_exit(district_key)
    data, _name = read_file(path)
    result = csvio.import_subscribers(district, data, opt_in=opt_in, dry_run=dry_run)
    plan = result.plan
    if not plan.readable:
        db.session.rollback()
        raise click.ClickException(_("%(path)s: %(reason)s Es wurde nichts importiert.", path=path, reason=plan.error))
    for problem in plan.problems:
        click.echo(str(problem), err=True)
    skipped = ngettext("%(num)d Zeile übersprungen", "%(num)d Zeilen übersprungen", plan.rejected_lines)
    if dry_run:
        db.session.rollback()
        would = ngettext("%(num)d Adresse würde importiert", "%(num)d Adressen würden importiert", len(plan.rows))
        click.echo(_("Probelauf: %(would)s, %(skipped)s. Es wurde nichts geschrieben.", would=would, skipped=skipped))
        return
    db.session.commit()
    imported = ngettext("%(num)d Adresse importiert", "%(num)d Adressen importiert", result.imported)
    if opt_in:
        jobs.enqueue_subscription_mails([subscriber.id for subscriber in result.added])
        click.echo(_("%(imported)s (unbestätigt, Bestätigungsmails werden versandt), %(skipped)s.",
                     imported=imported, skipped=skipped))
    else:
        click.echo(_("%(imported)s, %(skipped)s.", imported=imported, skipped=skipped))


@subscribers_cli.command("export")
@click.argument("district_key")
@click.option("-o", "--output", "output", type=click.Path(dir_okay=False, writable=True),
              help="Zieldatei (ohne: Standardausgabe).")
@needs_schema
def export_subscribers_command(district_key, output):
    """Die Liste eines Kreises als CSV ausgeben (; getrennt, UTF-8 mit BOM, für Excel).

    Alle Status; Zellen, die eine Tabellenkalkulation als Formel ausführen
    würde, beginnen mit '. Die Datei lässt sich wieder importieren.
    """
    from subscribers import csvio

    data = csvio.export_csv(district_or_exit(district_key))
    if output is None:
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    try:
        with open(output, "wb") as fh:
            fh.write(data)
    except OSError as exc:
        raise click.ClickException(
            _("%(path)s kann nicht geschrieben werden: %(reason)s", path=output, reason=exc.strerror)
        ) from None
