"""`flask directory import`: the official list of districts and municipalities, and their outlines."""
import click
from flask.cli import AppGroup
from flask_babel import gettext as _

from core.database import needs_schema
from core.extensions import db
from directory import importer

directory_cli = AppGroup("directory", help="Kreise und Gemeinden.")

CSV_FILE = click.Path(exists=True, dir_okay=False, readable=True)
GEOJSON_FILE = CSV_FILE  # the same check: an existing, readable file


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


def import_or_exit(districts_path, municipalities_path, boundary_paths=()):
    """Import without committing; on any problem list them all, write nothing and exit 1."""
    return checked_or_exit(importer.import_directory(
        read_file(districts_path), read_file(municipalities_path), [read_file(path) for path in boundary_paths]
    ))


def import_shipped_or_exit():
    """`import_or_exit` with the official directory and outlines shipped in the package."""
    try:
        result = importer.import_shipped()
    except OSError as exc:  # an installation that left out the package data
        raise click.ClickException(_(
            "Die mitgelieferten Daten fehlen (%(reason)s); bitte Dateien angeben.", reason=exc
        )) from None
    return checked_or_exit(result)


def checked_or_exit(result):
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
    labels = {
        "district": _("Kreisumrisse"),
        "municipality": _("Gemeindeumrisse"),
        "area": _("Umrisse gemeindefreier Gebiete"),
    }
    for kind, counts in (result.outlines or {}).items():
        echo_counts(labels[kind], counts)


def directory_file_options(command):
    """--districts, --municipalities and --boundaries; `flask demo` takes the same options."""
    command = click.option(
        "--boundaries", "boundary_paths", type=GEOJSON_FILE, multiple=True,
        help="GeoJSON-FeatureCollection mit Umrissen (WGS84), je Feature die Eigenschaft district_key "
             "(Kreis) oder ags (Gemeinde); mehrfach angebbar.",
    )(command)
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
def import_command(districts_path, municipalities_path, boundary_paths):
    """Kreise, Gemeinden und ihre Kartenumrisse einlesen oder aktualisieren.

    Ohne Angaben werden die mitgelieferten amtlichen Daten Baden-Württembergs
    eingelesen: 44 Kreise, 1.101 Gemeinden (Stand 25.01.2021) und ihre
    Umrisse (© GeoBasis-DE / BKG 2017, Daten verändert). Sonst nur die
    angegebenen Dateien; Umrisse werden gegen die Kreise und Gemeinden der
    Datenbank und dieses Aufrufs geprüft.

    Die Dateien werden vollständig geprüft; bei einem Fehler wird nichts
    geschrieben. Wiederholtes Einlesen aktualisiert Namen und Umrisse, löscht
    aber nichts.
    """
    if districts_path is None and municipalities_path is None and not boundary_paths:
        result = import_shipped_or_exit()
    else:
        result = import_or_exit(districts_path, municipalities_path, boundary_paths)
    db.session.commit()
    echo_result(result)
