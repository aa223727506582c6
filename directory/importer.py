"""Importing the official directory of districts (Kreise) and municipalities (Gemeinden), and their outlines.

Two steps, so that bad input never leaves half a directory behind: `read_*`
parses and checks a whole file and returns its rows together with every
problem found (with the line number an editor shows, or the feature number of
a GeoJSON file), then `write_directory` and `write_outlines` upsert the rows.
Callers write only when there is no problem at all, and commit once.

Rows are never deleted: a municipality missing from a newer list may still
carry subscribers, and merged municipalities are for a person to resolve.
"""
import csv
import io
import json
import re
from dataclasses import asdict, dataclass, field
from importlib.resources import files

from flask_babel import gettext as _
from sqlalchemy import select

from core.extensions import db
from directory import outlines
from directory.models import DISTRICT_KINDS, OUTLINE_KINDS, District, Municipality, Outline

DISTRICT_COLUMNS = ("district_key", "name", "kind")
MUNICIPALITY_COLUMNS = ("ags", "name", "district_key")
DISTRICT_KEY = re.compile(r"[0-9]{5}")  # not \d: that would accept any Unicode digit
AGS = re.compile(r"[0-9]{8}")
MAX_NAME_LENGTH = 200  # the width of the name columns
AREA_NAME = "gemeindefreies Gebiet"  # an unincorporated area's outline without a name of its own
# The official directory shipped in directory/data (see its README.md).
SHIPPED_DISTRICTS = "bw_districts.csv"
SHIPPED_MUNICIPALITIES = "bw_municipalities.csv"
SHIPPED_BOUNDARIES = ("bw_districts.geojson", "bw_municipalities.geojson")


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


@dataclass(frozen=True)
class OutlineRow:
    key: str  # Kreisschlüssel of a district, AGS of a municipality or an unincorporated area
    kind: str
    district_key: str
    name: str
    geometry: str  # compact GeoJSON


@dataclass
class Problem:
    source: str
    line: int
    reason: str

    def __str__(self):
        return _("%(source)s, Zeile %(line)d: %(reason)s", source=self.source, line=self.line, reason=self.reason)


@dataclass
class FeatureProblem:
    """A problem in feature number `feature` (counted from 1) of a GeoJSON file, or in the whole file (None)."""

    source: str
    feature: int | None
    reason: str

    def __str__(self):
        if self.feature is None:
            return _("%(source)s: %(reason)s", source=self.source, reason=self.reason)
        return _("%(source)s, Feature %(feature)d: %(reason)s",
                 source=self.source, feature=self.feature, reason=self.reason)


@dataclass
class KnownDirectory:
    """What outlines are checked against: the stored directory plus the rows this run imports."""

    districts: dict  # Kreisschlüssel -> display name ("Landkreis Böblingen")
    municipalities: dict  # AGS -> name


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


def read_outlines(data, source, known, seen):
    """Parse a GeoJSON FeatureCollection (bytes) of district and/or municipality outlines.

    `known` is the KnownDirectory; `seen` maps every key read so far in this
    run to (source, feature number), so a key is refused in its second file too.
    """
    parsed = Parsed()
    features = read_features(data, source, parsed)
    if features is None:
        return parsed
    if not known.districts:
        # Every feature would be an unknown district: one line says it better.
        parsed.problems.append(FeatureProblem(source, None, _(
            "Es sind noch keine Kreise eingelesen; Umrisse brauchen das Verzeichnis (--districts, --municipalities)."
        )))
        return parsed
    for number, feature in enumerate(features, 1):
        identity, reasons = outline_identity(feature, known)
        if identity is not None:
            key = identity[0]
            if key in seen:
                first_source, first_number = seen[key]
                where = (_("Feature %(n)d", n=first_number) if first_source == source
                         else _("%(source)s, Feature %(n)d", source=first_source, n=first_number))
                reasons.append(_("Schlüssel %(key)s kommt doppelt vor (zuerst in %(where)s).", key=key, where=where))
            else:
                seen[key] = (source, number)
        if isinstance(feature, dict):
            reasons += outlines.geometry_problems(feature.get("geometry"))
        parsed.problems.extend(FeatureProblem(source, number, reason) for reason in reasons)
        if not reasons:
            parsed.rows.append(OutlineRow(*identity, outlines.compact(feature["geometry"])))
    return parsed


def read_features(data, source, parsed):
    """The features of a GeoJSON FeatureCollection, or None with the problem recorded in `parsed`."""
    parsed.readable = False
    text, problem = decode(data, source)
    if problem is not None:
        parsed.problems.append(problem)
        return None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        parsed.problems.append(Problem(source, exc.lineno, _(
            "Kein gültiges JSON (Spalte %(column)d: %(reason)s).", column=exc.colno, reason=exc.msg
        )))
        return None
    except RecursionError:
        parsed.problems.append(FeatureProblem(source, None, _("Das JSON ist zu tief verschachtelt.")))
        return None
    if not (isinstance(document, dict) and document.get("type") == "FeatureCollection"
            and isinstance(document.get("features"), list)):
        parsed.problems.append(FeatureProblem(source, None, _("Die Datei ist keine GeoJSON-FeatureCollection.")))
        return None
    if not document["features"]:
        parsed.problems.append(FeatureProblem(source, None, _("Die FeatureCollection enthält keine Features.")))
        return None
    parsed.readable = True
    return document["features"]


