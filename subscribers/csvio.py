"""CSV import and export of a district's subscriber list.

Import in two steps, like the directory import: `read_import` parses and
checks a whole file against the list as it is now and returns the rows that
can be added together with every problem (line, value, reason); `apply_import`
adds those rows. The web page shows the parse as a preview and parses again on
confirmation, since the list may have changed in between. Nothing commits here.

The file format:

* a header row naming the columns, in any order and any case: `email` and
  `ags` are required, `name`, `topics` and `department` optional; other
  columns are ignored, so a file from the export can be imported again;
* `,` or `;` as delimiter (taken from the header row), UTF-8 with or without
  BOM, else Windows-1252 (what German Excel writes as "CSV");
* several topics in one cell separated by `;`. In a `;`-delimited file that
  cell must be quoted (`"DMS;OZG"`), as every spreadsheet and the export do;
* a 7-digit AGS is taken as the 8-digit one whose leading zero a spreadsheet
  dropped (08115003 → 8115003), and the `'` the export puts in front of cells
  a spreadsheet would execute is removed again.

A row is skipped with a problem when its address is invalid, already in the
file or on the list, or suppressed; when its AGS is not a municipality of the
district; when a topic is unknown; when its name is too long or its column
count wrong. Suppressed addresses (unsubscribed, bounced, complained, erased)
are refused in both modes: even a confirmation mail would be mail to someone
who left the list, and only they can rejoin, through the public form.
"""
import csv
import io
import re
from dataclasses import dataclass, field
from datetime import timezone

from flask_babel import gettext as _
from sqlalchemy import select

from core.extensions import db
from directory.models import Municipality
from subscribers import services
from subscribers.consent import MAIL_CONSENT_VERSION
from subscribers.models import Subscriber, utcnow

MAX_UPLOAD_BYTES = 5 * 1024 * 1024
REQUIRED_COLUMNS = ("email", "ags")
OPTIONAL_COLUMNS = ("name", "topics", "department")
TOPIC_SEPARATOR = ";"
MAX_TEXT_LENGTH = 200  # name and department columns
MAX_SHOWN_VALUE = 80  # a problem quotes at most this much of the offending value

EXPORT_COLUMNS = (
    "email", "name", "ags", "municipality", "topics", "status", "department", "consent_source",
    "consent_text_version", "consent_requested_at", "consent_confirmed_at", "created_at",
)
# A spreadsheet runs a cell starting with one of these as a formula.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
EXPORT_DELIMITER = ";"  # what German Excel expects
UTF8_BOM = b"\xef\xbb\xbf"
AGS = re.compile(r"[0-9]{8}")

# Problem kinds, for callers that group or count them.
INVALID, MUNICIPALITY, DUPLICATE, SUPPRESSED, TOPIC, FORMAT = (
    "invalid", "municipality", "duplicate", "suppressed", "topic", "format",
)


@dataclass
class RowProblem:
    line: int  # physical line in the file; the header is line 1
    value: str
    reason: str
    kind: str

    def __str__(self):
        return _("Zeile %(line)d: %(value)s: %(reason)s", line=self.line, value=self.value or "–", reason=self.reason)


@dataclass
class ImportRow:
    line: int
    email: str
    email_key: str
    name: str
    ags: str
    department: str
    topics: list


@dataclass
class ImportPlan:
    """The outcome of reading a file: rows to add and problems, or a file-level `error`."""

    rows: list = field(default_factory=list)
    problems: list = field(default_factory=list)
    error: str | None = None
    encoding: str | None = None
    delimiter: str | None = None

    @property
    def readable(self):
        return self.error is None

    @property
    def rejected_lines(self):
        """How many rows are skipped (a row can have several problems)."""
        return len({problem.line for problem in self.problems})


def shorten(value):
    value = " ".join(str(value).split())
    return value if len(value) <= MAX_SHOWN_VALUE else value[:MAX_SHOWN_VALUE - 1] + "…"


# --- reading -------------------------------------------------------------


