"""Marshmallow schemas of the subscribers package's API."""
from marshmallow import Schema, fields


class DistrictSchema(Schema):
    key = fields.String(metadata={"description": "Kreisschlüssel (5 Ziffern)", "example": "08115"})
    name = fields.String(metadata={"example": "Böblingen"})
    kind = fields.String(metadata={"enum": ["Landkreis", "Stadtkreis"]})
    municipality_count = fields.Integer()


class MunicipalitySchema(Schema):
    ags = fields.String(metadata={"description": "Amtlicher Gemeindeschlüssel (8 Ziffern)", "example": "08115003"})
    name = fields.String()
    district_key = fields.String()
