"""The district and state tables as CSV (for German Excel) and XLSX, for the programme's reporting.

Written by the one writer of all exports (`core.spreadsheet`): CSV with `;`,
UTF-8 with BOM and guarded cells; XLSX where numbers stay numbers, dates are
dates, and a second sheet states period, filters and definition. Headers and
labels are German in every locale (the views force it), as in every export.
What a viewer exports is what a viewer sees: suppressed cells are ".".
"""
from flask_babel import gettext as _

from core import spreadsheet
from reach.definition import CHANNEL_LABELS, LEVEL_BY_NUMBER
from reach.period import PRESETS

SUPPRESSED = "."


def _yes(value):
    return _("ja") if value else _("nein")


def _share(value):
    return None if value is None else spreadsheet.Share(value)


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
        row = [line.district.key, line.district.display_name, s.total, s.listed, s.reached, _share(s.share(s.reached)),
               s.active, _share(s.share(s.active))]
        for level in report.levels:
            row += [s.ladder.get(level, 0), _share(s.share(s.ladder.get(level, 0)))]
        row.append(s.last)
        rows.append(row)
    return header, rows


def to_csv(header, rows):
    return spreadsheet.to_csv(header, rows)


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
    """Numbers stay numbers, dates are dates, shares are percent; a second sheet says what the table is."""
    widths = [11, 32] + [14] * max(len(header) - 2, 0)
    return spreadsheet.to_xlsx(header, rows, sheet_title, description=description, widths=widths,
                               frozen_columns=2, notes_title=_("Erläuterung"))


def filename(stem, filters, extension):
    return f"{stem}-{filters.first.isoformat()}-{filters.last.isoformat()}.{extension}"
