"""The district and state tables as CSV (for German Excel) and XLSX, for the programme's reporting.

CSV: `;`, UTF-8 with BOM, cells a spreadsheet would run as a formula are
prefixed with `'` (as the subscriber export). XLSX is written with
XlsxWriter (maintained, write-only, no dependencies); numbers stay numbers,
dates are dates, and a second sheet states period, filters and definition.
What a viewer exports is what a viewer sees: suppressed cells are ".".
"""
import csv
import io
from datetime import date

import xlsxwriter
from flask_babel import gettext as _

from reach.definition import CHANNEL_LABELS, LEVEL_BY_NUMBER
from reach.period import PRESETS
from subscribers.csvio import UTF8_BOM, guard_formula

SUPPRESSED = "."


def _yes(value):
    return _("ja") if value else _("nein")


def district_table(report):
    """(header, rows) of the municipality table; cells are str, int, date, None or SUPPRESSED."""
    header = [_("AGS"), _("Gemeinde"), _("im Verteiler"), _("erreicht"), _("aktiv erreicht"), _("höchste Stufe")]
    for level in report.levels:
        label = LEVEL_BY_NUMBER[level].label
        header += [_("%(level)s: erste Berührung", level=label), _("%(level)s: letzte Berührung", level=label),
                   _("%(level)s: Berührungen", level=label)]
    rows = []
    for row in report.rows:
        highest = str(LEVEL_BY_NUMBER[row.highest].label) if row.highest else ""
        line = [row.ags, row.name, _yes(row.listed), _yes(row.reached),
                SUPPRESSED if row.active_suppressed else _yes(row.active), highest]
        for level in report.levels:
            cell = row.cells.get(level)
            if cell is None:
                line += [None, None, 0]
            elif cell.suppressed:
                line += [SUPPRESSED] * 3
            else:
                line += [cell.first, cell.last, cell.touches]
        rows.append(line)
    return header, rows


def state_table(report):
    header = [_("Kreisschlüssel"), _("Kreis"), _("Gemeinden"), _("im Verteiler"), _("erreicht"),
              _("Anteil erreicht (%)"), _("aktiv erreicht"), _("Anteil aktiv erreicht (%)")]
    for level in report.levels:
        label = LEVEL_BY_NUMBER[level].label
        header += [str(label), _("Anteil %(level)s (%%)", level=label)]
    header.append(_("letzte Aktivität"))
    rows = []
    for line in report.districts:
        s = line.summary
        row = [line.district.key, line.district.display_name, s.total, s.listed, s.reached, s.share(s.reached),
               s.active, s.share(s.active)]
        for level in report.levels:
            row += [s.ladder.get(level, 0), s.share(s.ladder.get(level, 0))]
        row.append(s.last)
        rows.append(row)
    return header, rows


def _csv_cell(value):
    if value is None:
        return ""
    if isinstance(value, date):
        return value.strftime("%d.%m.%Y")
    if isinstance(value, float):
        return f"{value * 100:.1f}".replace(".", ",")  # a share, as percent
    return guard_formula(str(value))


def to_csv(header, rows):
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow([_csv_cell(value) for value in header])
    for row in rows:
        writer.writerow([_csv_cell(value) for value in row])
    return UTF8_BOM + out.getvalue().encode("utf-8")


def describe(filters, title):
    """The lines that say what a table is: title, period, filters, definition."""
    channels = ", ".join(str(CHANNEL_LABELS[code]) for code in filters.channels) or _("alle")
    return [
        title,
        _("Zeitraum: %(first)s – %(last)s (%(preset)s)", first=filters.first.strftime("%d.%m.%Y"),
          last=filters.last.strftime("%d.%m.%Y"), preset=PRESETS.get(filters.preset, "")),
        _("Thema: %(topic)s; Kanäle: %(channels)s", topic=filters.topic or _("alle"), channels=channels),
        _("Erreicht: mindestens eine Zustellung, Anmeldung, Teilnahme oder ein Kontakt im Zeitraum. "
          "Aktiv erreicht: mindestens eine Öffnung, ein Klick, eine Anmeldung, Teilnahme oder ein Kontakt. "
          "Im Verteiler: mindestens eine aktive Abonnentin oder ein aktiver Abonnent am Ende des Zeitraums."),
        _("Maschinelle Öffnungen und Klicks (Virenscanner, Vorschauen) zählen nie. "
          "\".\": weniger als die Mindestzahl an Personen, nicht ausgewiesen."),
    ]


def to_xlsx(header, rows, description, sheet_title):
    out = io.BytesIO()
    workbook = xlsxwriter.Workbook(out, {"in_memory": True, "strings_to_formulas": False,
                                         "strings_to_urls": False})
    bold = workbook.add_format({"bold": True, "text_wrap": True, "valign": "top"})
    day = workbook.add_format({"num_format": "dd.mm.yyyy"})
    percent = workbook.add_format({"num_format": "0.0%"})
    sheet = workbook.add_worksheet(sheet_title[:31])
    sheet.write_row(0, 0, header, bold)
    sheet.freeze_panes(1, 2)
    for r, row in enumerate(rows, start=1):
        for c, value in enumerate(row):
            if isinstance(value, date):
                sheet.write_datetime(r, c, value, day)
            elif isinstance(value, float):
                sheet.write_number(r, c, value, percent)
            elif value is None:
                sheet.write_blank(r, c, None)
            else:
                sheet.write(r, c, value)
    sheet.set_column(0, 0, 11)
    sheet.set_column(1, 1, 32)
    sheet.set_column(2, max(len(header) - 1, 2), 14)
    sheet.autofilter(0, 0, len(rows), len(header) - 1)
    notes = workbook.add_worksheet(_("Erläuterung"))
    notes.set_column(0, 0, 120)
    for r, line in enumerate(description):
        notes.write_string(r, 0, line, bold if r == 0 else None)
    workbook.close()
    return out.getvalue()


def filename(stem, filters, extension):
    return f"{stem}-{filters.first.isoformat()}-{filters.last.isoformat()}.{extension}"