def decode(data):
    """(text, encoding) of the file, or raise ValueError with the reason fit to show."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ValueError(_("Die Datei ist UTF-16-kodiert; bitte als „CSV UTF-8“ speichern."))
    if data.startswith(b"PK\x03\x04"):
        raise ValueError(_("Das ist eine Excel- oder andere ZIP-Datei, keine CSV-Datei; bitte als CSV speichern."))
    if b"\x00" in data:
        raise ValueError(_("Die Datei ist keine Textdatei; erwartet wird eine CSV-Datei."))
    if data.startswith(UTF8_BOM):
        try:
            return data[len(UTF8_BOM):].decode("utf-8"), "utf-8-sig"
        except UnicodeDecodeError as exc:
            line = data.count(b"\n", 0, exc.start) + 1
            raise ValueError(_(
                "Die Datei ist als UTF-8 gekennzeichnet, Zeile %(line)d ist es aber nicht.", line=line
            )) from None
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252"), "cp1252"
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ValueError(_(
            "Zeile %(line)d ist weder UTF-8 noch Windows-1252; bitte als „CSV UTF-8“ speichern.", line=line
        )) from None


def unescape(value):
    """Undo the export's formula guard, then trim."""
    if len(value) > 1 and value[0] == "'" and value[1] in FORMULA_PREFIXES:
        value = value[1:]
    return value.strip()


def header_columns(text):
    """(delimiter, {column name: index}, number of columns) from the first non-blank line, or ValueError."""
    first = next((line for line in text.splitlines() if line.strip()), None)
    if first is None:
        raise ValueError(_("Die Datei ist leer."))
    expected = _("Pflicht: %(required)s; optional: %(optional)s",
                 required=", ".join(REQUIRED_COLUMNS), optional=", ".join(OPTIONAL_COLUMNS))
    for delimiter in (",", ";"):
        names = [unescape(name).lower() for name in next(csv.reader([first], delimiter=delimiter))]
        if all(column in names for column in REQUIRED_COLUMNS):
            break
    else:
        raise ValueError(_(
            "Die erste Zeile muss die Spaltennamen enthalten (%(expected)s), getrennt durch Komma oder "
            "Semikolon. Gefunden: %(found)s", expected=expected, found=shorten(first),
        ))
    known = [name for name in names if name in REQUIRED_COLUMNS + OPTIONAL_COLUMNS]
    twice = sorted({name for name in known if known.count(name) > 1})
    if twice:
        raise ValueError(_("Die Spalte %(names)s steht mehrfach in der Kopfzeile.", names=", ".join(twice)))
    return delimiter, {name: index for index, name in enumerate(names) if name in known}, len(names)


