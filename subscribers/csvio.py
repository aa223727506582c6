"""CSV import and export of a district's subscriber list.

Import in two steps, like the directory import: `read_import` parses and
checks a whole file against the list as it is now and returns the rows that
can be added together with every problem (line, value, reason); `apply_import`
adds those rows. The web page shows the parse as a preview and parses again on
confirmation, since the list may have changed in between. Nothing commits here.

The file format:

* a header row naming the columns, in any order and any case. Which column
  holds what (e-mail, name, municipality, topics, department) is guessed
  from German and English names (`HEADER_ALIASES`: "E-Mail", "email",
  "AGS", "Gemeinde", "municipality", "Themen", …) or given as a `mapping`
  (the preview page lets the coordinator choose); e-mail and municipality
  are required, other columns are ignored, so a file from the export (old
  English or new German headers) can be imported again;
* the municipality as 8-digit AGS or as its name, matched within the
  district by `directory.matching` (case, ", Stadt" and umlaut spelling do
  not matter; an ambiguous or unknown name is reported with the closest
  candidates);
* `,` or `;` as delimiter (taken from the header row), UTF-8 with or without
  BOM, else Windows-1252 (what German Excel writes as "CSV");
* several topics in one cell separated by `;`. In a `;`-delimited file that
  cell must be quoted (`"DMS;OZG"`), as every spreadsheet and the export do;
* a 7-digit AGS is taken as the 8-digit one whose leading zero a spreadsheet
  dropped (08115003 → 8115003), and the `'` the export puts in front of cells
  a spreadsheet would execute is removed again.

A row is skipped with a problem when its address is invalid, already in the
file or on the list, or suppressed; when its municipality is not one of the
district; when its name is too long or its column count wrong. A topic the
district does not have does not reject the row: the plan lists the unknown
topics, and the import either creates them (`create_topics`) or adds the rows
without them. Suppressed addresses (unsubscribed, bounced, complained, erased)
are refused in both modes: even a confirmation mail would be mail to someone
who left the list, and only they can rejoin, through the public form.
"""
import csv
import io
import re
from dataclasses import dataclass, field

from flask_babel import force_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from core import spreadsheet
from core.extensions import db
from core.spreadsheet import FORMULA_PREFIXES, UTF8_BOM
from directory import matching
from directory.models import Municipality
from subscribers import services
from subscribers.consent import MAIL_CONSENT_VERSION
from subscribers.models import Subscriber, utcnow

MAX_UPLOAD_BYTES = 5 * 1024 * 1024
# What a column can hold; e-mail and municipality are required.
FIELDS = ("email", "name", "municipality", "topics", "department")
REQUIRED_FIELDS = ("email", "municipality")
FIELD_LABELS = {
    "email": _l("E-Mail-Adresse"),
    "name": _l("Name"),
    "municipality": _l("Gemeinde (AGS oder Name)"),
    "topics": _l("Themen"),
    "department": _l("Dienststelle"),
}
# Header names, normalised by `header_key`, each field is guessed from; earlier ones win
# (a file with both "AGS" and "Gemeinde", as the export, is read by its AGS).
HEADER_ALIASES = {
    "email": ("email", "emailadresse", "mail", "mailadresse", "emailaddress", "emailadress", "adresse"),
    "name": ("name", "vollername", "fullname", "vorundnachname", "person", "ansprechperson", "ansprechpartner"),
    "municipality": ("ags", "gemeindeschluessel", "amtlichergemeindeschluessel", "gemeinde", "municipality",
                     "gemeindename", "kommune", "stadt", "ort"),
    "topics": ("topics", "themen", "thema", "topic", "interessen"),
    "department": ("department", "dienststelle", "abteilung", "amt", "fachbereich", "organisationseinheit"),
}
TOPIC_SEPARATOR = ";"
MAX_TEXT_LENGTH = 200  # name and department columns
MAX_SHOWN_VALUE = 80  # a problem quotes at most this much of the offending value

# The export: German headers and labels in every locale (see core.spreadsheet). The import reads them back.
EXPORT_COLUMNS = (
    "E-Mail", "Name", "AGS", "Gemeinde", "Themen", "Status", "Dienststelle", "Einwilligung über",
    "Version des Einwilligungstexts", "Einwilligung angefragt am", "Einwilligung bestätigt am", "Angelegt am",
)

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
    new_topics: list = field(default_factory=list)  # names of topics the district does not have yet


