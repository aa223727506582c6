"""Events (workshops and office hours), their slots, registrations and the mails about them.

Every event has slots, and registrations belong to a slot: a workshop has
exactly one slot (its own date), an office-hours series one per bookable
interval of its occurrences. Capacity, the waiting list and attendance are
therefore handled once, per slot.

Calendar identity: a workshop's calendar entries share the event's UID (each
attendee holds a copy of the same meeting); an office-hours booking is its
own meeting with its own UID. `Event.sequence` counts the event's versions;
`Registration.sequence` is the SEQUENCE of the copy that attendee last
received, so each copy only ever moves forward (RFC 5546).
"""
import secrets
from datetime import datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.database import DistrictScoped, UTCDateTime
from core.extensions import db
from directory.models import Municipality
from subscribers.models import Topic, new_public_id, utcnow

EVENT_KINDS = ("workshop", "office_hours")
EVENT_STATES = ("draft", "published", "cancelled")
# invited: asked, no answer yet (holds no seat); confirmed: has a seat;
# waiting: accepted, on the waiting list; declined: said no; removed: taken
# off by the coordinator.
REGISTRATION_STATES = ("invited", "confirmed", "waiting", "declined", "removed")
# The states whose holder has the event in their calendar and gets its updates.
HOLDS_COPY = ("invited", "confirmed", "waiting")
PARTSTATS = ("NEEDS-ACTION", "ACCEPTED", "TENTATIVE", "DECLINED")
ATTENDANCE = ("attended", "no_show")
REGISTRATION_SOURCES = ("invitation", "form", "booking", "admin", "api")
MAIL_KINDS = ("invitation", "confirmation", "waiting", "promotion", "update", "cancel", "decline", "reminder")
MAIL_STATES = ("queued", "sending", "sent", "deferred", "failed", "suppressed")
OPEN_MAIL_STATES = ("queued", "deferred")


def new_uid():
    return secrets.token_hex(16)


event_topics = Table(
    "event_topics",
    db.metadata,
    Column("event_id", ForeignKey("events.id", ondelete="CASCADE"), primary_key=True),
    Column("topic_id", ForeignKey("topics.id", ondelete="CASCADE"), primary_key=True),
)

event_municipalities = Table(
    "event_municipalities",
    db.metadata,
    Column("event_id", ForeignKey("events.id", ondelete="CASCADE"), primary_key=True),
    Column("municipality_ags", ForeignKey("municipalities.ags", ondelete="CASCADE"), primary_key=True),
)


class Event(DistrictScoped, db.Model):
    """A workshop or an office-hours series of one district.

    `starts_at`/`ends_at` (UTC) are the workshop's time, or for office hours
    the first occurrence's; `rrule` (RFC 5545, without DTSTART) repeats that
    occurrence, and `slot_minutes` cuts each occurrence into bookable slots.
    `topics` and `municipalities` are the invitation audience (empty: all).
    """

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(primary_key=True)
    uid: Mapped[str] = mapped_column(String(64), unique=True, default=new_uid)
    district_key: Mapped[str] = mapped_column(ForeignKey("districts.key"), index=True)
    kind: Mapped[str] = mapped_column(String(12), default="workshop")
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    location: Mapped[str] = mapped_column(String(500), default="")  # address when on site
    online_url: Mapped[str] = mapped_column(String(500), default="")  # meeting link when online
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    rrule: Mapped[str] = mapped_column(String(300), default="")
    slot_minutes: Mapped[int | None] = mapped_column(Integer)
    capacity: Mapped[int | None] = mapped_column(Integer)  # per slot; None: unlimited
    public: Mapped[bool] = mapped_column(Boolean, default=True)  # in the feed, open registration page
    reminder_hours: Mapped[int] = mapped_column(Integer, default=24)  # 0: no reminder
    status: Mapped[str] = mapped_column(String(12), default="draft", index=True)
    sequence: Mapped[int] = mapped_column(Integer, default=0)
    invited_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    district = relationship("District")
    topics: Mapped[list[Topic]] = relationship(secondary=event_topics, order_by="Topic.name", lazy="selectin")
    municipalities: Mapped[list[Municipality]] = relationship(
        secondary=event_municipalities, order_by="Municipality.name", lazy="selectin"
    )
    slots: Mapped[list["Slot"]] = relationship(back_populates="event", order_by="Slot.starts_at",
                                               cascade="all, delete-orphan")

    __table_args__ = (
        CheckConstraint("kind IN ('workshop', 'office_hours')", name="kind"),
        CheckConstraint("status IN ('draft', 'published', 'cancelled')", name="status"),
        CheckConstraint("ends_at > starts_at", name="ends_after_start"),
        CheckConstraint("capacity IS NULL OR capacity >= 0", name="capacity"),
    )

    @property
    def is_office_hours(self):
        return self.kind == "office_hours"

    def __repr__(self):
        return f"<Event {self.id} {self.district_key} {self.kind} {self.status}>"


