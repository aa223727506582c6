"""Marshmallow schemas of the contacts API (Kontakte)."""
from marshmallow import Schema, fields

from core.api import Id
from reach.contacts import KIND_LABELS, MAX_NOTE
from reach.models import CONTACT_KINDS
from subscribers.schemas import MunicipalityRefSchema

KIND_DESCRIPTION = (
    "Art des Kontakts: vor_ort (Vor-Ort-Termin), telefon, video (Videokonferenz), email, "
    "veranstaltung_extern, sonstiges. Eine andere Angabe ergibt 422."
)
DATE_DESCRIPTION = "Tag des Kontakts (ISO 8601, 2026-11-21): nicht in der Zukunft (Europe/Berlin), nicht vor 2000."
MUNICIPALITY_DESCRIPTION = "Gemeinden des Kreises (AGS), mindestens eine. Eine unbekannte Gemeinde ergibt 422."
TOPIC_DESCRIPTION = (
    "Themen des Kreises, jeweils mit ihrem Namen (ohne Beachtung der Groß-/Kleinschreibung). "
    "Ein unbekanntes Thema ergibt 422."
)
NOTE_DESCRIPTION = f"Kurze Notiz, höchstens {MAX_NOTE} Zeichen, ohne personenbezogene Daten."


class ContactSchema(Schema):
    """A logged contact; times are ISO 8601 in UTC with offset."""

    id = Id()
    district = fields.String(attribute="district_key", metadata={"example": "08115"})
    date = fields.Date()
    kind = fields.String(metadata={"enum": list(CONTACT_KINDS)})
    kind_label = fields.Method("label_of", metadata={"description": "Bezeichnung der Art in der Sprache der Anfrage"})
    municipalities = fields.List(fields.Nested(MunicipalityRefSchema))
    topics = fields.List(fields.String(), attribute="topic_names", metadata={"description": "Namen der Themen"})
    note = fields.String()
    created_at = fields.DateTime()
    updated_at = fields.DateTime()

    def label_of(self, contact):
        return str(KIND_LABELS[contact.kind])

    def get_attribute(self, obj, attr, default):
        if attr == "topic_names":
            return [topic.name for topic in obj.topics]
        return super().get_attribute(obj, attr, default)


class ContactQueryArgsSchema(Schema):
    date_from = fields.Date(data_key="from", metadata={"description": "Kontakte ab diesem Tag (einschließlich)"})
    date_to = fields.Date(data_key="to", metadata={"description": "Kontakte bis zu diesem Tag (einschließlich)"})
    municipality = fields.String(metadata={"description": "AGS einer Gemeinde des Kreises (sonst 422)"})
    kind = fields.String(metadata={"enum": list(CONTACT_KINDS), "description": "Art des Kontakts (sonst 422)"})
    topic = fields.String(metadata={"description": "Name eines Themas des Kreises (sonst 422)"})


class ContactCreateSchema(Schema):
    date = fields.Date(required=True, metadata={"description": DATE_DESCRIPTION})
    kind = fields.String(required=True, metadata={"enum": list(CONTACT_KINDS), "description": KIND_DESCRIPTION})
    municipalities = fields.List(fields.String(), required=True, metadata={"description": MUNICIPALITY_DESCRIPTION})
    topics = fields.List(fields.String(), load_default=list, metadata={"description": TOPIC_DESCRIPTION})
    note = fields.String(load_default="", metadata={"description": NOTE_DESCRIPTION})


class ContactUpdateSchema(Schema):
    """Only the fields sent are changed."""

    date = fields.Date(metadata={"description": DATE_DESCRIPTION})
    kind = fields.String(metadata={"enum": list(CONTACT_KINDS), "description": KIND_DESCRIPTION})
    municipalities = fields.List(
        fields.String(), metadata={"description": MUNICIPALITY_DESCRIPTION + " Ersetzt die bisherigen."}
    )
    topics = fields.List(fields.String(), metadata={"description": TOPIC_DESCRIPTION + " Ersetzt die bisherigen."})
    note = fields.String(metadata={"description": NOTE_DESCRIPTION})