@dataclass
class ImportPlan:
    """The outcome of reading a file: rows to add and problems, or a file-level `error`.

    `header` (the file's column names) and `mapping` ({field: column index
    or None}) are set as soon as the header row was read, also when `error`
    says a required column is missing, so a page can offer to map them.
    `unknown_topics` maps each topic name the district lacks (first spelling
    in the file) to the lines that name it.
    """

    rows: list = field(default_factory=list)
    problems: list = field(default_factory=list)
    error: str | None = None
    encoding: str | None = None
    delimiter: str | None = None
    header: list | None = None
    mapping: dict | None = None
    unknown_topics: dict = field(default_factory=dict)
    mapping_error: bool = False  # `error` says which column is missing or mapped twice

    @property
    def readable(self):
        return self.error is None

    @property
    def mappable(self):
        """The file was read, or only its column mapping failed: another mapping may make it importable."""
        return self.header is not None and (self.readable or self.mapping_error)

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


def header_key(name):
    """"E-Mail-Adresse" → "emailadresse", "Gemeindeschlüssel" → "gemeindeschluessel": what aliases compare."""
    text = unescape(name).casefold().translate(matching.UMLAUTS)
    return re.sub(r"[^a-z0-9]", "", text)


def guess_mapping(header):
    """{field: column index or None} from the header's names; ValueError when one alias names two columns."""
    keys = [header_key(name) for name in header]
    mapping, used = {}, set()
    for name in FIELDS:
        mapping[name] = None
        for alias in HEADER_ALIASES[name]:
            hits = [index for index, key in enumerate(keys) if key == alias and index not in used]
            if len(hits) > 1:
                raise ValueError(_("Die Spalte %(names)s steht mehrfach in der Kopfzeile.", names=header[hits[0]]))
            if hits:
                mapping[name] = hits[0]
                used.add(hits[0])
                break
    return mapping


def _header_for(first, delimiter):
    header = next(csv.reader([first], delimiter=delimiter))
    try:
        mapping = guess_mapping(header)
    except ValueError:
        mapping = None
    found = sum(1 for name in REQUIRED_FIELDS if mapping and mapping[name] is not None)
    return found, len(header), header


def read_header(text):
    """(delimiter, header names) from the first non-blank line: the delimiter under which the names say most."""
    first = next((line for line in text.splitlines() if line.strip()), None)
    if first is None:
        raise ValueError(_("Die Datei ist leer."))
    comma, semicolon = _header_for(first, ","), _header_for(first, ";")
    if semicolon[:2] > comma[:2]:
        return ";", semicolon[2]
    return ",", comma[2]


def check_mapping(header, mapping):
    """The mapping, checked against the header; ValueError with a reason fit to show."""
    clean = {}
    for name in FIELDS:
        index = (mapping or {}).get(name)
        if index is not None and not (isinstance(index, int) and 0 <= index < len(header)):
            raise ValueError(_("Die Zuordnung der Spalten passt nicht zur Datei; bitte neu wählen."))
        clean[name] = index
    taken = [index for index in clean.values() if index is not None]
    twice = sorted({index for index in taken if taken.count(index) > 1})
    if twice:
        raise ValueError(_("Die Spalte „%(name)s“ ist mehreren Feldern zugeordnet.", name=shorten(header[twice[0]])))
    missing = [str(FIELD_LABELS[name]) for name in REQUIRED_FIELDS if clean[name] is None]
    if missing:
        raise ValueError(_(
            "Die erste Zeile muss die Spaltennamen enthalten; nicht gefunden: %(missing)s. Erkannt werden "
            "z. B. „E-Mail“ oder „email“, „AGS“, „Gemeinde“ oder „municipality“, „Name“, „Themen“, "
            "„Dienststelle“ (getrennt durch Komma oder Semikolon), oder Sie ordnen die Spalten in der Vorschau "
            "zu. Gefunden: %(found)s",
            missing=", ".join(missing), found=shorten(", ".join(header)),
        ))
    return clean


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
        self.municipalities = matching.MunicipalityMatcher(db.session.execute(
            select(Municipality).where(Municipality.district_key == district.key)
        ).scalars())
        self.topics = {topic.name.casefold(): topic for topic in services.district_topics(district.key)}
        self.unknown_topics = {}  # casefolded name → (first spelling, [lines])


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


