"""Each district's subscriber list: subscribers, topics, suppression."""
import secrets
from datetime import datetime, timezone

from sqlalchemy import (
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    String,
    Table,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.database import DistrictScoped, UTCDateTime
from core.extensions import db
from directory.models import Municipality

# --- subscribers -------------------------------------------------------------

SUBSCRIBER_STATUSES = ("pending", "active", "unsubscribed", "bounced", "complained")
CONSENT_SOURCES = ("form", "import", "api", "admin")
SUPPRESSION_REASONS = ("unsubscribed", "bounced", "complained", "erased")


def utcnow():
    return datetime.now(timezone.utc)


def new_public_id():
    return secrets.token_urlsafe(16)


subscriber_topics = Table(
    "subscriber_topics",
    db.metadata,
    Column("subscriber_id", ForeignKey("subscribers.id", ondelete="CASCADE"), primary_key=True),
    Column("topic_id", ForeignKey("topics.id", ondelete="CASCADE"), primary_key=True, index=True),
)


class Topic(DistrictScoped, db.Model):
    """A subject a district's subscribers can choose (service-bw, DMS, E-Rechnung, OZG …)."""

    __tablename__ = "topics"

    id: Mapped[int] = mapped_column(primary_key=True)
    district_key: Mapped[str] = mapped_column(ForeignKey("districts.key", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (UniqueConstraint("district_key", "name"),)

    def __repr__(self):
        return f"<Topic {self.district_key} {self.name}>"


class Subscriber(DistrictScoped, db.Model):
    """One person on one district's list, with the record of their consent.

    `email_key` is the address folded to lower case: the list holds an
    address once however it is spelt. `public_id` is what signed links carry,
    never the row id, so a link can not reach a later row that reuses an id.
    `confirm_nonce` is set while a confirmation mail is outstanding and
    cleared by the confirmation: each confirmation link works once.
    """

    __tablename__ = "subscribers"

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True, default=new_public_id)
    district_key: Mapped[str] = mapped_column(ForeignKey("districts.key"), index=True)
    email: Mapped[str] = mapped_column(String(254))
    email_key: Mapped[str] = mapped_column(String(254))
    name: Mapped[str] = mapped_column(String(200), default="")
    municipality_ags: Mapped[str] = mapped_column(ForeignKey("municipalities.ags"), index=True)
    department: Mapped[str] = mapped_column(String(200), default="")
    status: Mapped[str] = mapped_column(String(20), default="pending", index=True)
    status_changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    # The consent record (double opt-in proof).
    consent_source: Mapped[str] = mapped_column(String(20))
    consent_text_version: Mapped[str] = mapped_column(String(40), default="")
    consent_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    consent_confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    confirm_nonce: Mapped[str | None] = mapped_column(String(32))
    confirmation_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    municipality: Mapped[Municipality] = relationship(lazy="joined")
    topics: Mapped[list[Topic]] = relationship(secondary=subscriber_topics, order_by="Topic.name", lazy="selectin")

    __table_args__ = (
        UniqueConstraint("district_key", "email_key"),
        Index("ix_subscribers_status_municipality", "status", "municipality_ags"),
        CheckConstraint("status IN ('pending', 'active', 'unsubscribed', 'bounced', 'complained')", name="status"),
        CheckConstraint("consent_source IN ('form', 'import', 'api', 'admin')", name="consent_source"),
    )

    @property
    def topic_names(self):
        return [topic.name for topic in self.topics]

    def __repr__(self):
        return f"<Subscriber {self.id} {self.district_key} {self.status}>"


class Suppression(DistrictScoped, db.Model):
    """An address that must not receive the district's list mail, kept as a keyed hash.

    The hash (HMAC-SHA256 of the lower-cased address) lets an import or a
    sign-up recognise the address after the person's data has been erased,
    without keeping the address itself.
    """

    __tablename__ = "suppressions"

    id: Mapped[int] = mapped_column(primary_key=True)
    district_key: Mapped[str] = mapped_column(ForeignKey("districts.key", ondelete="CASCADE"), index=True)
    address_hash: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        UniqueConstraint("district_key", "address_hash"),
        CheckConstraint("reason IN ('unsubscribed', 'bounced', 'complained', 'erased')", name="reason"),
    )
