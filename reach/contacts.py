"""Logged contacts (Kontakte): work a coordinator did outside the mail channel.

A contact counts for reach at the level *contacted* (`reach.definition`);
the database triggers keep the rollup current, so nothing here tells it.
Pages, the API, the CSV import and the CLI all go through these functions,
so they refuse the same input with the same words. Nothing here commits.

`data` is a mapping with the keys `date` (a date, "2026-11-21" or
"21.11.2026"), `kind` (a code of `CONTACT_KINDS`), `municipalities` (AGS),
`topics` (topic ids of the district) and `note`. An update changes only the
keys given.
"""
import datetime as dt
from dataclasses import dataclass

from flask_babel import force_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from core.collation import sorted_by_name
from core.extensions import db
from directory.models import Municipality
from reach.definition import BERLIN
from reach.models import CONTACT_KINDS, Contact, contact_municipalities, contact_topics
from subscribers.models import Topic, utcnow
from subscribers.services import SubscriberError, district_topics, topics_by_name

KIND_LABELS = {
    "vor_ort": _l("Vor-Ort-Termin"),
    "telefon": _l("Telefon"),
    "video": _l("Videokonferenz"),
    "email": _l("E-Mail"),
    "veranstaltung_extern": _l("Veranstaltung extern"),
    "sonstiges": _l("Sonstiges"),
}
# Short forms people type in a spreadsheet.
_ALIASES = {"vor-ort": "vor_ort", "vor ort": "vor_ort", "vorort": "vor_ort", "e-mail": "email", "mail": "email",
            "veranstaltung": "veranstaltung_extern"}

MAX_NOTE = 500
EARLIEST = dt.date(2000, 1, 1)
DATE_FORMATS = ("%Y-%m-%d", "%d.%m.%Y")


class ContactError(ValueError):
    """A rule was broken; the message is fit to show. `field` names the form field, if any."""

    def __init__(self, message, field=None):
        super().__init__(message)
        self.field = field


def kind_from_label(text):
    """The kind's code for a code or label (any case, also "Vor-Ort", "Video"); None when unknown.

    The German labels always count, whatever language the interface speaks,
    so a file reads the same for everyone; the labels shown now count too.
    """
    wanted = " ".join((text or "").split()).casefold()
    with force_locale("de"):
        german = {str(label).casefold(): code for code, label in KIND_LABELS.items()}
    shown = {str(label).casefold(): code for code, label in KIND_LABELS.items()}
    if wanted in CONTACT_KINDS:
        return wanted
    return german.get(wanted) or shown.get(wanted) or _ALIASES.get(wanted)


def today():
    """Today in Europe/Berlin, the day a coordinator lives in."""
    return dt.datetime.now(BERLIN).date()


# --- single values -------------------------------------------------------------


def clean_date(value):
    """A contact's date: given, a real date, not before 2000 and not after today (it has happened)."""
    if isinstance(value, str):
        value = parse_date(value.strip())
    if value is None:
        raise ContactError(_("Bitte das Datum des Kontakts angeben."), field="date")
    if isinstance(value, dt.datetime) or not isinstance(value, dt.date):
        raise ContactError(_("Bitte ein gültiges Datum angeben, z. B. 21.11.2026."), field="date")
    if value < EARLIEST:
        raise ContactError(_("Das Datum darf nicht vor dem 01.01.2000 liegen."), field="date")
    if value > today():
        raise ContactError(_("Das Datum liegt in der Zukunft; erfasst werden Kontakte, die stattgefunden haben."),
                           field="date")
    return value


def parse_date(text):
    """A date from "2026-11-21" or "21.11.2026"; None for an empty text, ContactError for anything else."""
    if not text:
        return None
    for pattern in DATE_FORMATS:
        try:
            return dt.datetime.strptime(text, pattern).date()
        except ValueError:
            continue
    raise ContactError(_("Bitte ein gültiges Datum angeben, z. B. 21.11.2026."), field="date")


def clean_kind(value):
    if value not in CONTACT_KINDS:
        raise ContactError(_("Unbekannte Art des Kontakts: %(kind)s", kind=value or "–"), field="kind")
    return value


def clean_note(value):
    note = (value or "").replace("\r\n", "\n").strip()
    if len(note) > MAX_NOTE:
        raise ContactError(_("Die Notiz darf höchstens %(n)d Zeichen lang sein (jetzt %(length)d).",
                             n=MAX_NOTE, length=len(note)), field="note")
    return note


