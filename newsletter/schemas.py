"""Marshmallow schemas of the newsletter API."""
from marshmallow import Schema, fields, validate

from core.api import Id
from newsletter.models import BODY_FORMATS, NEWSLETTER_STATES

TOPIC_DESCRIPTION = (
    "Themen des Kreises mit ihrem Namen (ohne Beachtung der Groß-/Kleinschreibung). Leer: alle aktiven "
    "Abonnements; sonst alle, die mindestens eines der Themen abonniert haben. Ein unbekanntes Thema ergibt 422."
)
MUNICIPALITY_DESCRIPTION = (
    "Amtliche Gemeindeschlüssel (AGS) von Gemeinden des Kreises. Leer: alle Gemeinden. "
    "Eine unbekannte Gemeinde ergibt 422."
)
BODY_DESCRIPTION = (
    "Inhalt in Markdown (wird in das Layout des Kreises gesetzt) oder MJML-Abschnitte (`mj-section` …). "
    "Erlaubte Platzhalter: `{{ name }}`, `{{ email }}`, `{{ municipality }}`, `{{ preferences_url }}`, "
    "`{{ unsubscribe_url }}`, `{{ web_url }}`. Fehler der Vorlage oder des MJML ergeben 422 mit der Zeile."
)


class StatsSchema(Schema):
    """Delivery and reach figures; counts of deliveries unless said otherwise."""

    recipients = fields.Integer(metadata={"description": "Zustellungen insgesamt (eine je Empfänger)"})
    queued = fields.Integer()
    sending = fields.Integer()
    sent = fields.Integer()
    deferred = fields.Integer(metadata={"description": "vorübergehend abgelehnt, wird erneut versucht"})
    failed = fields.Integer()
    bounced = fields.Integer()
    suppressed = fields.Integer(metadata={"description": "übersprungen (abgemeldet oder gesperrt seit dem Start)"})
    opens_human = fields.Integer(metadata={"description": "Zustellungen, die ein Mensch geöffnet oder angeklickt hat"})
    opens_machine = fields.Integer(
        metadata={"description": "Zustellungen, die nur automatisch geöffnet wurden (Mail-Proxys, Scanner)"}
    )
    clicks = fields.Integer(metadata={"description": "Zustellungen mit mindestens einem Klick eines Menschen"})
    clicks_total = fields.Integer(metadata={"description": "Klicks von Menschen insgesamt"})
    clicks_machine = fields.Integer(metadata={"description": "automatische Klicks (Linkprüfer)"})
    municipalities_reached = fields.Integer(metadata={"description": "Gemeinden mit mindestens einer gesendeten Mail"})
    municipalities_opened = fields.Integer(metadata={"description": "Gemeinden mit mindestens einer Öffnung"})
    district_municipalities = fields.Integer(metadata={"description": "Gemeinden des Kreises"})


class TopicRefSchema(Schema):
    id = Id()
    name = fields.String()


class MunicipalityRefSchema(Schema):
    ags = fields.String(metadata={"example": "08115003"})
    name = fields.String()


class NewsletterSchema(Schema):
    """A newsletter; times are ISO 8601 in UTC with offset."""

    id = Id()
    district_key = fields.String(metadata={"example": "08115"})
    subject = fields.String()
    preheader = fields.String()
    body_format = fields.String(metadata={"enum": list(BODY_FORMATS)})
    body = fields.String()
    tracking = fields.Boolean()
    published_in_archive = fields.Boolean(metadata={"description": "Im öffentlichen Archiv veröffentlicht"})
    topics = fields.List(fields.String(), attribute="topic_names", metadata={"description": "Namen der Themen"})
    municipalities = fields.List(fields.String(), attribute="municipality_ags", metadata={"description": "AGS"})
    status = fields.String(metadata={"enum": list(NEWSLETTER_STATES)})
    scheduled_at = fields.DateTime(allow_none=True)
    started_at = fields.DateTime(allow_none=True)
    finished_at = fields.DateTime(allow_none=True)
    created_at = fields.DateTime()
    updated_at = fields.DateTime()
    web_url = fields.String(allow_none=True,
                            metadata={"description": "Webversion im Archiv, sobald versendet und veröffentlicht"})

    def get_attribute(self, obj, attr, default):
        if attr == "topic_names":
            return [topic.name for topic in obj.topics]
        if attr == "municipality_ags":
            return [m.ags for m in obj.municipalities]
        if attr == "web_url":
            from core.urls import external_url
            from newsletter.archive import PUBLISHED

            if obj.status not in PUBLISHED or not obj.published_in_archive:
                return None
            return external_url("archive.newsletter", key=obj.district_key, id=obj.id)
        return super().get_attribute(obj, attr, default)


class NewsletterDetailSchema(NewsletterSchema):
    audience_size = fields.Integer(
        allow_none=True,
        metadata={"description": "Empfänger, an die der Newsletter jetzt ginge (vor dem Versand; danach null)"},
    )
    stats = fields.Nested(StatsSchema)


class NewsletterCreateSchema(Schema):
    subject = fields.String(required=True, metadata={"description": "Betreff (1 bis 200 Zeichen, Platzhalter erlaubt)"})
    body = fields.String(required=True, metadata={"description": BODY_DESCRIPTION})
    body_format = fields.String(load_default="markdown", validate=validate.OneOf(BODY_FORMATS))
    preheader = fields.String(load_default="", metadata={"description": "Vorschautext (höchstens 200 Zeichen)"})
    tracking = fields.Boolean(load_default=True, metadata={"description": "Öffnungen und Klicks zählen"})
    published_in_archive = fields.Boolean(
        load_default=False, metadata={"description": "Nach dem Versand im öffentlichen Archiv zeigen"}
    )
    topics = fields.List(fields.String(), load_default=list, metadata={"description": TOPIC_DESCRIPTION})
    municipalities = fields.List(fields.String(), load_default=list, metadata={"description": MUNICIPALITY_DESCRIPTION})


class NewsletterUpdateSchema(Schema):
    """Only the fields sent change; only a draft or a scheduled newsletter can be changed (else 409)."""

    subject = fields.String()
    body = fields.String(metadata={"description": BODY_DESCRIPTION})
    body_format = fields.String(validate=validate.OneOf(BODY_FORMATS))
    preheader = fields.String()
    tracking = fields.Boolean()
    published_in_archive = fields.Boolean(
        metadata={"description": "Im öffentlichen Archiv zeigen; auch nach dem Versand änderbar"}
    )
    topics = fields.List(fields.String(), metadata={"description": TOPIC_DESCRIPTION + " Ersetzt die bisherigen."})
    municipalities = fields.List(
        fields.String(), metadata={"description": MUNICIPALITY_DESCRIPTION + " Ersetzt die bisherigen."}
    )


class SendSchema(Schema):
    at = fields.DateTime(
        load_default=None,
        metadata={"description": "Zeitpunkt in ISO 8601 mit Zeitzone, zum Beispiel 2026-12-01T09:00:00+01:00; "
                                 "in der Zukunft. Ohne: sofort senden."},
    )


class TestSendSchema(Schema):
    addresses = fields.List(
        fields.String(), required=True, metadata={"description": "1 bis 10 Adressen; die Mail trägt [TEST] im Betreff"}
    )


class TestSendResultSchema(Schema):
    sent_to = fields.List(fields.String())

