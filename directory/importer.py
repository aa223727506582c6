"""Importing the official directory of districts (Kreise) and municipalities (Gemeinden).

Two steps, so that bad input never leaves half a directory behind: `read_*`
parses and checks a whole file and returns its rows together with every
problem found (with the line number an editor shows), then `write_directory`
upserts the rows. Callers write only when there is no problem at all, and
commit once.

Rows are never deleted: a municipality missing from a newer list may still
carry subscribers, and merged municipalities are for a person to resolve.
"""
import csv
import io
import re
from dataclasses import asdict, dataclass, field

from flask_babel import gettext as _
from sqlalchemy import select

from core.extensions import db
from directory.models import DISTRICT_KINDS, District, Municipality

DISTRICT_COLUMNS = ("district_key", "name", "kind")
MUNICIPALITY_COLUMNS = ("ags", "name", "district_key")
DISTRICT_KEY = re.compile(r"[0-9]{5}")  # not \d: that would accept any Unicode digit
AGS = re.compile(r"[0-9]{8}")
MAX_NAME_LENGTH = 200  # the width of the name columns


@dataclass(frozen=True)
class DistrictRow:
    key: str
    name: str
    kind: str


@dataclass(frozen=True)
class MunicipalityRow:
    ags: str
    name: str
    district_key: str


@dataclass
class Problem:
    source: str
    line: int
    reason: str

    def __str__(self):
        return _("%(source)s, Zeile %(line)d: %(reason)s", source=self.source, line=self.line, reason=self.reason)


@dataclass
class Parsed:
    """The rows of one file, the problems found in it, and the line of each row."""

    rows: list = field(default_factory=list)
    problems: list = field(default_factory=list)
    lines: dict = field(default_factory=dict)
    readable: bool = True  # False when the file could not be decoded or its header is wrong


@dataclass
class Counts:
    new: int = 0
    changed: int = 0
    unchanged: int = 0


# --- reading -------------------------------------------------------------


def decode(data, source):
    """The text of a UTF-8 file (a BOM is allowed), or a Problem naming the first bad line."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        return None, Problem(source, line, _("Die Datei ist nicht UTF-8-kodiert (bitte als UTF-8 speichern)."))


def csv_records(text, source, columns, parsed):
    """Yield (line, values) for each data row after checking the header and column count."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    header_seen = False
    while True:
        line = reader.line_num + 1
        try:
            values = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            reason = _("Die Zeile ist kein gültiges CSV; bitte die Anführungszeichen prüfen (%(reason)s).", reason=exc)
            parsed.problems.append(Problem(source, line, reason))
            parsed.readable = False  # the rows after it are unknown, so its keys cannot vouch for others
            return
        if not any(value.strip() for value in values):
            continue  # blank lines carry nothing
        if not header_seen:
            if tuple(value.strip() for value in values) != columns:
                parsed.problems.append(Problem(source, line, _(
                    "Falsche Kopfzeile; erwartet: %(expected)s", expected=",".join(columns)
                )))
                parsed.readable = False
                return
            header_seen = True
            continue
        if len(values) != len(columns):
            parsed.problems.append(Problem(source, line, _(
                "%(found)d Spalten statt %(expected)d.", found=len(values), expected=len(columns)
            )))
            continue
        yield line, [value.strip() for value in values]
    if not header_seen:
        parsed.problems.append(Problem(source, 1, _("Die Datei ist leer; erwartet wird die Kopfzeile %(expected)s.",
                                                    expected=",".join(columns))))
        parsed.readable = False


def read_rows(data, source, columns, check_row, key_of):
    """Parse `data` (bytes) with `check_row(values) -> (row, reasons)`; duplicates of `key_of(row)` are refused."""
    parsed = Parsed()
    text, problem = decode(data, source)
    if problem is not None:
        parsed.problems.append(problem)
        parsed.readable = False
        return parsed
    for line, values in csv_records(text, source, columns, parsed):
        row, reasons = check_row(values)
        key = key_of(row)
        if key in parsed.lines:
            reasons.append(_("Schlüssel %(key)s kommt doppelt vor (zuerst in Zeile %(first)d).",
                             key=key, first=parsed.lines[key]))
        else:
            parsed.lines[key] = line
        parsed.problems.extend(Problem(source, line, reason) for reason in reasons)
        if not reasons:
            parsed.rows.append(row)
    return parsed


def name_problems(name):
    if not name:
        return [_("Der Name ist leer.")]
    if "\n" in name or "\r" in name:
        return [_("Der Name enthält einen Zeilenumbruch.")]
    if len(name) > MAX_NAME_LENGTH:
        return [_("Der Name ist länger als %(n)d Zeichen.", n=MAX_NAME_LENGTH)]
    return []


