"""CSV export of an event's registrations, for the check-in desk and reach reporting.

One row per registration with its municipality and district, so a
spreadsheet can count municipalities reached. The cells are made
spreadsheet-safe and the file is written as the subscriber export is
(`;`, UTF-8 with BOM, for German Excel), by the same helpers.
"""
import csv
import io

from events.services import local
from subscribers.csvio import EXPORT_DELIMITER, UTF8_BOM, guard_formula

EXPORT_COLUMNS = (
    "event", "slot_start", "name", "email", "ags", "municipality", "district", "status", "answer",
    "waiting_position", "attendance", "registered_at",
)


def local_stamp(value):
    """dd.mm.yyyy HH:MM in Europe/Berlin, as a German spreadsheet reads a date and time."""
    return f"{local(value):%d.%m.%Y %H:%M}" if value else ""


def export_row(event, registration):
    return [
        event.title,
        local_stamp(registration.slot.starts_at),
        registration.name,
        registration.email,
        registration.municipality_ags,
        registration.municipality.name,
        registration.district_key,
        registration.status,
        registration.partstat,
        registration.waiting_position,
        registration.attendance,
        local_stamp(registration.created_at),
    ]


def export_registrations(event, registrations):
    """The registrations (in the order given) as CSV bytes."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=EXPORT_DELIMITER, lineterminator="\r\n")
    writer.writerow(EXPORT_COLUMNS)
    for registration in registrations:
        writer.writerow([guard_formula(value) for value in export_row(event, registration)])
    return UTF8_BOM + out.getvalue().encode("utf-8")


def export_filename(event, today):
    return f"anmeldungen-{event.district_key}-{event.id}-{today.isoformat()}.csv"
