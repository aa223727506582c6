"""Export of an event's registrations (CSV and XLSX), for the check-in desk and reach reporting.

One row per registration with its municipality and district, so a
spreadsheet can count municipalities reached. German headers and the German
labels of the pages (eingeladen, angemeldet, Warteliste, zugesagt, nicht
erschienen …), never the stored codes or iCalendar words, in every locale;
written by the one writer of all exports (`core.spreadsheet`).
"""
from flask_babel import force_locale

from core import spreadsheet
from events.labels import ATTENDANCE_LABELS, PARTSTAT_LABELS, REGISTRATION_LABELS

EXPORT_COLUMNS = (
    "Veranstaltung", "Beginn", "Name", "E-Mail", "AGS", "Gemeinde", "Kreisschlüssel", "Status", "Antwort",
    "Platz auf der Warteliste", "Teilnahme", "Erfasst am",
)


def _label(labels, code):
    return str(labels[code]) if code in labels else (code or "")


def export_row(event, registration):
    return [
        event.title,
        registration.slot.starts_at,
        registration.name,
        registration.email,
        registration.municipality_ags,
        registration.municipality.name,
        registration.district_key,
        _label(REGISTRATION_LABELS, registration.status),
        _label(PARTSTAT_LABELS, registration.partstat),
        registration.waiting_position,
        _label(ATTENDANCE_LABELS, registration.attendance),
        registration.created_at,
    ]


def export_table(event, registrations):
    """(header, rows) of the registrations in the order given, German in every locale."""
    with force_locale("de"):
        return list(EXPORT_COLUMNS), [export_row(event, registration) for registration in registrations]


def export_registrations(event, registrations, extension="csv"):
    """The registrations as CSV (`;`, UTF-8 with BOM) or XLSX bytes."""
    header, rows = export_table(event, registrations)
    if extension == "xlsx":
        return spreadsheet.to_xlsx(header, rows, "Anmeldungen", widths=[28, 17, 24, 30, 10, 24, 12, 12, 18, 10, 16, 17])
    return spreadsheet.to_csv(header, rows)


def export_filename(event, today, extension="csv"):
    return f"anmeldungen-{event.district_key}-{event.id}-{today.isoformat()}.{extension}"