def check_district(values):
    row = DistrictRow(*values)
    reasons = []
    if not DISTRICT_KEY.fullmatch(row.key):
        reasons.append(_("Kreisschlüssel %(key)s hat nicht genau 5 Ziffern.", key=repr(row.key)))
    reasons += name_problems(row.name)
    if row.kind not in DISTRICT_KINDS:
        reasons.append(_("Art %(kind)s ist weder Landkreis noch Stadtkreis.", kind=repr(row.kind)))
    return row, reasons


def check_municipality(values):
    row = MunicipalityRow(*values)
    reasons = []
    if not AGS.fullmatch(row.ags):
        reasons.append(_("Gemeindeschlüssel %(ags)s hat nicht genau 8 Ziffern.", ags=repr(row.ags)))
    reasons += name_problems(row.name)
    if not DISTRICT_KEY.fullmatch(row.district_key):
        reasons.append(_("Kreisschlüssel %(key)s hat nicht genau 5 Ziffern.", key=repr(row.district_key)))
    elif AGS.fullmatch(row.ags) and row.ags[:5] != row.district_key:
        reasons.append(_("Gemeindeschlüssel %(ags)s beginnt nicht mit seinem Kreisschlüssel %(key)s.",
                         ags=row.ags, key=row.district_key))
    return row, reasons


def read_districts(data, source):
    return read_rows(data, source, DISTRICT_COLUMNS, check_district, lambda row: row.key)


def read_municipalities(data, source, known_district_keys):
    """`known_district_keys` None skips the check (when the districts file itself was unreadable)."""
    parsed = read_rows(data, source, MUNICIPALITY_COLUMNS, check_municipality, lambda row: row.ags)
    if known_district_keys is None:
        return parsed
    unknown = [row for row in parsed.rows if row.district_key not in known_district_keys]
    for row in unknown:
        parsed.problems.append(Problem(source, parsed.lines[row.ags], _(
            "Unbekannter Kreis %(key)s (weder in der Kreisdatei noch in der Datenbank).", key=row.district_key
        )))
    parsed.rows = [row for row in parsed.rows if row.district_key in known_district_keys]
    parsed.problems.sort(key=lambda problem: problem.line)
    return parsed


# --- writing -------------------------------------------------------------


def upsert(model, key, rows):
    """Insert new rows and update changed ones; returns Counts. Does not commit.

    The row dataclasses name their fields like the model's attributes.
    """
    counts = Counts()
    column = getattr(model, key)
    wanted = [asdict(row) for row in rows]
    existing = {
        getattr(obj, key): obj
        for obj in db.session.execute(select(model).where(column.in_([values[key] for values in wanted]))).scalars()
    }
    for values in wanted:
        obj = existing.get(values[key])
        if obj is None:
            db.session.add(model(**values))
            counts.new += 1
        elif any(getattr(obj, attr) != value for attr, value in values.items()):
            for attr, value in values.items():
                setattr(obj, attr, value)
            counts.changed += 1
        else:
            counts.unchanged += 1
    db.session.flush()  # districts must exist before their municipalities refer to them
    return counts


def write_directory(districts=(), municipalities=()):
    """Upsert checked rows; returns (district Counts, municipality Counts). Does not commit."""
    return upsert(District, "key", districts), upsert(Municipality, "ags", municipalities)


def stored_district_keys():
    return set(db.session.execute(select(District.key)).scalars())


@dataclass
class ImportResult:
    problems: list
    districts: Counts | None = None
    municipalities: Counts | None = None

    @property
    def ok(self):
        return not self.problems


def import_directory(districts=None, municipalities=None):
    """Check and, when everything is valid, write the given files.

    `districts` and `municipalities` are (bytes, source name) pairs or None.
    Nothing is written when any problem is found. Does not commit.
    """
    parsed_districts = read_districts(*districts) if districts else Parsed()
    parsed_municipalities = Parsed()
    if municipalities:
        known = None
        if parsed_districts.readable:
            known = stored_district_keys() | set(parsed_districts.lines)
        parsed_municipalities = read_municipalities(*municipalities, known)
    problems = parsed_districts.problems + parsed_municipalities.problems
    if problems:
        return ImportResult(problems)
    district_counts, municipality_counts = write_directory(parsed_districts.rows, parsed_municipalities.rows)
    return ImportResult(
        [],
        district_counts if districts else None,
        municipality_counts if municipalities else None,
    )