class Slot(DistrictScoped, db.Model):
    """A bookable time of an event: the workshop itself, or one office-hours interval.

    `version` is bumped by every change of the slot's seats; the UPDATE that
    bumps it is what serialises concurrent registrations (a row lock on
    PostgreSQL, the write lock on SQLite).
    """

    __tablename__ = "event_slots"

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), index=True)
    district_key: Mapped[str] = mapped_column(ForeignKey("districts.key"), index=True)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    capacity: Mapped[int | None] = mapped_column(Integer)
    cancelled: Mapped[bool] = mapped_column(Boolean, default=False)
    version: Mapped[int] = mapped_column(Integer, default=0)

    event: Mapped[Event] = relationship(back_populates="slots")

    __table_args__ = (
        UniqueConstraint("event_id", "starts_at"),
        Index("ix_event_slots_district_starts", "district_key", "starts_at"),
    )


class Registration(DistrictScoped, db.Model):
    """One person's place (or invitation) for one slot.

    The address and name are the registration's own, so staff not on the
    list can register through the public page; `subscriber_id` links it to
    the list where there is a subscriber. The municipality is kept apart so
    reach figures survive an erasure.
    """

    __tablename__ = "registrations"

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True, default=new_public_id)
    uid: Mapped[str] = mapped_column(String(64), unique=True, default=new_uid)  # office-hours booking's UID
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), index=True)
    slot_id: Mapped[int] = mapped_column(ForeignKey("event_slots.id", ondelete="CASCADE"), index=True)
    district_key: Mapped[str] = mapped_column(ForeignKey("districts.key"), index=True)
    subscriber_id: Mapped[int | None] = mapped_column(ForeignKey("subscribers.id", ondelete="SET NULL"), index=True)
    municipality_ags: Mapped[str] = mapped_column(ForeignKey("municipalities.ags"), index=True)
    email: Mapped[str] = mapped_column(String(254))
    email_key: Mapped[str] = mapped_column(String(254))
    name: Mapped[str] = mapped_column(String(200), default="")
    status: Mapped[str] = mapped_column(String(12), default="invited")
    partstat: Mapped[str] = mapped_column(String(12), default="NEEDS-ACTION")
    source: Mapped[str] = mapped_column(String(12), default="invitation")
    waiting_position: Mapped[int | None] = mapped_column(Integer)
    sequence: Mapped[int | None] = mapped_column(Integer)  # of the calendar copy last sent
    attendance: Mapped[str | None] = mapped_column(String(10))
    reminded_for: Mapped[datetime | None] = mapped_column(UTCDateTime)  # slot start the last reminder was for
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    event: Mapped[Event] = relationship()
    slot: Mapped[Slot] = relationship()
    subscriber = relationship("Subscriber")
    municipality: Mapped[Municipality] = relationship(lazy="joined")

    __table_args__ = (
        UniqueConstraint("slot_id", "email_key"),
        Index("ix_registrations_slot_status", "slot_id", "status"),
        CheckConstraint("status IN ('invited', 'confirmed', 'waiting', 'declined', 'removed')", name="status"),
        CheckConstraint("partstat IN ('NEEDS-ACTION', 'ACCEPTED', 'TENTATIVE', 'DECLINED')", name="partstat"),
        CheckConstraint("attendance IS NULL OR attendance IN ('attended', 'no_show')", name="attendance"),
        CheckConstraint("source IN ('invitation', 'form', 'booking', 'admin', 'api')", name="source"),
    )

    def __repr__(self):
        return f"<Registration {self.id} event {self.event_id} {self.status}>"


class EventMail(DistrictScoped, db.Model):
    """One mail about an event to one person, sent by the same claim/lease pipeline as newsletters.

    Written in the transaction that made the change it reports, with the
    calendar METHOD and SEQUENCE fixed then, so mails leave in the order of
    the changes and each exactly once. An office-hours invitation goes to a
    subscriber who has no registration yet (it carries a booking link).
    """

    __tablename__ = "event_mails"

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), index=True)
    registration_id: Mapped[int | None] = mapped_column(ForeignKey("registrations.id", ondelete="CASCADE"),
                                                        index=True)
    subscriber_id: Mapped[int | None] = mapped_column(ForeignKey("subscribers.id", ondelete="SET NULL"), index=True)
    district_key: Mapped[str] = mapped_column(ForeignKey("districts.key"), index=True)
    municipality_ags: Mapped[str] = mapped_column(ForeignKey("municipalities.ags"), index=True)
    kind: Mapped[str] = mapped_column(String(12))
    method: Mapped[str | None] = mapped_column(String(8))  # REQUEST, CANCEL, or None (no calendar)
    sequence: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(12), default="queued")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    smtp_reply: Mapped[str] = mapped_column(String(500), default="")
    message_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    event: Mapped[Event] = relationship()
    registration: Mapped[Registration | None] = relationship()

    __table_args__ = (
        Index("ix_event_mails_due", "event_id", "status", "next_attempt_at"),
        CheckConstraint(
            "kind IN ('invitation', 'confirmation', 'waiting', 'promotion', 'update', 'cancel', 'decline', "
            "'reminder')", name="kind"),
        CheckConstraint("method IS NULL OR method IN ('REQUEST', 'CANCEL')", name="method"),
        CheckConstraint("status IN ('queued', 'sending', 'sent', 'deferred', 'failed', 'suppressed')", name="status"),
        # A sent mail outlives its recipient's erasure, as anonymous reach.
        CheckConstraint("registration_id IS NOT NULL OR subscriber_id IS NOT NULL OR status = 'sent'",
                        name="recipient"),
        Index("ix_event_mails_district_sent", "district_key", "sent_at"),
    )
