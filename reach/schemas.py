"""Marshmallow schemas of the reach API."""
from marshmallow import Schema, fields, validate

from reach.definition import CHANNELS, LEVELS

LEVEL_CODES = [level.code for level in LEVELS]


class ReachQuerySchema(Schema):
    from_ = fields.Date(data_key="from", metadata={"description": "Erster Tag (Europe/Berlin), ISO 8601; "
                                                                  "Vorgabe: 1. Januar des laufenden Jahres"})
    to = fields.Date(metadata={"description": "Letzter Tag, ISO 8601; Vorgabe: heute"})
    topic = fields.String(validate=validate.Length(max=100), metadata={
        "description": "Nur Angebote (Newsletter, Veranstaltungen, Kontakte) mit einem Thema dieses Namens"})
    channel = fields.List(fields.String(validate=validate.OneOf(list(CHANNELS))), metadata={
        "description": "Nur diese Kanäle (mehrfach oder durch Komma getrennt); Vorgabe: alle"})


class PeriodSchema(Schema):
    first = fields.Date(metadata={"description": "erster Tag des Zeitraums"})
    last = fields.Date(metadata={"description": "letzter Tag des Zeitraums"})
    topic = fields.String(allow_none=True)
    channels = fields.List(fields.String(), metadata={"description": "gewählte Kanäle; leer: alle"})


class SummarySchema(Schema):
    municipalities = fields.Integer(metadata={"description": "Gemeinden (Nenner)"})
    reached = fields.Integer(metadata={"description": "erreicht: zugestellt ∪ angemeldet ∪ teilgenommen ∪ Kontakt"})
    active = fields.Integer(metadata={"description": "aktiv erreicht: geöffnet ∪ geklickt ∪ angemeldet ∪ "
                                                     "teilgenommen ∪ Kontakt"})
    listed = fields.Integer(metadata={"description": "im Verteiler: mindestens eine aktive Abonnentin oder ein "
                                                     "aktiver Abonnent am Ende des Zeitraums"})
    reached_share = fields.Float(allow_none=True)
    active_share = fields.Float(allow_none=True)
    listed_share = fields.Float(allow_none=True)
    ladder = fields.Dict(keys=fields.String(validate=validate.OneOf(LEVEL_CODES)), values=fields.Integer(),
                         metadata={"description": "Gemeinden je Stufe"})
    last_activity = fields.Date(allow_none=True)


class MonthSchema(Schema):
    month = fields.String(metadata={"description": "YYYY-MM"})
    new_reached = fields.Integer()
    cumulative_reached = fields.Integer()
    new_active = fields.Integer()
    cumulative_active = fields.Integer()


class CellSchema(Schema):
    first = fields.Date(allow_none=True)
    last = fields.Date(allow_none=True)
    count = fields.Integer(allow_none=True, metadata={"description": "Berührungen"})
    suppressed = fields.Boolean(metadata={"description": "für Betrachter: weniger als REACH_MIN_CELL Personen, "
                                                         "Werte nicht ausgewiesen"})


class MunicipalityReachSchema(Schema):
    ags = fields.String()
    name = fields.String()
    listed = fields.Boolean()
    reached = fields.Boolean()
    active = fields.Boolean(allow_none=True, metadata={"description": "null: nicht ausgewiesen (Betrachter)"})
    highest_level = fields.String(allow_none=True)
    levels = fields.Dict(keys=fields.String(validate=validate.OneOf(LEVEL_CODES)), values=fields.Nested(CellSchema))


class DistrictRefSchema(Schema):
    key = fields.String()
    name = fields.String()
    kind = fields.String()


class DistrictReachSchema(Schema):
    district = fields.Nested(DistrictRefSchema)
    period = fields.Nested(PeriodSchema)
    totals = fields.Nested(SummarySchema)
    months = fields.List(fields.Nested(MonthSchema))
    municipalities = fields.List(fields.Nested(MunicipalityReachSchema))


class DistrictLineSchema(SummarySchema):
    district = fields.Nested(DistrictRefSchema)


class StateReachSchema(Schema):
    period = fields.Nested(PeriodSchema)
    totals = fields.Nested(SummarySchema)
    districts = fields.List(fields.Nested(DistrictLineSchema))
