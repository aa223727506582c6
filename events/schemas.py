"""Marshmallow schemas of the events API."""
from marshmallow import Schema, fields, validate

from core.api import Id
from events.models import (
    ATTENDANCE,
    EVENT_KINDS,
    EVENT_STATES,
    PARTSTATS,
    REGISTRATION_SOURCES,
    REGISTRATION_STATES,
)

TIME_DESCRIPTION = (
    "ISO 8601, am besten mit Zeitzone (2026-12-01T09:00:00+01:00); eine Zeit ohne Zeitzone gilt als Ortszeit "
    "Europe/Berlin. Antworten nennen die Zeit in UTC."
)
TOPIC_DESCRIPTION = (
    "Einladung nur an Abonnements dieser Themen des Kreises, jeweils mit ihrem Namen (ohne Beachtung der "
    "Groß-/Kleinschreibung). Leer: alle aktiven Abonnements. Ein unbekanntes Thema ergibt 422."
)
MUNICIPALITY_DESCRIPTION = (
    "Einladung nur an Personen dieser Gemeinden des Kreises (AGS). Leer: alle Gemeinden. "
    "Eine unbekannte Gemeinde ergibt 422."
)
RRULE_DESCRIPTION = (
    "Nur Sprechstunde: Wiederholungsregel nach RFC 5545 ohne DTSTART und mit Ende (COUNT oder UNTIL), "
    "z. B. FREQ=WEEKLY;INTERVAL=2;BYDAY=TU;COUNT=6. Der erste Termin ist `starts_at`–`ends_at`."
)
SLOT_MINUTES_DESCRIPTION = "Nur Sprechstunde: Länge eines buchbaren Termins in Minuten (mindestens 5)."
CAPACITY_DESCRIPTION = (
    "Plätze je Termin; null: unbegrenzt. Bei einer Sprechstunde ist die Vorgabe 1 (ein Termin für eine Gemeinde). "
    "Weitere Anmeldungen kommen auf die Warteliste."
)
REMINDER_DESCRIPTION = "Erinnerung so viele Stunden vor Beginn (0: keine, höchstens 336)."
PLACE_DESCRIPTION = "Ort (Anschrift) oder `online_url` oder beides; eines davon ist Pflicht."


class SlotSchema(Schema):
    """A bookable time: the workshop itself, or one office-hours interval, with its seat counts."""

    id = Id()
    starts_at = fields.DateTime()
    ends_at = fields.DateTime()
    capacity = fields.Integer(allow_none=True, metadata={"description": "Plätze; null: unbegrenzt"})
    cancelled = fields.Boolean()
    confirmed = fields.Integer(metadata={"description": "Angemeldete mit Platz"})
    waiting = fields.Integer(metadata={"description": "Auf der Warteliste"})
    invited = fields.Integer(metadata={"description": "Eingeladen, noch ohne Antwort"})


