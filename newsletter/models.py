"""Newsletters, their deliveries (one row per recipient), links and tracking events."""
from datetime import datetime

from sqlalchemy import (
    BigInteger,
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
    false,
    func,
    literal_column,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.database import DistrictScoped, UTCDateTime
from core.extensions import db
from directory.models import Municipality
from subscribers.models import Topic, utcnow

NEWSLETTER_STATES = ("draft", "scheduled", "sending", "paused", "sent", "cancelled")
BODY_FORMATS = ("markdown", "mjml")
DELIVERY_STATES = ("queued", "sending", "sent", "deferred", "failed", "bounced", "suppressed")
# Rows a send job may still pick up.
OPEN_DELIVERY_STATES = ("queued", "deferred")

newsletter_topics = Table(
    "newsletter_topics",
    db.metadata,
    Column("newsletter_id", ForeignKey("newsletters.id", ondelete="CASCADE"), primary_key=True),
    Column("topic_id", ForeignKey("topics.id", ondelete="CASCADE"), primary_key=True),
)

newsletter_municipalities = Table(
    "newsletter_municipalities",
    db.metadata,
    Column("newsletter_id", ForeignKey("newsletters.id", ondelete="CASCADE"), primary_key=True),
    Column("municipality_ags", ForeignKey("municipalities.ags", ondelete="CASCADE"), primary_key=True),
)


class Newsletter(DistrictScoped, db.Model):
    """One newsletter of a district: its content, audience and sending state.

    `compiled_html`/`compiled_text` hold the MJML compiled once, with the
    Jinja placeholders for personalisation still in them; `compiled_html` is
    None until the content compiles, and only a compiled newsletter is sent.
    Times are UTC.
    """

    __tablename__ = "newsletters"

    id: Mapped[int] = mapped_column(primary_key=True)
    district_key: Mapped[str] = mapped_column(ForeignKey("districts.key"), index=True)
    subject: Mapped[str] = mapped_column(String(200))
    preheader: Mapped[str] = mapped_column(String(200), default="")
    body_format: Mapped[str] = mapped_column(String(10), default="markdown")
    body: Mapped[str] = mapped_column(Text, default="")
    tracking: Mapped[bool] = mapped_column(Boolean, default=True)
    # Shown in the public archive (and at its web-version URL) once sending began; the coordinator's choice.
    published_in_archive: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    status: Mapped[str] = mapped_column(String(12), default="draft", index=True)
    scheduled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    compiled_html: Mapped[str | None] = mapped_column(Text)
    compiled_text: Mapped[str | None] = mapped_column(Text)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    district = relationship("District")
    topics: Mapped[list[Topic]] = relationship(secondary=newsletter_topics, order_by="Topic.name", lazy="selectin")
    municipalities: Mapped[list[Municipality]] = relationship(
        secondary=newsletter_municipalities, order_by="Municipality.name", lazy="selectin"
    )
    links: Mapped[list["Link"]] = relationship(back_populates="newsletter", order_by="Link.id",
                                               cascade="all, delete-orphan")

    __table_args__ = (
        CheckConstraint("status IN ('draft', 'scheduled', 'sending', 'paused', 'sent', 'cancelled')", name="status"),
        CheckConstraint("body_format IN ('markdown', 'mjml')", name="body_format"),
    )

    def __repr__(self):
        return f"<Newsletter {self.id} {self.district_key} {self.status}>"


class Delivery(DistrictScoped, db.Model):
    """The newsletter to one recipient: written at send start, then claimed, sent and recorded.

    `claimed_until` is the lease of the job that holds the row while it is
    `sending`; a row whose lease ran out belongs to a job that died, and the
    reconciler puts it back. The municipality is kept apart from the
    subscriber so reach figures survive the subscriber's erasure
    (`subscriber_id` then becomes NULL).
    """

    __tablename__ = "deliveries"

    id: Mapped[int] = mapped_column(primary_key=True)
    newsletter_id: Mapped[int] = mapped_column(ForeignKey("newsletters.id", ondelete="CASCADE"))
    subscriber_id: Mapped[int | None] = mapped_column(ForeignKey("subscribers.id", ondelete="SET NULL"), index=True)
    district_key: Mapped[str] = mapped_column(ForeignKey("districts.key"), index=True)
    municipality_ags: Mapped[str] = mapped_column(ForeignKey("municipalities.ags"), index=True)
    status: Mapped[str] = mapped_column(String(12), default="queued")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    smtp_reply: Mapped[str] = mapped_column(String(500), default="")
    message_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    newsletter: Mapped[Newsletter] = relationship()
    subscriber = relationship("Subscriber")

    __table_args__ = (
        UniqueConstraint("newsletter_id", "subscriber_id"),
        Index("ix_deliveries_due", "newsletter_id", "status", "next_attempt_at"),
        Index("ix_deliveries_district_sent", "district_key", "sent_at"),
        CheckConstraint(
            "status IN ('queued', 'sending', 'sent', 'deferred', 'failed', 'bounced', 'suppressed')", name="status"
        ),
    )


class Link(DistrictScoped, db.Model):
    """A link of a newsletter; a click redirect looks its target up here by id, never from the URL."""

    __tablename__ = "links"

    id: Mapped[int] = mapped_column(primary_key=True)
    newsletter_id: Mapped[int] = mapped_column(ForeignKey("newsletters.id", ondelete="CASCADE"), index=True)
    district_key: Mapped[str] = mapped_column(ForeignKey("districts.key"))
    url: Mapped[str] = mapped_column(Text)

    newsletter: Mapped[Newsletter] = relationship(back_populates="links")


def _first_hit(context):
    """A row written without `last_at` was hit once, at `created_at`."""
    return context.get_current_parameters().get("created_at") or utcnow()


class TrackingEvent(DistrictScoped, db.Model):
    """Opens or clicks of one delivery, counted on one row per window. No IP address.

    Repeated hits of the same delivery, kind and link within one window
    (TRACKING_WINDOW_SECONDS; `bucket` numbers it) add to `hits` and move
    `last_at` instead of adding rows, so a pixel fetched ten thousand times
    leaves a few rows. `machine` (prefetches and proxies) is part of what a
    row stands for: a machine's hits and a reader's are never counted
    together. `created_at` is the first hit; a window never spans two
    Berlin days, so the day a row counts on in reach is every hit's day.
    """

    __tablename__ = "tracking_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("deliveries.id", ondelete="CASCADE"))
    district_key: Mapped[str] = mapped_column(ForeignKey("districts.key"))
    kind: Mapped[str] = mapped_column(String(5))
    link_id: Mapped[int | None] = mapped_column(ForeignKey("links.id", ondelete="CASCADE"))
    machine: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_at: Mapped[datetime] = mapped_column(UTCDateTime, default=_first_hit)
    hits: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    # The window of the first hit (newsletter.tracking.hit_bucket). NULL (rows
    # from before windows, rows written one per event) never collides: such a
    # row stands on its own.
    bucket: Mapped[int | None] = mapped_column(BigInteger)

    delivery: Mapped[Delivery] = relationship()

    __table_args__ = (
        CheckConstraint("kind IN ('open', 'click')", name="kind"),
        Index("ix_tracking_events_district_created", "district_key", "created_at"),
        # What a hit is counted on; it also serves every lookup by delivery.
        # COALESCE: opens have no link, and NULLs never collide in a unique index.
        Index("uq_tracking_events_hit", "delivery_id", "kind", func.coalesce(link_id, literal_column("0")),
              "machine", "bucket", unique=True),
    )
