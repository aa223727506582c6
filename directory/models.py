"""Districts (Kreise) and their municipalities (Gemeinden): the directory every package refers to."""
from sqlalchemy import CheckConstraint, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.database import DistrictScoped
from core.extensions import db

DISTRICT_KINDS = ("Landkreis", "Stadtkreis")


class District(DistrictScoped, db.Model):
    __tablename__ = "districts"

    key: Mapped[str] = mapped_column(String(5), primary_key=True)  # Kreisschlüssel
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))

    municipalities: Mapped[list["Municipality"]] = relationship(
        back_populates="district", order_by="Municipality.name"
    )

    __table_args__ = (CheckConstraint("kind IN ('Landkreis', 'Stadtkreis')", name="kind"),)

    @classmethod
    def scope_criteria(cls, district_keys):
        return cls.key.in_(district_keys)

    @property
    def display_name(self):
        return f"{self.kind} {self.name}"

    def __repr__(self):
        return f"<District {self.key} {self.name}>"


class Municipality(DistrictScoped, db.Model):
    __tablename__ = "municipalities"

    ags: Mapped[str] = mapped_column(String(8), primary_key=True)  # Amtlicher Gemeindeschlüssel
    name: Mapped[str] = mapped_column(String(200))
    district_key: Mapped[str] = mapped_column(ForeignKey("districts.key"), index=True)

    district: Mapped[District] = relationship(back_populates="municipalities")

    def __repr__(self):
        return f"<Municipality {self.ags} {self.name}>"


OUTLINE_KINDS = ("district", "municipality", "area")


class Outline(db.Model):
    """A map outline: a district, a municipality, or an unincorporated area (gemeindefreies Gebiet).

    `key` is the Kreisschlüssel (5 digits) or the AGS (8 digits); `geometry`
    a GeoJSON Polygon or MultiPolygon in WGS84, as text. Outlines are public
    geodata, so they are not district-scoped.
    """

    __tablename__ = "outlines"

    key: Mapped[str] = mapped_column(String(8), primary_key=True)
    kind: Mapped[str] = mapped_column(String(12))
    district_key: Mapped[str] = mapped_column(String(5), index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    geometry: Mapped[str] = mapped_column(Text)

    __table_args__ = (CheckConstraint("kind IN ('district', 'municipality', 'area')", name="kind"),)
