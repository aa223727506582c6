"""`flask directory import`: the official list of districts and municipalities."""
import click
from flask.cli import AppGroup
from flask_babel import gettext as _

from core.database import needs_schema
from core.extensions import db
from directory import importer

directory_cli = AppGroup("directory", help="Kreise und Gemeinden.")

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
    result = importer.import_directory(read_file(districts_path), read_file(municipalities_path))
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
