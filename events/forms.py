"""Forms of the coordinator pages for events.

The rules (place or link, end after start, start in the future, the RRULE,
capacity, audience of the district) are the services'; the views show their
`EventError` at the field it names, so the pages and the API refuse the same
input with the same words. The form only turns what a browser sends into
values: the date and times are Europe/Berlin wall-clock times, and strings
that are no date, time or number get a German message here.
"""
from datetime import datetime

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from wtforms import (
    BooleanField,
    DateField,
    IntegerField,
    SelectChoice,
    SelectMultipleField,
    StringField,
    TextAreaField,
    TimeField,
)
from wtforms.validators import InputRequired, Optional

from core.forms import Form
from events.services import EventData, EventError, from_local, local

RRULE_EXAMPLE = "FREQ=WEEKLY;INTERVAL=2;BYDAY=TU;COUNT=6"


def _strip(value):
    return value.strip() if isinstance(value, str) else value


class LocalTimeField(TimeField):
    """A time input ("09:30"; "09:30:00" from browsers with seconds) with a German message."""

    def __init__(self, label=None, validators=None, **kwargs):
        super().__init__(label, validators, format=["%H:%M", "%H:%M:%S"], **kwargs)

    def process_formdata(self, valuelist):
        try:
            super().process_formdata(valuelist)
        except ValueError:
            raise ValueError(_l("Bitte eine gültige Uhrzeit angeben, z. B. 09:30.")) from None


class WholeNumberField(IntegerField):
    """An optional whole number with a German message for anything else."""

    def __init__(self, label=None, validators=None, message=None, **kwargs):
        super().__init__(label, validators, **kwargs)
        self.number_message = message or _l("Bitte eine ganze Zahl angeben.")

    def process_formdata(self, valuelist):
        if valuelist and not (valuelist[0] or "").strip():
            self.data = None
            return
        try:
            super().process_formdata([valuelist[0].strip()] if valuelist else valuelist)
        except ValueError:
            raise ValueError(self.number_message) from None


class EventForm(Form):
    """One form for new and edited events; the kind is fixed at creation and not part of it.

    Field names follow the services' `EventError.field` (`starts_at`,
    `ends_at`, `location`, `rrule` …), so an error lands at its input.
    """

    title = StringField(_l("Titel"), filters=[_strip])
    description = TextAreaField(_l("Beschreibung"))
    location = StringField(_l("Ort (Adresse)"), filters=[_strip])
    online_url = StringField(_l("Link zur Online-Teilnahme"), filters=[_strip])
    date = DateField(_l("Datum"), validators=[InputRequired(_l("Bitte ein gültiges Datum angeben."))])
    starts_at = LocalTimeField(_l("Beginn"), validators=[InputRequired(_l("Bitte die Uhrzeit des Beginns angeben."))])
    ends_at = LocalTimeField(_l("Ende"), validators=[InputRequired(_l("Bitte die Uhrzeit des Endes angeben."))])
    rrule = StringField(_l("Wiederholungsregel (RRULE)"), filters=[_strip])
    slot_minutes = WholeNumberField(_l("Länge eines Termins in Minuten"), validators=[Optional()], default=30)
    capacity = WholeNumberField(_l("Plätze"), validators=[Optional()])
    public = BooleanField(_l("Öffentlich (im Kalender-Abonnement und mit offener Anmeldeseite)"), default=True)
    reminder_hours = WholeNumberField(_l("Erinnerung (Stunden vor Beginn)"), validators=[Optional()], default=24)
    # The view reports an unknown topic or municipality (for instance one of another district).
    topics = SelectMultipleField(_l("Themen"), validate_choice=False)
    municipalities = SelectMultipleField(_l("Gemeinden"), validate_choice=False)

    def __init__(self, kind, district, topics, **kwargs):
        super().__init__(**kwargs)
        self.kind = kind
        self.topics.choices = [SelectChoice(str(topic.id), topic.name) for topic in topics]
        self.municipalities.choices = [SelectChoice(m.ags, m.name) for m in district.municipalities]
        if kind != "office_hours":
            # Not shown for workshops: they must neither count nor carry errors.
            del self.rrule
            del self.slot_minutes

    @property
    def is_office_hours(self):
        return self.kind == "office_hours"

    def event_data(self, topics, municipalities):
        """EventData for create_event / update_event; the times converted from Europe/Berlin to UTC."""
        day = self.date.data
        try:
            starts_at = from_local(datetime.combine(day, self.starts_at.data.replace(second=0, microsecond=0)))
            ends_at = from_local(datetime.combine(day, self.ends_at.data.replace(second=0, microsecond=0)))
        except (OverflowError, ValueError):  # a date at the very edge of the calendar (year 1)
            raise EventError(_("Bitte ein gültiges Datum angeben."), field="date") from None
        return EventData(
            kind=self.kind,
            title=self.title.data or "",
            description=(self.description.data or "").replace("\r\n", "\n"),
            location=self.location.data or "",
            online_url=self.online_url.data or "",
            starts_at=starts_at,
            ends_at=ends_at,
            rrule=(self.rrule.data or "") if self.is_office_hours else "",
            slot_minutes=self.slot_minutes.data if self.is_office_hours else None,
            capacity=self.capacity.data,
            public=bool(self.public.data),
            reminder_hours=self.reminder_hours.data if self.reminder_hours.data is not None else 24,
            topics=topics,
            municipalities=municipalities,
        )

    @classmethod
    def defaults(cls, kind):
        data = {"public": True, "reminder_hours": 24}
        if kind == "office_hours":
            data.update(capacity=1, slot_minutes=30)
        return data

    @classmethod
    def data_of(cls, event):
        start, end = local(event.starts_at), local(event.ends_at)
        return {
            "title": event.title,
            "description": event.description,
            "location": event.location,
            "online_url": event.online_url,
            "date": start.date(),
            "starts_at": start.time().replace(second=0, microsecond=0, tzinfo=None),
            "ends_at": end.time().replace(second=0, microsecond=0, tzinfo=None),
            "rrule": event.rrule,
            "slot_minutes": event.slot_minutes,
            "capacity": event.capacity,
            "public": event.public,
            "reminder_hours": event.reminder_hours,
            "topics": [str(topic.id) for topic in event.topics],
            "municipalities": [m.ags for m in event.municipalities],
        }
