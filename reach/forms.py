"""Forms of the contact pages (Kontakte).

The rules (date not in the future, at least one municipality of the district,
known kind and topics, length of the note) are the services'
(`reach.contacts`); the views show their `ContactError` at the field it
names, so the pages, the API and the import refuse the same input with the
same words. The date travels as the text of an `<input type="date">` and is
parsed by the service, too.
"""
from flask_babel import lazy_gettext as _l
from flask_wtf.file import FileField, FileRequired
from wtforms import (
    RadioField,
    SelectChoice,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.widgets import DateInput

from core.forms import Form
from reach.contacts import (
    EARLIEST,
    KIND_LABELS,
    MAX_NOTE,
    ContactFilter,
    parse_date,
    today,
)
from subscribers.forms import municipality_choices, topic_choices


def _strip(value):
    return value.strip() if isinstance(value, str) else value


class ContactForm(Form):
    """A new or changed contact; field names follow `ContactError.field`."""

    date = StringField(_l("Datum"), widget=DateInput(), filters=[_strip])
    kind = RadioField(_l("Art des Kontakts"), choices=[SelectChoice(k, v) for k, v in KIND_LABELS.items()],
                      validate_choice=False)
    # The service reports an unknown municipality or topic (for instance one of another district).
    municipalities = SelectMultipleField(_l("Gemeinden"), validate_choice=False)
    topics = SelectMultipleField(_l("Themen"), validate_choice=False)
    note = TextAreaField(_l("Notiz"), render_kw={"maxlength": MAX_NOTE, "rows": 4})

    def __init__(self, district, topics, **kwargs):
        super().__init__(**kwargs)
        # The browser's date picker offers only days a contact can have happened on.
        self.date.render_kw = {"min": EARLIEST.isoformat(), "max": today().isoformat()}
        self.municipalities.choices = [SelectChoice(m.ags, m.name) for m in district.municipalities]
        self.topics.choices = topic_choices(topics)

    def contact_data(self):
        """The `data` mapping of `reach.contacts`."""
        return {
            "date": self.date.data or "",
            "kind": self.kind.data or "",
            "municipalities": self.municipalities.data or [],
            "topics": self.topics.data or [],
            "note": self.note.data or "",
        }

    @staticmethod
    def data_of(contact):
        return {
            "date": contact.date.isoformat(), "kind": contact.kind, "note": contact.note,
            "municipalities": [m.ags for m in contact.municipalities],
            "topics": [str(topic.id) for topic in contact.topics],
        }


class ContactFilterForm(Form):
    """The list's filters, read from the query string (the same names as the API's).

    Values that are no date or not among the choices (an old bookmark, a
    hand-edited URL) are dropped by `active_filters`, not answered with an error.
    """

    class Meta:
        csrf = False

    date_from = StringField(_l("Von"), widget=DateInput(), name="from", filters=[_strip])
    date_to = StringField(_l("Bis"), widget=DateInput(), name="to", filters=[_strip])
    municipality = SelectField(_l("Gemeinde"), validate_choice=False)
    kind = SelectField(_l("Art"), validate_choice=False)
    topic = SelectField(_l("Thema"), validate_choice=False)

    def __init__(self, district, topics, **kwargs):
        super().__init__(**kwargs)
        self.municipality.choices = municipality_choices(district, _l("alle"))
        self.kind.choices = [SelectChoice("", _l("alle")), *(SelectChoice(k, v) for k, v in KIND_LABELS.items())]
        self.topic.choices = [SelectChoice("", _l("alle")), *topic_choices(topics)]

    def active_filters(self):
        """{URL parameter: value} of the filters that are set and valid; the others are cleared."""
        result = {}
        for field in (self.date_from, self.date_to):
            if _is_date(field.data):
                result[field.name] = field.data
            else:
                field.data = ""
        for field in (self.municipality, self.kind, self.topic):
            allowed = {choice.value for choice in field.choices if choice.value}
            if field.data in allowed:
                result[field.name] = field.data
            else:
                field.data = ""
        return result

    @staticmethod
    def filter_of(chosen):
        """The service's ContactFilter for `active_filters()`."""
        return ContactFilter(
            date_from=parse_date(chosen.get("from")), date_to=parse_date(chosen.get("to")),
            municipality=chosen.get("municipality"), kind=chosen.get("kind"),
            topic=int(chosen["topic"]) if "topic" in chosen else None,
        )


def _is_date(text):
    try:
        return parse_date(text) is not None
    except ValueError:
        return False


class ContactImportForm(Form):
    file = FileField(_l("CSV-Datei"), validators=[FileRequired(_l("Bitte wählen Sie eine CSV-Datei aus."))])