class DistrictChoices:
    """The district's municipalities and topics, loaded once (an import checks many rows against them)."""

    def __init__(self, district_key):
        self.district_key = district_key
        self.municipalities = {m.ags: m for m in db.session.execute(
            select(Municipality).where(Municipality.district_key == district_key)
        ).scalars()}
        self.municipalities = {m.ags: m for m in sorted_by_name(self.municipalities.values())}
        self.topics = {topic.id: topic for topic in district_topics(district_key)}

    def clean_municipalities(self, codes):
        wanted = list(dict.fromkeys(str(code).strip() for code in codes or ()))
        if not wanted:
            raise ContactError(_("Bitte mindestens eine Gemeinde wählen."), field="municipalities")
        unknown = [code for code in wanted if code not in self.municipalities]
        if unknown:
            raise ContactError(_("Keine Gemeinde dieses Kreises: %(ags)s", ags=", ".join(unknown)),
                               field="municipalities")
        return [self.municipalities[code] for code in wanted]

    def clean_topics(self, ids):
        found = []
        for value in ids or ():
            topic = self.topics.get(_as_id(value))
            if topic is None:
                raise ContactError(_("Unbekanntes Thema: %(topic)s", topic=value), field="topics")
            found.append(topic)
        return list(dict.fromkeys(found))


def _as_id(value):
    if isinstance(value, Topic):
        return value.id
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def topic_ids_by_name(district_key, names):
    """Topic ids for names (case-insensitive), for callers that know topics by name (API)."""
    try:
        return [topic.id for topic in topics_by_name(district_key, names)]
    except SubscriberError as error:
        raise ContactError(str(error), field="topics") from None


# --- whole contacts ---------------------------------------------------------------


def validate_contact(district_key, data, choices=None):
    """The cleaned values of `data` (all keys required), or ContactError for the first bad one."""
    choices = choices or DistrictChoices(district_key)
    return {
        "date": clean_date(data.get("date")),
        "kind": clean_kind(data.get("kind")),
        "municipalities": choices.clean_municipalities(data.get("municipalities")),
        "topics": choices.clean_topics(data.get("topics")),
        "note": clean_note(data.get("note")),
    }


def build_contact(district_key, cleaned, created_by=None):
    """A new contact from values `validate_contact` returned; added to the session."""
    contact = Contact(district_key=district_key, created_by_id=getattr(created_by, "id", None), **cleaned)
    db.session.add(contact)
    return contact


def create_contact(district_key, data, created_by=None):
    contact = build_contact(district_key, validate_contact(district_key, data), created_by)
    db.session.flush()
    return contact


def data_of(contact):
    """The contact as `data`, for forms and partial updates."""
    return {
        "date": contact.date, "kind": contact.kind, "municipalities": [m.ags for m in contact.municipalities],
        "topics": [topic.id for topic in contact.topics], "note": contact.note,
    }


def update_contact(contact, data):
    """Change the keys given in `data`; all are checked before anything changes."""
    cleaned = validate_contact(contact.district_key, {**data_of(contact), **data})
    for name, value in cleaned.items():
        setattr(contact, name, value)
    # The links to municipalities and topics live in other tables; the row itself must show the change.
    contact.updated_at = utcnow()
    db.session.flush()
    return contact


def delete_contact(contact):
    db.session.delete(contact)
    db.session.flush()


# --- lists --------------------------------------------------------------------------


@dataclass
class ContactFilter:
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    municipality: str | None = None
    kind: str | None = None
    topic: int | None = None


def contact_query(district_key, filters=None):
    """SELECT of the district's contacts matching the filters, newest first."""
    filters = filters or ContactFilter()
    query = select(Contact).where(Contact.district_key == district_key)
    if filters.date_from:
        query = query.where(Contact.date >= filters.date_from)
    if filters.date_to:
        query = query.where(Contact.date <= filters.date_to)
    if filters.municipality:
        query = query.where(Contact.id.in_(select(contact_municipalities.c.contact_id).where(
            contact_municipalities.c.municipality_ags == filters.municipality)))
    if filters.kind:
        query = query.where(Contact.kind == filters.kind)
    if filters.topic:
        query = query.where(Contact.id.in_(select(contact_topics.c.contact_id).where(
            contact_topics.c.topic_id == filters.topic)))
    return query.order_by(Contact.date.desc(), Contact.id.desc())

