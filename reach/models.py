"""Reach: the touch log, its rollup, the marks of what must be recomputed, and logged contacts.

A *touch* is one reason a municipality counts as reached: one person (or one
logged contact) at one level, through one offer, on one day (Europe/Berlin).
`Touch` rows are derived from the raw rows (deliveries, tracking events,
event mails, registrations, contacts) by `reach.rollup`, never written by
hand; `Rollup` sums them per municipality, level and channel in day, month
and year buckets, so that a report over any period reads a few thousand
rows. `DirtyDay` marks a district's day whose touches must be recomputed;
database triggers write them in the same transaction as the raw change
(`reach.triggers`), whichever code path made it.
"""
import datetime as dt

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.database import DistrictScoped, UTCDateTime
from core.extensions import db
from directory.models import Municipality
from subscribers.models import Topic, utcnow

# Tables derived from the other packages' rows (rebuilt by `flask reach rebuild`): a cache, not data.
DERIVED_TABLES = ("reach_touches", "reach_rollup", "reach_district_rollup", "reach_bits", "reach_dirty", "reach_state")
CONTACT_KINDS = ("vor_ort", "telefon", "video", "email", "veranstaltung_extern", "sonstiges")


class Touch(DistrictScoped, db.Model):
    """One person (or contact) reached one municipality at one level through one offer on one day.

    `person` is a pseudonymous counting key ("s<subscriber id>", "d<delivery
    id>", "r<registration id>", "c<contact id>"), never an address; it only
    tells people apart for the minimum cell size of what viewers see.
    """

    __tablename__ = "reach_touches"

    id: Mapped[int] = mapped_column(primary_key=True)
    district_key: Mapped[str] = mapped_column(String(5))
    municipality_ags: Mapped[str] = mapped_column(String(8))
    level: Mapped[int] = mapped_column(SmallInteger)
    channel: Mapped[int] = mapped_column(SmallInteger)
    offer_id: Mapped[int] = mapped_column(Integer)
    person: Mapped[str] = mapped_column(String(24))
    day: Mapped[dt.date] = mapped_column(Date)

    __table_args__ = (
        Index("ix_reach_touches_district_day", "district_key", "day"),
        Index("ix_reach_touches_municipality", "municipality_ags", "level", "day"),
        Index("ix_reach_touches_offer", "channel", "offer_id"),
    )


class Rollup(DistrictScoped, db.Model):
    """Touches of one municipality, level and channel in one bucket: a day, a month or a year.

    `start` is the bucket's first day; `first_day`/`last_day` the first and
    last day with a touch in it; `touches` the number of touches.
    """

    __tablename__ = "reach_rollup"

    tier: Mapped[int] = mapped_column(SmallInteger)  # 1 day, 2 month, 3 year
    start: Mapped[dt.date] = mapped_column(Date)
    municipality_ags: Mapped[str] = mapped_column(String(8))
    level: Mapped[int] = mapped_column(SmallInteger)
    channel: Mapped[int] = mapped_column(SmallInteger)
    district_key: Mapped[str] = mapped_column(String(5))
    first_day: Mapped[dt.date] = mapped_column(Date)
    last_day: Mapped[dt.date] = mapped_column(Date)
    touches: Mapped[int] = mapped_column(Integer)

    __table_args__ = (
        PrimaryKeyConstraint("tier", "start", "municipality_ags", "level", "channel"),
        Index("ix_reach_rollup_district", "district_key", "tier", "start"),
    )


class MunicipalityBit(db.Model):
    """A municipality's fixed bit in its district's masks (assigned once, never reused; ≤ 63 per district)."""

    __tablename__ = "reach_bits"

    municipality_ags: Mapped[str] = mapped_column(String(8), primary_key=True)
    district_key: Mapped[str] = mapped_column(String(5), index=True)
    bit: Mapped[int] = mapped_column(SmallInteger)


class DistrictRollup(DistrictScoped, db.Model):
    """The rollup summed per district: which of its municipalities had a touch (a bit mask), and the last day.

    The state report reads these: 44 districts × levels × buckets rows
    instead of one row per municipality, and a union of masks is exact
    where a sum of counts would count a municipality twice.
    """

    __tablename__ = "reach_district_rollup"

    tier: Mapped[int] = mapped_column(SmallInteger)
    start: Mapped[dt.date] = mapped_column(Date)
    district_key: Mapped[str] = mapped_column(String(5))
    level: Mapped[int] = mapped_column(SmallInteger)
    channel: Mapped[int] = mapped_column(SmallInteger)
    mask: Mapped[int] = mapped_column(BigInteger)
    last_day: Mapped[dt.date] = mapped_column(Date)

    __table_args__ = (PrimaryKeyConstraint("tier", "start", "district_key", "level", "channel"),)


class DirtyDay(db.Model):
    """A district's UTC day whose touches changed; `reach.rollup.refresh` recomputes it and deletes the mark.

    UTC, because the triggers can not convert to Europe/Berlin on SQLite; a
    UTC day `d` covers the Berlin days `d` and `d + 1`.
    """

    __tablename__ = "reach_dirty"

    district_key: Mapped[str] = mapped_column(String(5), primary_key=True)
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)


class RefreshState(db.Model):
    """When the rollup was last brought up to date (one row), shown as "Stand" on the pages."""

    __tablename__ = "reach_state"

    id: Mapped[int] = mapped_column(primary_key=True)
    refreshed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    rebuilt_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


contact_municipalities = Table(
    "contact_municipalities",
    db.metadata,
    Column("contact_id", ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True),
    Column("municipality_ags", ForeignKey("municipalities.ags", ondelete="CASCADE"), primary_key=True, index=True),
)

contact_topics = Table(
    "contact_topics",
    db.metadata,
    Column("contact_id", ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True),
    Column("topic_id", ForeignKey("topics.id", ondelete="CASCADE"), primary_key=True),
)


class Contact(DistrictScoped, db.Model):
    """Work a coordinator did outside the mail channel: a visit, a call, a video conference …

    No personal data: who was spoken to is not recorded, only where
    (municipalities), when, how and about what.
    """

    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(primary_key=True)
    district_key: Mapped[str] = mapped_column(ForeignKey("districts.key"), index=True)
    date: Mapped[dt.date] = mapped_column(Date, index=True)
    kind: Mapped[str] = mapped_column(String(24))
    note: Mapped[str] = mapped_column(String(500), default="")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    municipalities: Mapped[list[Municipality]] = relationship(
        secondary=contact_municipalities, order_by="Municipality.name", lazy="selectin"
    )
    topics: Mapped[list[Topic]] = relationship(secondary=contact_topics, order_by="Topic.name", lazy="selectin")

    __table_args__ = (
        CheckConstraint(
            "kind IN ('vor_ort', 'telefon', 'video', 'email', 'veranstaltung_extern', 'sonstiges')", name="kind"
        ),
    )

    def __repr__(self):
        return f"<Contact {self.id} {self.district_key} {self.date} {self.kind}>"
