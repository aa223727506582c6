"""Marshmallow schemas of the subscribers package's API."""
from flask_babel import gettext as _
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from core.api import Id
from subscribers.models import CONSENT_SOURCES, SUBSCRIBER_STATUSES


class DistrictSchema(Schema):
    key = fields.String(metadata={"description": "Kreisschlüssel (5 Ziffern)", "example": "08115"})
    name = fields.String(metadata={"example": "Böblingen"})
    kind = fields.String(metadata={"enum": ["Landkreis", "Stadtkreis"]})
    municipality_count = fields.Integer()


class MunicipalitySchema(Schema):
    ags = fields.String(metadata={"description": "Amtlicher Gemeindeschlüssel (8 Ziffern)", "example": "08115003"})
    name = fields.String()
    district_key = fields.String()


# --- subscribers ---------------------------------------------------------------

TOPIC_DESCRIPTION = (
    "Themen des Kreises, jeweils mit ihrem Namen (ohne Beachtung der Groß-/Kleinschreibung), "
    "wie sie in `topics` der Abonnentendarstellung stehen. Ein unbekanntes Thema ergibt 422."
)


class MunicipalityRefSchema(Schema):
    ags = fields.String(metadata={"description": "Amtlicher Gemeindeschlüssel (8 Ziffern)", "example": "08115003"})
    name = fields.String(metadata={"example": "Böblingen, Stadt"})


class ConsentSchema(Schema):
    """The consent record: where the consent comes from and when it was asked for and given."""

    source = fields.String(
        attribute="consent_source",
        metadata={"enum": list(CONSENT_SOURCES), "description": "form, import, api oder admin"},
    )
    text_version = fields.String(
        attribute="consent_text_version", metadata={"description": "Version des gezeigten Einwilligungstextes"}
    )
    requested_at = fields.DateTime(attribute="consent_requested_at", allow_none=True)
    confirmed_at = fields.DateTime(
        attribute="consent_confirmed_at", allow_none=True,
        metadata={"description": "Zeitpunkt der Bestätigung; leer, solange die Adresse unbestätigt ist"},
    )


class SubscriberSchema(Schema):
    """A subscriber as the API shows it; times are ISO 8601 in UTC with offset."""

    id = Id()
    email = fields.String(metadata={"format": "email"})
    name = fields.String()
    department = fields.String(metadata={"description": "Dienststelle oder Funktion"})
    district_key = fields.String(metadata={"example": "08115"})
    municipality = fields.Nested(MunicipalityRefSchema)
    topics = fields.List(fields.String(), attribute="topic_names", metadata={"description": "Namen der Themen"})
    status = fields.String(metadata={"enum": list(SUBSCRIBER_STATUSES)})
    status_changed_at = fields.DateTime()
    created_at = fields.DateTime()
    consent = fields.Nested(ConsentSchema)

    def get_attribute(self, obj, attr, default):
        # The consent record is a group of the subscriber's own columns.
        if attr == "consent":
            return obj
        return super().get_attribute(obj, attr, default)


class SubscriberQueryArgsSchema(Schema):
    status = fields.String(validate=validate.OneOf(SUBSCRIBER_STATUSES))
    municipality = fields.String(metadata={"description": "AGS einer Gemeinde des Kreises (sonst 422)"})
    topic = fields.String(
        metadata={"description": "Name eines Themas des Kreises (ohne Beachtung der Groß-/Kleinschreibung; "
                                 "ein unbekanntes Thema ergibt 422)"}
    )
    q = fields.String(
        validate=validate.Length(max=200),
        metadata={
            "description": "Suche in E-Mail-Adresse und Name (Teilwort, ohne Beachtung der Groß-/Kleinschreibung)"
        },
    )


class SubscriberCreateSchema(Schema):
    email = fields.String(required=True, metadata={"format": "email"})
    name = fields.String(required=True, metadata={"description": "Name der Person (darf leer sein)"})
    municipality = fields.String(required=True, metadata={"description": "AGS einer Gemeinde des Kreises"})
    department = fields.String(load_default="", metadata={"description": "Dienststelle oder Funktion"})
    topics = fields.List(fields.String(), load_default=list, metadata={"description": TOPIC_DESCRIPTION})
    double_opt_in = fields.Boolean(
        load_default=False,
        metadata={"description": "true: die Person erhält eine Bestätigungsmail und bleibt bis zur Bestätigung "
                                 "`pending`. false (Vorgabe): die Person ist sofort `active`; dann ist "
                                 "`consent_source` Pflicht."},
    )
    consent_source = fields.String(
        validate=validate.OneOf(CONSENT_SOURCES),
        metadata={"description": "Woher die Einwilligung stammt (form, import, api, admin). Pflicht ohne "
                                 "Double-Opt-in; mit Double-Opt-in optional (Vorgabe: api)."},
    )
    consent_text_version = fields.String(
        load_default="",
        validate=validate.Length(max=40),
        metadata={"description": "Version des gezeigten Einwilligungstextes. Mit Double-Opt-in ist die Vorgabe "
                                 "die aktuelle Version des Anmeldeformulars."},
    )

    @validates_schema
    def consent_is_stated(self, data, **kwargs):
        if not data.get("double_opt_in") and not data.get("consent_source"):
            raise ValidationError(
                _("Ohne Double-Opt-in ist die Herkunft der Einwilligung anzugeben (form, import, api oder admin)."),
                field_name="consent_source",
            )


class SubscriberUpdateSchema(Schema):
    """Only the fields sent are changed."""

    email = fields.String(metadata={"format": "email"})
    name = fields.String()
    municipality = fields.String(metadata={"description": "AGS einer Gemeinde des Kreises"})
    department = fields.String()
    topics = fields.List(
        fields.String(), metadata={"description": TOPIC_DESCRIPTION + " Ersetzt die bisherigen Themen."}
    )
    status = fields.String(
        validate=validate.OneOf(SUBSCRIBER_STATUSES),
        metadata={"description": "Nur `unsubscribed` ist möglich (Abmeldung, die Adresse kommt auf die Sperrliste); "
                                 "aktiv wird eine Adresse nur durch ihre eigene Bestätigung (sonst 422)."},
    )