def _named(municipalities):
    return ", ".join(f"{m.name} ({m.ags})" for m in municipalities)


def check_municipality(raw, line, state):
    """(AGS, None) or (None, problem): the AGS or name matched within the district."""
    found = state.municipalities.match(raw)
    if found.found:
        return found.municipality.ags, None
    district = state.district.name
    if found.status == matching.EMPTY:
        reason = _("Gemeinde fehlt (AGS oder Name)")
    elif found.status == matching.AMBIGUOUS:
        reason = _("Mehrdeutige Gemeinde: %(names)s; bitte den vollen Namen oder den AGS angeben",
                   names=_named(found.candidates))
    elif matching.DIGITS.fullmatch(raw.replace(" ", "")):
        reason = _("Unbekannte Gemeinde: kein Gemeindeschlüssel (AGS) des Kreises %(name)s", name=district)
    elif found.candidates:
        reason = _("Unbekannte Gemeinde im Kreis %(name)s; ähnlich: %(names)s",
                   name=district, names=_named(found.candidates))
    else:
        reason = _("Unbekannte Gemeinde: keine Gemeinde des Kreises %(name)s heißt so", name=district)
    return None, RowProblem(line, shorten(raw), reason, MUNICIPALITY)


def check_topics(raw, line, state):
    """(known topics, names of unknown ones, problem or None); unknown names are noted in `state`."""
    topics, unknown = [], []
    for name in filter(None, (" ".join(name.split()) for name in raw.split(TOPIC_SEPARATOR))):
        topic = state.topics.get(name.casefold())
        if topic is not None:
            if topic not in topics:
                topics.append(topic)
            continue
        if len(name) > services.MAX_TOPIC_NAME:
            return topics, unknown, RowProblem(line, shorten(name), _(
                "Der Name des Themas darf höchstens %(n)d Zeichen lang sein.", n=services.MAX_TOPIC_NAME), TOPIC)
        spelling, lines = state.unknown_topics.setdefault(name.casefold(), (name, []))
        if spelling not in unknown:
            unknown.append(spelling)
            lines.append(line)
    return topics, unknown, None


def check_text(raw, line, reason):
    text = " ".join(raw.split())
    if len(text) > MAX_TEXT_LENGTH:
        return text, RowProblem(line, shorten(text), reason, FORMAT)
    return text, None


def check_record(line, end_line, values, columns, width, state, seen):
    """(ImportRow or None, [problems]) for one record; `columns` maps fields to column indexes."""
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
    cell = {name: unescape(values[index]) if index is not None else "" for name, index in columns.items()}
    address, key, problem = check_address(cell["email"], line, state, seen)
    problems = [problem] if problem else []
    ags, problem = check_municipality(cell["municipality"], line, state)
    problems += [problem] if problem else []
    name, problem = check_text(cell["name"], line, _(
        "Der Name ist länger als %(n)d Zeichen", n=MAX_TEXT_LENGTH))
    problems += [problem] if problem else []
    department, problem = check_text(cell["department"], line, _(
        "Die Dienststelle ist länger als %(n)d Zeichen", n=MAX_TEXT_LENGTH))
    problems += [problem] if problem else []
    if problems:
        return None, problems
    topics, new_topics, problem = check_topics(cell["topics"], line, state)
    if problem:
        return None, [problem]
    return ImportRow(line, address, key, name, ags, department, topics, new_topics), []


