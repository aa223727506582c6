"""CSV import and export of a district's contacts (Kontakte).

The file format:

* a header row naming the columns, in any order and any case: `datum`,
  `gemeinden` and `art` are required, `themen` and `notiz` optional; other
  columns are ignored, so a file from the export can be imported again;
* `datum` as 21.11.2026 or 2026-11-21; a contact has happened, so no date
  after today (Europe/Berlin) and none before 2000;
* `gemeinden` as AGS or as a name, matched within the district as the
  subscriber import does (`directory.matching`: "Sindelfingen, Stadt",
  "sindelfingen", "Boeblingen"), several separated by `;` or `|`;
* `art` as code (`vor_ort`) or German label (Vor-Ort-Termin, Telefon, …);
* `themen` as names of the district's topics separated by `;` or `|`;
* `,` or `;` as delimiter, UTF-8 with or without BOM or Windows-1252: the
  reading helpers of the subscriber import (`subscribers.csvio`), so both
  imports accept the same files and report problems the same way.

Every bad row is reported with line, value and reason and skipped; the valid
rows are imported. A file that can not be read as a whole (empty, binary,
wrong header) is one error and nothing is written. The values are checked by
the same functions as the pages' and the API's (`reach.contacts`).
Nothing here commits.
"""
import csv
import datetime as dt
import re
from dataclasses import dataclass

from flask_babel import force_locale
from flask_babel import gettext as _

from core import spreadsheet
from core.extensions import db
from directory import matching
from reach import contacts
from reach.contacts import KIND_LABELS, ContactError, DistrictChoices
from subscribers.csvio import (
    FORMAT,
    INVALID,
    MUNICIPALITY,
    TOPIC,
    ImportPlan,
    ImportResult,
    RowProblem,
    decode,
    records,
    shorten,
    unescape,
)

REQUIRED_COLUMNS = ("datum", "gemeinden", "art")
OPTIONAL_COLUMNS = ("themen", "notiz")
# German headers; the import reads them back (it compares column names ignoring case).
EXPORT_COLUMNS = ("Datum", "Gemeinden", "Gemeindenamen", "Art", "Themen", "Notiz", "Erfasst am")
LIST_SEPARATOR = re.compile(r"[;|]")
EXPORT_SEPARATOR = "; "


@dataclass
class ContactRow:
    """A valid row: the values `reach.contacts.validate_contact` returns, and where they came from."""

    line: int
    date: dt.date
    kind: str
    municipalities: list
    topics: list
    note: str

    @property
    def cleaned(self):
        return {"date": self.date, "kind": self.kind, "municipalities": self.municipalities,
                "topics": self.topics, "note": self.note}


def _fold(text):
    return " ".join(text.split()).casefold()


class _Directory:
    """The district's municipalities (matched by `directory.matching`) and its topics by name."""

    def __init__(self, district):
        self.district = district
        self.choices = DistrictChoices(district.key)
        self.matcher = matching.MunicipalityMatcher(self.choices.municipalities.values())
        self.topics = {_fold(topic.name): topic for topic in self.choices.topics.values()}

    def municipality(self, token):
        """(AGS, None) or (None, reason) for one entry of the `gemeinden` cell."""
        found = self.matcher.match(token)
        if found.found:
            return found.municipality.ags, None
        if found.status == matching.AMBIGUOUS:
            return None, _("Mehrdeutig: %(names)s; bitte den vollen Namen oder den AGS angeben",
                           names=", ".join(f"{m.name} ({m.ags})" for m in found.candidates))
        code = token.replace(" ", "")
        if code.isascii() and code.isdigit():
            return None, _("Kein Gemeindeschlüssel (AGS) des Kreises %(name)s", name=self.district.name)
        if found.candidates:
            return None, _("Unbekannte Gemeinde im Kreis %(name)s; ähnlich: %(names)s", name=self.district.name,
                           names=", ".join(f"{m.name} ({m.ags})" for m in found.candidates))
        return None, _("Keine Gemeinde des Kreises %(name)s", name=self.district.name)


# --- reading -------------------------------------------------------------------------


def read_header(text):
    """(delimiter, {column: index}, number of columns) from the first non-blank line, else ValueError."""
    first = next(filter(str.strip, text.splitlines()), None)
    if first is None:
        raise ValueError(_("Die Datei ist leer."))
    candidates = {
        delimiter: [unescape(name).casefold() for name in next(csv.reader([first], delimiter=delimiter))]
        for delimiter in (",", ";")
    }
    delimiter = next((d for d, names in candidates.items() if set(REQUIRED_COLUMNS) <= set(names)), None)
    if delimiter is None:
        raise ValueError(_(
            "Die erste Zeile muss die Spaltennamen enthalten (Pflicht: %(required)s; optional: %(optional)s), "
            "getrennt durch Komma oder Semikolon. Gefunden: %(found)s",
            required=", ".join(REQUIRED_COLUMNS), optional=", ".join(OPTIONAL_COLUMNS), found=shorten(first),
        ))
    columns = {}
    for index, name in enumerate(candidates[delimiter]):
        if name in REQUIRED_COLUMNS + OPTIONAL_COLUMNS:
            if name in columns:
                raise ValueError(_("Die Spalte %(names)s steht mehrfach in der Kopfzeile.", names=name))
            columns[name] = index
    return delimiter, columns, len(candidates[delimiter])


def _split(cell):
    return [part.strip() for part in LIST_SEPARATOR.split(cell) if part.strip()]