class EventSchema(Schema):
    """A workshop or an office-hours series; times are ISO 8601 in UTC with offset."""

    id = Id()
    district_key = fields.String(metadata={"example": "08115"})
    kind = fields.String(metadata={"enum": list(EVENT_KINDS)})
    title = fields.String()
    description = fields.String()
    location = fields.String()
    online_url = fields.String()
    starts_at = fields.DateTime(metadata={"description": "Beginn (bei einer Sprechstunde: des ersten Termins)"})
    ends_at = fields.DateTime(metadata={"description": "Ende (bei einer Sprechstunde: des ersten Termins)"})
    rrule = fields.String(metadata={"description": "Wiederholungsregel der Sprechstunde; leer beim Workshop"})
    slot_minutes = fields.Integer(allow_none=True)
    capacity = fields.Integer(allow_none=True, metadata={"description": "Plätze je Termin; null: unbegrenzt"})
    public = fields.Boolean(metadata={"description": "Im Kalender-Feed und mit öffentlicher Anmeldeseite"})
    reminder_hours = fields.Integer()
    status = fields.String(metadata={"enum": list(EVENT_STATES)})
    sequence = fields.Integer(metadata={"description": "Version der Kalendereinträge (SEQUENCE)"})
    topics = fields.List(fields.String(), attribute="topic_names", metadata={"description": "Namen der Themen"})
    municipalities = fields.List(fields.String(), attribute="municipality_ags", metadata={"description": "AGS"})
    invited_at = fields.DateTime(allow_none=True)
    cancelled_at = fields.DateTime(allow_none=True)
    created_at = fields.DateTime()
    updated_at = fields.DateTime()
    registration_url = fields.String(
        allow_none=True,
        metadata={"description": "Öffentliche Anmeldeseite, solange die Veranstaltung öffentlich und "
                                 "veröffentlicht ist"},
    )
    feed_url = fields.String(
        allow_none=True, metadata={"description": "Kalender-Feed des Kreises mit dieser Veranstaltung, wenn öffentlich"}
    )

    def get_attribute(self, obj, attr, default):
        if attr == "topic_names":
            return [topic.name for topic in obj.topics]
        if attr == "municipality_ags":
            return [m.ags for m in obj.municipalities]
        if attr in ("registration_url", "feed_url"):
            return _public_url(obj, attr)
        return super().get_attribute(obj, attr, default)


def _public_url(event, attr):
    from core.urls import external_url

    if not event.public or event.status == "cancelled":
        return None
    if attr == "feed_url":
        return external_url("events_public.feed", key=event.district_key)
    if event.status != "published":
        return None
    return external_url("events_public.register", key=event.district_key, id=event.id)


class EventDetailSchema(EventSchema):
    slots = fields.List(fields.Nested(SlotSchema), attribute="slot_rows",
                        metadata={"description": "Die Termine mit ihren Platzzahlen"})

    def get_attribute(self, obj, attr, default):
        if attr == "slot_rows":
            from events.services import seat_counts

            counts = seat_counts(obj)
            return [dict(id=slot.id, starts_at=slot.starts_at, ends_at=slot.ends_at, capacity=slot.capacity,
                         cancelled=slot.cancelled, **counts[slot.id]) for slot in obj.slots]
        return super().get_attribute(obj, attr, default)


class EventChangedSchema(EventDetailSchema):
    notified = fields.Integer(
        metadata={"description": "Mails mit der geänderten Kalenderversion (SEQUENCE + 1) an alle Eingeladenen "
                                 "und Angemeldeten; 0, wenn sich weder Titel, Zeit, Ort noch Link geändert haben"}
    )


class EventQueryArgsSchema(Schema):
    status = fields.String(validate=validate.OneOf(EVENT_STATES))
    kind = fields.String(validate=validate.OneOf(EVENT_KINDS))


class EventCreateSchema(Schema):
    kind = fields.String(load_default="workshop", metadata={"enum": list(EVENT_KINDS)})
    title = fields.String(required=True, metadata={"description": "Titel (höchstens 200 Zeichen)"})
    description = fields.String(load_default="", metadata={"description": "Beschreibung (Text)"})
    location = fields.String(load_default="", metadata={"description": PLACE_DESCRIPTION})
    online_url = fields.String(load_default="", metadata={"description": "Link zur Online-Teilnahme (https://…)"})
    starts_at = fields.DateTime(required=True, metadata={"description": "Beginn, in der Zukunft. " + TIME_DESCRIPTION})
    ends_at = fields.DateTime(required=True, metadata={"description": "Ende, am selben Tag oder höchstens 24 Stunden "
                                                                      "nach Beginn. " + TIME_DESCRIPTION})
    rrule = fields.String(load_default="", metadata={"description": RRULE_DESCRIPTION})
    slot_minutes = fields.Integer(load_default=None, allow_none=True,
                                  metadata={"description": SLOT_MINUTES_DESCRIPTION})
    capacity = fields.Integer(load_default=None, allow_none=True, metadata={"description": CAPACITY_DESCRIPTION})
    public = fields.Boolean(load_default=True,
                            metadata={"description": "Im Kalender-Feed und mit öffentlicher Anmeldeseite"})
    reminder_hours = fields.Integer(load_default=24, metadata={"description": REMINDER_DESCRIPTION})
    topics = fields.List(fields.String(), load_default=list, metadata={"description": TOPIC_DESCRIPTION})
    municipalities = fields.List(fields.String(), load_default=list, metadata={"description": MUNICIPALITY_DESCRIPTION})