def read_import(district, data, mapping=None):
    """Check `data` (the file's bytes) against the district's list as it is now. Writes nothing.

    `mapping` ({field: column index or None}) says which column holds what;
    without it the columns are guessed from the header.
    """
    plan = ImportPlan()
    try:
        if not data or not data.strip():
            raise ValueError(_("Die Datei ist leer."))
        text, plan.encoding = decode(data)
        plan.delimiter, header = read_header(text)
        plan.header = [unescape(name) for name in header]
        try:
            plan.mapping = mapping if mapping is not None else guess_mapping(plan.header)
            columns = check_mapping(plan.header, plan.mapping)
        except ValueError:
            plan.mapping_error = True
            raise
        plan.mapping = columns
        state = _ListState(district)
        seen = {}
        any_record = False
        for line, values, end_line in records(text, plan.delimiter):
            any_record = True
            row, problems = check_record(line, end_line, values, columns, len(header), state, seen)
            plan.problems += problems
            if row is not None:
                plan.rows.append(row)
        if not any_record:
            raise ValueError(_("Die Datei enthält nur die Kopfzeile, keine Adressen."))
        counted = {name.casefold() for row in plan.rows for name in row.new_topics}
        plan.unknown_topics = {spelling: lines for key, (spelling, lines) in state.unknown_topics.items()
                               if key in counted}
    except ValueError as exc:
        mapping = plan.mapping if plan.mapping is not None else mapping
        return ImportPlan(error=str(exc), encoding=plan.encoding, delimiter=plan.delimiter, header=plan.header,
                          mapping=mapping, mapping_error=plan.mapping_error)
    return plan


# --- writing -------------------------------------------------------------


def apply_import(district, plan, opt_in=False, create_topics=False):
    """Add the plan's rows with consent source `import`; returns the new subscribers. Does not commit.

    Without `opt_in` the coordinator vouches for the consent and the rows are
    active at once (no consent text was shown by this service, so none is
    recorded); with it they are pending, and the caller sends the
    confirmation mails after committing (`jobs.enqueue_subscription_mails`).
    With `create_topics` the topics the district lacks become topics of the
    district and the rows get them; without, the rows are added without them.
    The same rules as `services.add_subscriber`, applied in one flush for
    the whole file.
    """
    if not plan.readable:
        raise ValueError(plan.error)
    created = {}
    if create_topics:
        for name in plan.unknown_topics:
            created[name.casefold()] = services.create_topic(district.key, name)
    now = utcnow()
    version = MAIL_CONSENT_VERSION if opt_in else ""
    added = []
    for row in plan.rows:
        topics = list(row.topics) + [created[name.casefold()] for name in row.new_topics if name.casefold() in created]
        subscriber = Subscriber(
            district_key=district.key, email=row.email, email_key=row.email_key, name=row.name,
            municipality_ags=row.ags, department=row.department, topics=topics,
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


def import_subscribers(district, data, opt_in=False, dry_run=False, mapping=None, create_topics=False):
    """Read and, unless `dry_run` or unreadable, apply. Does not commit."""
    plan = read_import(district, data, mapping=mapping)
    if dry_run or not plan.readable:
        return ImportResult(plan, [])
    return ImportResult(plan, apply_import(district, plan, opt_in=opt_in, create_topics=create_topics))


# --- export --------------------------------------------------------------


def export_row(subscriber):
    return [
        subscriber.email,
        subscriber.name,
        subscriber.municipality_ags,
        subscriber.municipality.name,
        TOPIC_SEPARATOR.join(subscriber.topic_names),
        str(services.STATUS_LABELS[subscriber.status]),
        subscriber.department,
        str(services.SOURCE_LABELS.get(subscriber.consent_source, subscriber.consent_source)),
        subscriber.consent_text_version,
        subscriber.consent_requested_at,
        subscriber.consent_confirmed_at,
        subscriber.created_at,
    ]


def export_table(district):
    """(header, rows) of the district's whole list (every status), German in every locale."""
    with force_locale("de"):
        rows = [export_row(subscriber) for subscriber in
                db.session.execute(services.subscriber_query(district.key)).scalars()]
    return list(EXPORT_COLUMNS), rows


def export_csv(district):
    """The district's whole list as CSV bytes: `;`, UTF-8 with BOM, for German Excel."""
    return spreadsheet.to_csv(*export_table(district))


def export_xlsx(district):
    return spreadsheet.to_xlsx(*export_table(district), "Abonnenten", widths=[32, 24, 10, 28, 24, 12, 24, 16, 14,
                                                                              18, 18, 18])


def export_filename(district, today, extension="csv"):
    return f"abonnenten-{district.key}-{today.isoformat()}.{extension}"
