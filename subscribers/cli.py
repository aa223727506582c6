"""`flask subscribers import|export`: a district's subscriber list as CSV."""
import sys

import click
from flask.cli import AppGroup
from flask_babel import gettext as _
from flask_babel import ngettext

from core.database import needs_schema
from core.extensions import db
from directory.cli import CSV_FILE, read_file

subscribers_cli = AppGroup("subscribers", help="Abonnentenlisten der Kreise: Import und Export.")


# --- subscriber lists ------------------------------------------------------


def district_or_exit(key):
    from directory.models import District

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
@click.option("--create-topics", "create_topics", is_flag=True,
              help="Themen, die es im Kreis nicht gibt, anlegen (sonst werden die Zeilen ohne sie importiert).")
@needs_schema
def import_subscribers_command(district_key, path, dry_run, opt_in, create_topics):
    """Abonnenten aus einer CSV-Datei in die Liste eines Kreises übernehmen.

    Spalten (Kopfzeile nötig, Reihenfolge und Groß-/Kleinschreibung beliebig):
    E-Mail und Gemeinde (Pflicht; „email“/„E-Mail“, „ags“/„AGS“/„Gemeinde“ mit
    AGS oder Gemeindenamen), Name, Themen/topics, Dienststelle/department, wie
    sie der Export schreibt. Mehrere Themen in einer
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
    result = csvio.import_subscribers(district, data, opt_in=opt_in, dry_run=dry_run, create_topics=create_topics)
    plan = result.plan
    if not plan.readable:
        db.session.rollback()
        raise click.ClickException(_("%(path)s: %(reason)s Es wurde nichts importiert.", path=path, reason=plan.error))
    for problem in plan.problems:
        click.echo(str(problem), err=True)
    if plan.unknown_topics:
        names = ", ".join(plan.unknown_topics)
        click.echo(_("Neue Themen: %(names)s", names=names) if create_topics else
                   _("Unbekannte Themen, ohne sie importiert (--create-topics legt sie an): %(names)s", names=names))
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

    Alle Status, deutsche Spaltennamen und Status; Zellen, die eine
    Tabellenkalkulation als Formel ausführen würde, beginnen mit '. Die Datei
    lässt sich wieder importieren. Endet die Zieldatei auf .xlsx, wird eine
    Excel-Datei geschrieben.
    """
    from subscribers import csvio

    district = district_or_exit(district_key)
    xlsx = output is not None and output.lower().endswith(".xlsx")
    data = csvio.export_xlsx(district) if xlsx else csvio.export_csv(district)
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