def records(text, delimiter):
    """Yield (line, values) for every non-blank record after the header; ValueError on broken CSV."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header_seen = False
    last_line = 0
    while True:
        line = last_line + 1
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise ValueError(_("Zeile %(line)d ist kein gültiges CSV (%(reason)s).", line=line, reason=exc)) from None
        last_line = reader.line_num
        if not any(value.strip() for value in values):
            continue
        if not header_seen:
            header_seen = True
            continue
        yield line, values, last_line


class _ListState:
    """What the list holds now, loaded once per import instead of once per row."""

    def __init__(self, district):
        self.district = district
        self.statuses = dict(db.session.execute(
            select(Subscriber.email_key, Subscriber.status).where(Subscriber.district_key == district.key)
        ).all())
        self.suppressed = services.suppressed_hashes(district.key)
        self.municipalities = set(db.session.execute(
            select(Municipality.ags).where(Municipality.district_key == district.key)
        ).scalars())
        self.topics = {topic.name.casefold(): topic for topic in services.district_topics(district.key)}


def check_address(raw, line, state, seen):
    """(address, key, problem or None)."""
    try:
        address, key = services.normalize_address(raw)
    except services.SubscriberError:
        return None, None, RowProblem(line, shorten(raw), _("Ungültige E-Mail-Adresse"), INVALID)
    if key in seen:
        return address, key, RowProblem(line, shorten(raw), _(
            "Doppelt in der Datei (zuerst in Zeile %(first)d)", first=seen[key]
        ), DUPLICATE)
    seen[key] = line
    status = state.statuses.get(key)
    if status in services.SUPPRESSING_STATUSES:
        return address, key, RowProblem(line, shorten(raw), _(
            "Gesperrt: die Adresse steht mit dem Status „%(status)s“ in der Liste; nur die Person selbst kann "
            "sich über das Anmeldeformular wieder anmelden", status=services.STATUS_LABELS[status],
        ), SUPPRESSED)
    if status is not None:
        return address, key, RowProblem(line, shorten(raw), _(
            "Steht bereits in der Liste (%(status)s)", status=services.STATUS_LABELS[status]
        ), DUPLICATE)
    if state.suppressed and services.address_hash(key) in state.suppressed:
        return address, key, RowProblem(line, shorten(raw), _(
            "Gesperrt: die Adresse steht auf der Sperrliste (abgemeldet, unzustellbar oder gelöscht); nur die "
            "Person selbst kann sich über das Anmeldeformular wieder anmelden"
        ), SUPPRESSED)
    return address, key, None


def check_municipality(raw, line, state):
    ags = raw.replace(" ", "")
    if len(ags) == 7 and ags.isascii() and ags.isdigit():
        ags = "0" + ags  # a spreadsheet dropped the leading zero
    if AGS.fullmatch(ags) and ags in state.municipalities:
        return ags, None
    if not ags:
        reason = _("Gemeindeschlüssel (AGS) fehlt")
    else:
        reason = _("Unbekannte Gemeinde: kein Gemeindeschlüssel (AGS) des Kreises %(name)s", name=state.district.name)
    return None, RowProblem(line, shorten(raw), reason, MUNICIPALITY)


def check_topics(raw, line, state):
    names = [name.strip() for name in raw.split(TOPIC_SEPARATOR)]
    topics, unknown = [], []
    for name in filter(None, names):
        topic = state.topics.get(name.casefold())
        if topic is None:
            unknown.append(name)
        elif topic not in topics:
            topics.append(topic)
    if unknown:
        return topics, RowProblem(line, shorten("; ".join(unknown)), _("Unbekanntes Thema"), TOPIC)
    return topics, None


def check_text(raw, line, reason):
    text = " ".join(raw.split())
    if len(text) > MAX_TEXT_LENGTH:
        return text, RowProblem(line, shorten(text), reason, FORMAT)
    return text, None


def check_record(line, end_line, values, columns, width, state, seen):
    """(ImportRow or None, [problems]) for one record."""
    if len(values) > width and not any(value.strip() for value in values[width:]):
        values = values[:width]  # trailing empty cells, as spreadsheets write them
    if len(values) != width:
        return None, [RowProblem(line, shorten(",".join(values)), _(
            "%(found)d Spalten statt %(expected)d", found=len(values), expected=width
        ), FORMAT)]
    if any("\n" in value or "\r" in value for value in values):
        return None, [RowProblem(line, shorten(" ".join(values)), _(
            "Zeilenumbruch in einem Feld (die Zeile reicht bis Zeile %(end)d); fehlt ein schließendes "
            "Anführungszeichen?", end=end_line,
        ), FORMAT)]
    cell = {name: unescape(values[index]) for name, index in columns.items()}
    address, key, problem = check_address(cell["email"], line, state, seen)
    problems = [problem] if problem else []
    ags, problem = check_municipality(cell["ags"], line, state)
    problems += [problem] if problem else []
    name, problem = check_text(cell.get("name", ""), line, _(
        "Der Name ist länger als %(n)d Zeichen", n=MAX_TEXT_LENGTH))
    problems += [problem] if problem else []
    department, problem = check_text(cell.get("department", ""), line, _(
        "Die Dienststelle ist länger als %(n)d Zeichen", n=MAX_TEXT_LENGTH))
    problems += [problem] if problem else []
    topics, problem = check_topics(cell.get("topics", ""), line, state)
    problems += [problem] if problem else []
    if problems:
        return None, problems
    return ImportRow(line, address, key, name, ags, department, topics), []


def read_import(district, data):
    """Check `data` (the file's bytes) against the district's list as it is now. Writes nothing."""
    plan = ImportPlan()
    try:
        if not data or not data.strip():
            raise ValueError(_("Die Datei ist leer."))
        text, plan.encoding = decode(data)
        plan.delimiter, columns, width = header_columns(text)
        state = _ListState(district)
        seen = {}
        any_record = False
        for line, values, end_line in records(text, plan.delimiter):
            any_record = True
            row, problems = check_record(line, end_line, values, columns, width, state, seen)
            plan.problems += problems
            if row is not None:
                plan.rows.append(row)
        if not any_record:
            raise ValueError(_("Die Datei enthält nur die Kopfzeile, keine Adressen."))
    except ValueError as exc:
        return ImportPlan(error=str(exc), encoding=plan.encoding, delimiter=plan.delimiter)
    return plan


# --- writing -------------------------------------------------------------


def apply_import(district, plan, opt_in=False):
    """Add the plan's rows with consent source `import`; returns the new subscribers. Does not commit.

    Without `opt_in` the coordinator vouches for the consent and the rows are
    active at once (no consent text was shown by this service, so none is
    recorded); with it they are pending, and the caller sends the
    confirmation mails after committing (`jobs.enqueue_subscription_mails`).
    The same rules as `services.add_subscriber`, applied in one flush for
    the whole file.
    """
    if not plan.readable:
        raise ValueError(plan.error)
    now = utcnow()
    version = MAIL_CONSENT_VERSION if opt_in else ""
    added = []
    for row in plan.rows:
        subscriber = Subscriber(
            district_key=district.key, email=row.email, email_key=row.email_key, name=row.name,
            municipality_ags=row.ags, department=row.department, topics=list(row.topics),
            consent_source="import", status_changed_at=now,
        )
        if opt_in:
            services.start_opt_in(subscriber, "import", version)
        else:
            subscriber.status = "active"
            subscriber.consent_text_version = version
            subscriber.consent_requested_at = now
            subscriber.consent_confirmed_at = now
        added.append(subscriber)
    db.session.add_all(added)
    db.session.flush()
    return added


@dataclass
class ImportResult:
    plan: ImportPlan
    added: list

    @property
    def imported(self):
        return len(self.added)


def import_subscribers(district, data, opt_in=False, dry_run=False):
    """Read and, unless `dry_run` or unreadable, apply. Does not commit."""
    plan = read_import(district, data)
    if dry_run or not plan.readable:
        return ImportResult(plan, [])
    return ImportResult(plan, apply_import(district, plan, opt_in=opt_in))


# --- export --------------------------------------------------------------


def guard_formula(value):
    """A cell a spreadsheet would run as a formula gets a leading `'` and stays text."""
    value = "" if value is None else str(value)
    return "'" + value if value.startswith(FORMULA_PREFIXES) else value


def iso_utc(value):
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") if value else ""


def export_row(subscriber):
    return [
        subscriber.email,
        subscriber.name,
        subscriber.municipality_ags,
        subscriber.municipality.name,
        TOPIC_SEPARATOR.join(subscriber.topic_names),
        subscriber.status,
        subscriber.department,
        subscriber.consent_source,
        subscriber.consent_text_version,
        iso_utc(subscriber.consent_requested_at),
        iso_utc(subscriber.consent_confirmed_at),
        iso_utc(subscriber.created_at),
    ]


def export_csv(district):
    """The district's whole list (every status) as CSV bytes: `;`, UTF-8 with BOM, for German Excel."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=EXPORT_DELIMITER, lineterminator="\r\n")
    writer.writerow(EXPORT_COLUMNS)
    for subscriber in db.session.execute(services.subscriber_query(district.key)).scalars():
        writer.writerow([guard_formula(value) for value in export_row(subscriber)])
    return UTF8_BOM + out.getvalue().encode("utf-8")


def export_filename(district, today):
    return f"abonnenten-{district.key}-{today.isoformat()}.csv"