class EventUpdateSchema(Schema):
    """Only the fields sent change. A change of title, time, place or link updates everyone's calendar entry."""

    title = fields.String()
    description = fields.String()
    location = fields.String(metadata={"description": PLACE_DESCRIPTION})
    online_url = fields.String()
    starts_at = fields.DateTime(metadata={"description": TIME_DESCRIPTION})
    ends_at = fields.DateTime(metadata={"description": TIME_DESCRIPTION})
    rrule = fields.String(metadata={"description": RRULE_DESCRIPTION + " Fest, sobald ein Termin gebucht ist."})
    slot_minutes = fields.Integer(allow_none=True, metadata={"description": SLOT_MINUTES_DESCRIPTION})
    capacity = fields.Integer(
        allow_none=True,
        metadata={"description": CAPACITY_DESCRIPTION + " Mehr Plätze rücken Wartende nach; weniger Plätze als "
                                                        "schon vergeben ergibt 422."},
    )
    public = fields.Boolean()
    reminder_hours = fields.Integer(metadata={"description": REMINDER_DESCRIPTION})
    topics = fields.List(fields.String(), metadata={"description": TOPIC_DESCRIPTION + " Ersetzt die bisherigen."})
    municipalities = fields.List(
        fields.String(), metadata={"description": MUNICIPALITY_DESCRIPTION + " Ersetzt die bisherigen."}
    )
    status = fields.String(
        validate=validate.OneOf(["published"]),
        metadata={"description": "Nur `published`: einen Entwurf ohne Einladungen veröffentlichen (Feed und "
                                 "Anmeldeseite). Absagen mit `POST /events/{id}/cancel`."},
    )


class InviteResultSchema(Schema):
    invited = fields.Integer(
        metadata={"description": "Neu versandte Einladungen; wer schon eingeladen ist, erhält keine zweite"}
    )


class CancelResultSchema(Schema):
    notified = fields.Integer(metadata={"description": "Absagen (METHOD:CANCEL) an Eingeladene und Angemeldete"})


class RegistrationSchema(Schema):
    """One person's invitation or place for one slot."""

    id = Id()
    event_id = Id()
    slot_id = Id()
    slot_starts_at = fields.DateTime(attribute="slot.starts_at")
    name = fields.String()
    email = fields.String(metadata={"format": "email"})
    municipality = fields.String(attribute="municipality_ags", metadata={"description": "AGS der Gemeinde"})
    district_key = fields.String()
    status = fields.String(metadata={"enum": list(REGISTRATION_STATES)})
    answer = fields.String(attribute="partstat", metadata={"enum": list(PARTSTATS),
                                                           "description": "Antwort (PARTSTAT) der Person"})
    waiting_position = fields.Integer(allow_none=True, metadata={"description": "Platz auf der Warteliste"})
    attendance = fields.String(allow_none=True, metadata={"enum": list(ATTENDANCE)})
    source = fields.String(metadata={"enum": list(REGISTRATION_SOURCES)})
    answered_at = fields.DateTime(allow_none=True)
    created_at = fields.DateTime()


class RegistrationQueryArgsSchema(Schema):
    status = fields.String(validate=validate.OneOf(REGISTRATION_STATES))
    slot_id = Id(metadata={"description": "Nur dieser Termin (Check-in-Liste je Termin)"})


class AttendanceSchema(Schema):
    attendance = fields.String(
        required=True, allow_none=True,
        metadata={"enum": list(ATTENDANCE),
                  "description": "attended, no_show oder null (nicht erfasst); erst ab 12 Stunden vor Beginn"},
    )