def outline_identity(feature, known):
    """((key, kind, district_key, name), []) for a feature, or (None, reasons).

    A feature names its district by `district_key` or its municipality by
    `ags`. An AGS that is no municipality of the directory but lies in a known
    district is an unincorporated area (gemeindefreies Gebiet); the
    directory's names win over the file's, except for areas, which only the
    file names.
    """
    if not isinstance(feature, dict) or feature.get("type") != "Feature":
        return None, [_("Das ist kein GeoJSON-Feature.")]
    properties = feature.get("properties")
    properties = properties if isinstance(properties, dict) else {}
    if ("district_key" in properties) == ("ags" in properties):
        return None, [_("Das Feature braucht genau eine der Eigenschaften district_key (Kreis) oder ags (Gemeinde).")]
    if "district_key" in properties:
        key = properties["district_key"]
        if not (isinstance(key, str) and DISTRICT_KEY.fullmatch(key)):
            return None, [_("Kreisschlüssel %(key)s hat nicht genau 5 Ziffern.", key=repr(key))]
        if key not in known.districts:
            return None, [_("Unbekannter Kreis %(key)s (weder in der Kreisdatei noch in der Datenbank).", key=key)]
        return (key, "district", key, known.districts[key]), []
    ags = properties["ags"]
    if not (isinstance(ags, str) and AGS.fullmatch(ags)):
        return None, [_("Gemeindeschlüssel %(ags)s hat nicht genau 8 Ziffern.", ags=repr(ags))]
    if ags in known.municipalities:
        return (ags, "municipality", ags[:5], known.municipalities[ags]), []
    if ags[:5] not in known.districts:
        return None, [_("Gemeindeschlüssel %(ags)s: unbekannter Kreis %(key)s (weder in der Kreisdatei noch in der "
                        "Datenbank).", ags=ags, key=ags[:5])]
    name = properties.get("name")
    name = name.strip() if isinstance(name, str) else ""
    if name and name_problems(name):
        return None, name_problems(name)
    return (ags, "area", ags[:5], name or AREA_NAME), []


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


def write_outlines(rows):
    """Upsert checked outlines; returns {kind: Counts} for the kinds among them. Does not commit."""
    kinds = [kind for kind in OUTLINE_KINDS if any(row.kind == kind for row in rows)]
    return {kind: upsert(Outline, "key", [row for row in rows if row.kind == kind]) for kind in kinds}


def stored_district_keys():
    return set(db.session.execute(select(District.key)).scalars())


def known_directory(parsed_districts, parsed_municipalities):
    """The stored directory overlaid with this run's files.

    Keys of rows refused for other reasons count as known too, so one bad row
    does not also turn all its outlines into unknown districts.
    """
    districts = {district.key: district.display_name for district in db.session.execute(select(District)).scalars()}
    districts |= dict.fromkeys(parsed_districts.lines, "")
    districts |= {row.key: f"{row.kind} {row.name}" for row in parsed_districts.rows}
    municipalities = dict(db.session.execute(select(Municipality.ags, Municipality.name)).all())
    municipalities |= dict.fromkeys(parsed_municipalities.lines, "")
    municipalities |= {row.ags: row.name for row in parsed_municipalities.rows}
    return KnownDirectory(districts, municipalities)


@dataclass
class ImportResult:
    problems: list
    districts: Counts | None = None
    municipalities: Counts | None = None
    outlines: dict | None = None  # {kind: Counts} when outline files were given

    @property
    def ok(self):
        return not self.problems


def import_directory(districts=None, municipalities=None, boundaries=()):
    """Check and, when everything is valid, write the given files.

    `districts` and `municipalities` are (bytes, source name) pairs or None,
    `boundaries` a sequence of such pairs (GeoJSON). Nothing is written when
    any problem is found. Does not commit.
    """
    parsed_districts = read_districts(*districts) if districts else Parsed()
    parsed_municipalities = Parsed()
    if municipalities:
        known = None
        if parsed_districts.readable:
            known = stored_district_keys() | set(parsed_districts.lines)
        parsed_municipalities = read_municipalities(*municipalities, known)
    parsed_outlines = []
    # With an unreadable list it is unknown which AGS is a municipality: that list is to be fixed first.
    if boundaries and parsed_districts.readable and parsed_municipalities.readable:
        known, seen = known_directory(parsed_districts, parsed_municipalities), {}
        parsed_outlines = [read_outlines(data, source, known, seen) for data, source in boundaries]
    problems = parsed_districts.problems + parsed_municipalities.problems
    problems += [problem for parsed in parsed_outlines for problem in parsed.problems]
    if problems:
        return ImportResult(problems)
    district_counts, municipality_counts = write_directory(parsed_districts.rows, parsed_municipalities.rows)
    return ImportResult(
        [],
        district_counts if districts else None,
        municipality_counts if municipalities else None,
        write_outlines([row for parsed in parsed_outlines for row in parsed.rows]) if boundaries else None,
    )


def shipped_file(name):
    """(bytes, source name) of a file of the official directory shipped in directory/data."""
    return (files("directory") / "data" / name).read_bytes(), f"directory/data/{name}"


def import_shipped():
    """`import_directory` with the shipped official lists and outlines of Baden-Württemberg."""
    return import_directory(
        shipped_file(SHIPPED_DISTRICTS),
        shipped_file(SHIPPED_MUNICIPALITIES),
        [shipped_file(name) for name in SHIPPED_BOUNDARIES],
    )
