"""Tables of the shared plumbing (core/)."""
from datetime import datetime

from sqlalchemy import Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.database import UTCDateTime
from core.extensions import db


class SentMail(db.Model):
    """The sending jobs' journal of mails the server took, until they are applied to their rows.

    One row per mail, appended as soon as the server answered 250
    (`core.pipeline.MailRows.record`): an insert at the end of a small table
    costs a third of updating the mail row with its indexes and triggers.
    The job applies its entries to the mail rows (`status = 'sent'`) at the
    end of each batch; the reconciler applies those of a job that died
    before it gives the job's rows back to the queue. A mail row with an
    entry here counts as sent.
    """

    __tablename__ = "sent_mails"

    id: Mapped[int] = mapped_column(primary_key=True)
    table_name: Mapped[str] = mapped_column(String(40))
    row_id: Mapped[int]
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime)
    message_id: Mapped[str] = mapped_column(String(255))

    __table_args__ = (Index("ix_sent_mails_row", "table_name", "row_id"),)


class Setting(db.Model):
    """A setting that admins change at run time, shared by every web and worker process.

    Only the legal pages use it (`legal.services`): keys `legal.<page>.url`
    and `legal.<page>.text`. A missing row means "not set".
    """

    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