def check_date(cell, line, directory):
    try:
        return contacts.clean_date(cell), None
    except ContactError as error:
        return None, RowProblem(line, shorten(cell), str(error), INVALID)


def check_municipalities(cell, line, directory):
    codes, problems = [], []
    for token in _split(cell):
        code, reason = directory.municipality(token)
        if code:
            codes.append(code)
        else:
            problems.append(RowProblem(line, shorten(token), reason, MUNICIPALITY))
    if problems:
        return None, problems[0] if len(problems) == 1 else _joined(line, problems, MUNICIPALITY)
    try:
        return directory.choices.clean_municipalities(codes), None
    except ContactError as error:
        return None, RowProblem(line, shorten(cell), str(error), MUNICIPALITY)


def _joined(line, problems, kind):
    return RowProblem(line, shorten("; ".join(p.value for p in problems)),
                      "; ".join(dict.fromkeys(p.reason for p in problems)), kind)


def check_kind(cell, line, directory):
    code = contacts.kind_from_label(cell)
    if code:
        return code, None
    with force_locale("de"):
        allowed = ", ".join(str(label) for label in KIND_LABELS.values())
    reason = _("Unbekannte Art des Kontakts (erlaubt: %(kinds)s)", kinds=allowed) if cell else \
        _("Art des Kontakts fehlt")
    return None, RowProblem(line, shorten(cell), reason, INVALID)


def check_topics(cell, line, directory):
    names = _split(cell)
    unknown = [name for name in names if _fold(name) not in directory.topics]
    if unknown:
        return None, RowProblem(line, shorten("; ".join(unknown)), _("Unbekanntes Thema"), TOPIC)
    return list(dict.fromkeys(directory.topics[_fold(name)] for name in names)), None


def check_note(cell, line, directory):
    try:
        return contacts.clean_note(cell), None
    except ContactError as error:
        return None, RowProblem(line, shorten(cell), str(error), FORMAT)


CHECKS = (("datum", "date", check_date), ("gemeinden", "municipalities", check_municipalities),
          ("art", "kind", check_kind), ("themen", "topics", check_topics), ("notiz", "note", check_note))


def check_record(line, values, columns, width, directory):
    """(ContactRow or None, [problems]) for one record."""
    while len(values) > width and not values[-1].strip():
        values = values[:-1]  # trailing empty cells, as spreadsheets write them
    if len(values) != width:
        return None, [RowProblem(line, shorten(spreadsheet.DELIMITER.join(values)), _(
            "%(found)d Spalten statt %(expected)d", found=len(values), expected=width), FORMAT)]
    found, problems = {}, []
    for column, name, check in CHECKS:
        index = columns.get(column)
        found[name], problem = check(unescape(values[index]) if index is not None else "", line, directory)
        problems += [problem] if problem else []
    if problems:
        return None, problems
    return ContactRow(line=line, **found), []


def read_import(district, data):
    """Check `data` (the file's bytes) against the district's directory and topics. Writes nothing."""
    plan = ImportPlan()
    try:
        text, plan.encoding = decode(data or b"")
        plan.delimiter, columns, width = read_header(text)  # says when the file is empty
        directory = _Directory(district)
        for line, values, _end in records(text, plan.delimiter):
            row, problems = check_record(line, values, columns, width, directory)
            plan.problems += problems
            plan.rows += [row] if row else []
        if not plan.rows and not plan.problems:
            raise ValueError(_("Die Datei enthält nur die Kopfzeile, keine Kontakte."))
    except ValueError as exc:
        return ImportPlan(error=str(exc), encoding=plan.encoding, delimiter=plan.delimiter)
    return plan


# --- writing ------------------------------------------------------------------------


def import_contacts(district, data, created_by=None, dry_run=False):
    """Read and, unless `dry_run` or unreadable, add the valid rows. Does not commit."""
    plan = read_import(district, data)
    if dry_run or not plan.readable:
        return ImportResult(plan, [])
    added = [contacts.build_contact(district.key, row.cleaned, created_by) for row in plan.rows]
    db.session.flush()
    return ImportResult(plan, added)


# --- export --------------------------------------------------------------------------


def export_row(contact):
    return [
        contact.date,
        EXPORT_SEPARATOR.join(m.ags for m in contact.municipalities),
        EXPORT_SEPARATOR.join(m.name for m in contact.municipalities),
        str(KIND_LABELS[contact.kind]),
        EXPORT_SEPARATOR.join(topic.name for topic in contact.topics),
        contact.note,
        contact.created_at,
    ]


def export_table(district_key, filters=None):
    """(header, rows) of the district's contacts (newest first), German in every locale."""
    with force_locale("de"):
        rows = [export_row(contact) for contact in
                db.session.execute(contacts.contact_query(district_key, filters)).scalars()]
    return list(EXPORT_COLUMNS), rows


def export_file(district_key, filters=None, extension="csv"):
    """CSV (`;`, UTF-8 with BOM) or XLSX bytes, by the one writer of all exports."""
    header, rows = export_table(district_key, filters)
    if extension == "xlsx":
        return spreadsheet.to_xlsx(header, rows, "Kontakte", widths=[11, 24, 36, 20, 24, 48, 17])
    return spreadsheet.to_csv(header, rows)


def export_csv(district_key, filters=None):
    return export_file(district_key, filters, "csv")


def export_filename(district_key, today, extension="csv"):
    return f"kontakte-{district_key}-{today.isoformat()}.{extension}"
