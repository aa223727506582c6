"""The sending pipeline: delivery rows, batch claims, SMTP, and the record of each mail.

1. `start_sending` writes one delivery row per recipient (active, not
   suppressed, matching the audience) and marks the newsletter `sending`.
2. RQ jobs (`jobs.send_newsletter`, they take the newsletter id only) each
   claim a batch of due rows atomically (`FOR UPDATE SKIP LOCKED` on
   PostgreSQL; on SQLite a conditional UPDATE, which SQLite serialises), mark
   them `sending` with a lease, send them over one reused SMTP connection and
   record each row as soon as the server answered. A worker that dies loses
   at most the one mail between the server's answer and that record; a
   dropped SMTP session is reopened, and a job asked to stop gives its unsent
   rows back at once (`core.pipeline.send_batches`).
3. The reconciler (`reconcile`, run by every worker at start and then
   periodically) starts scheduled newsletters that are due, returns rows
   whose lease ran out (their job died) to the queue, makes sure jobs exist
   for newsletters with due rows, and marks finished newsletters `sent`. All
   of it is rebuilt from the database, so a lost Redis only delays mail.

Claiming, leases, recording and the SMTP answers are `core.pipeline`,
shared with event mails; here are the newsletter's rules around them.
"""
from types import SimpleNamespace as Row

from flask import current_app
from sqlalchemy import func, insert, select, update

from core.extensions import db
from core.mail import sender_address, service_headers
from core.pipeline import Mail, MailRows, send_batches
from core.tokens import make_token
from core.urls import base_host, external_url
from directory.identity import district_sender, inbound_address, mail_context
from directory.models import Municipality
from newsletter import compose, message
from newsletter.models import (
    OPEN_DELIVERY_STATES,
    Delivery,
    Newsletter,
    newsletter_municipalities,
    newsletter_topics,
)
from subscribers import services as subscriber_services
from subscribers.mail import list_id
from subscribers.models import Subscriber, subscriber_topics, utcnow

delivery_rows = MailRows(Delivery, Delivery.newsletter_id)


class SendingError(ValueError):
    """A rule of sending was broken; the message is fit to show."""


# --- audience and start ---------------------------------------------------------


def audience_query(newsletter):
    """SELECT of the subscribers the newsletter goes to: active, in its topics and municipalities (if any)."""
    query = select(Subscriber).where(Subscriber.district_key == newsletter.district_key, Subscriber.status == "active")
    topic_ids = select(newsletter_topics.c.topic_id).where(newsletter_topics.c.newsletter_id == newsletter.id)
    if newsletter.topics:
        query = query.where(Subscriber.id.in_(
            select(subscriber_topics.c.subscriber_id).where(subscriber_topics.c.topic_id.in_(topic_ids))
        ))
    if newsletter.municipalities:
        query = query.where(Subscriber.municipality_ags.in_(
            select(newsletter_municipalities.c.municipality_ags)
            .where(newsletter_municipalities.c.newsletter_id == newsletter.id)
        ))
    return query


def audience(newsletter):
    """[(subscriber id, municipality)] of the recipients, suppressed addresses left out."""
    allowed = subscriber_services.unsuppressed(newsletter.district_key)
    rows = db.session.execute(
        audience_query(newsletter).with_only_columns(Subscriber.id, Subscriber.email_key, Subscriber.municipality_ags)
    ).all()
    return [(sid, ags) for sid, key, ags in rows if allowed(key)]


def audience_size(newsletter):
    return len(audience(newsletter))


def start_sending(newsletter):
    """Write the delivery rows and mark the newsletter `sending`. Returns how many rows were written.

    Safe to call again: subscribers who already have a row get none.
    """
    if newsletter.status not in ("draft", "scheduled", "sending"):
        raise SendingError(f"newsletter {newsletter.id} is {newsletter.status}")
    if not newsletter.compiled_html:
        raise SendingError("newsletter does not compile")
    have = set(db.session.execute(
        select(Delivery.subscriber_id).where(Delivery.newsletter_id == newsletter.id)
    ).scalars())
    now = utcnow()
    rows = [
        {"newsletter_id": newsletter.id, "subscriber_id": sid, "district_key": newsletter.district_key,
         "municipality_ags": ags, "status": "queued", "attempts": 0, "next_attempt_at": now, "smtp_reply": ""}
        for sid, ags in audience(newsletter) if sid not in have
    ]
    for start in range(0, len(rows), 1000):
        db.session.execute(insert(Delivery), rows[start:start + 1000])
    newsletter.status = "sending"
    newsletter.started_at = newsletter.started_at or now
    newsletter.scheduled_at = newsletter.scheduled_at or now
    return len(rows)


# --- one mail ------------------------------------------------------------------------


class Batch:
    """What a job prepares once per newsletter: the compiled templates and the fixed headers."""

    def __init__(self, newsletter):
        district = newsletter.district
        context = mail_context(district)
        coordinator = context["coordinator"]
        self.newsletter_id = newsletter.id
        self.html, self.text, self.subject = newsletter.compiled_html, newsletter.compiled_text, newsletter.subject
        self.tracking = newsletter.tracking
        self.domain = base_host()
        self.envelope_from = inbound_address()
        name, email = district_sender(district)
        self.fixed_headers = [("From", message.address(name, email))]
        if coordinator:
            self.fixed_headers.append(("Reply-To", coordinator.email))
        self.fixed_headers.append(("List-Id", list_id(district)))
        self.district_key = district.key
        self.kind = "newsletter"  # send_test makes it "test"
        # Read when a job starts: switching the archive on during sending links the mails sent after.
        self.web_url = (external_url("archive.newsletter", key=district.key, id=newsletter.id)
                        if newsletter.published_in_archive else "")
        base = current_app.config["BASE_URL"]
        self.preferences_base = f"{base}/preferences/"
        self.unsubscribe_base = f"{base}/unsubscribe/"
        self.mailto = f"mailto:{inbound_address()}?subject=unsubscribe%20"
        self.dkim = dkim_signer()

    def build(self, delivery_id, subscriber, municipality_name):
        from newsletter.tracking import tracking_context, tracking_context_for_test_send

        unsubscribe = make_token("subscriber-unsubscribe", {"s": subscriber.public_id})
        unsubscribe_url = self.unsubscribe_base + unsubscribe
        context = {
            "name": subscriber.name, "email": subscriber.email, "municipality": municipality_name,
            "preferences_url": self.preferences_base + make_token("subscriber-manage", {"s": subscriber.public_id}),
            "unsubscribe_url": unsubscribe_url, "web_url": self.web_url,
        }
        if self.tracking:
            # A test mail (delivery 0) has working links that record nothing.
            context.update(tracking_context(delivery_id) if delivery_id else tracking_context_for_test_send(self.newsletter_id))
        subject, html, text = compose.personalised(self.html, self.text, self.subject, context)
        msg_id = message.message_id(self.domain)
        headers = [
            *self.fixed_headers,
            ("To", subscriber.email),
            ("Subject", message.encode_header(subject)),
            ("Date", message.date_header()),
            ("Message-ID", msg_id),
            ("List-Unsubscribe", f"<{unsubscribe_url}>, <{self.mailto}{unsubscribe}>"),
            ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
            *service_headers(self.kind, self.district_key),
        ]
        data = message.build(headers, text, html)
        if self.dkim:
            data = self.dkim(data)
        return msg_id, data


def dkim_signer():
    """A function signing message bytes when DKIM_PRIVATE_KEY (PEM file) is configured, else None."""
    config = current_app.config
    if not config.get("DKIM_PRIVATE_KEY"):
        return None
    import dkim

    with open(config["DKIM_PRIVATE_KEY"], "rb") as fh:
        key = fh.read()
    selector = config["DKIM_SELECTOR"].encode()
    domain = (config.get("DKIM_DOMAIN") or sender_address().rpartition("@")[2]).encode()
    signed = [b"from", b"to", b"subject", b"date", b"message-id", b"list-unsubscribe", b"list-unsubscribe-post"]

    def sign(data):
        return dkim.sign(data, selector, domain, key, include_headers=signed) + data

    return sign


# --- recording the outcome ---------------------------------------------------------


def prepare_mail(batch, row):
    """The `core.pipeline.Mail` of a claimed delivery row, or None when its subscriber is gone (recorded)."""
    subscriber = row.subscriber
    if subscriber.id is None or subscriber.status != "active":
        # Left the list or erased since the send started.
        delivery_rows.record(row.id, status="suppressed")
        return None
    return Mail(row.id, row.attempts, batch.envelope_from, subscriber.email,
                lambda: batch.build(row.id, subscriber, row.municipality_name),
                rejected=lambda: _bounced(subscriber.id))


def _bounced(subscriber_id):
    subscriber_services.mark_undeliverable(db.session.get(Subscriber, subscriber_id), "bounced")
    db.session.commit()


def load_claimed(ids):
    """The claimed rows with what their mails need, as plain rows in id order."""
    # Plain rows, not ORM objects: every mail's record is a commit, and a
    # commit expires (and the next access reloads) every object in the session.
    claimed = db.session.execute(
        select(Delivery.id, Delivery.attempts, Subscriber.id, Subscriber.public_id, Subscriber.email,
               Subscriber.name, Subscriber.status, Municipality.name)
        .outerjoin(Subscriber, Subscriber.id == Delivery.subscriber_id)
        .outerjoin(Municipality, Municipality.ags == Delivery.municipality_ags)
        .where(Delivery.id.in_(ids)).order_by(Delivery.id)
    ).all()
    db.session.commit()  # no transaction (and snapshot) held while the batch is sent
    return [
        Row(id=delivery_id, attempts=attempts, municipality_name=municipality_name,
            subscriber=Row(id=subscriber_id, public_id=public_id, email=email, name=name, status=status))
        for delivery_id, attempts, subscriber_id, public_id, email, name, status, municipality_name in claimed
    ]


def send_newsletter(newsletter_id):
    """Claim and send batches until none is due; the body of the RQ job. Returns the number of rows handled."""
    newsletter = db.session.get(Newsletter, newsletter_id)
    if newsletter is None or newsletter.status != "sending":
        return 0
    batch = Batch(newsletter)
    db.session.commit()  # no transaction held while sending

    def still_sending():
        # Paused or cancelled since the last batch?
        status = db.session.execute(select(Newsletter.status).where(Newsletter.id == newsletter_id)).scalar_one()
        db.session.commit()
        return status == "sending"

    handled = send_batches(delivery_rows, newsletter_id, load_claimed, lambda row: prepare_mail(batch, row),
                           still_sending)
    finish_if_done(newsletter_id)
    return handled


def finish_if_done(newsletter_id):
    """Mark the newsletter `sent` when no row is left to send."""
    open_rows = db.session.execute(
        select(func.count()).where(Delivery.newsletter_id == newsletter_id,
                                   Delivery.status.in_((*OPEN_DELIVERY_STATES, "sending")))
    ).scalar_one()
    if open_rows == 0:
        db.session.execute(
            update(Newsletter).where(Newsletter.id == newsletter_id, Newsletter.status == "sending")
            .values(status="sent", finished_at=utcnow())
        )
        db.session.commit()
        return True
    return False


# --- pause, resume, cancel, schedule ---------------------------------------------------


def schedule(newsletter, at):
    if newsletter.status not in ("draft", "scheduled"):
        raise SendingError(newsletter.status)
    if not newsletter.compiled_html:
        raise SendingError("newsletter does not compile")
    newsletter.status = "scheduled"
    newsletter.scheduled_at = at


def pause(newsletter):
    if newsletter.status != "sending":
        raise SendingError(newsletter.status)
    newsletter.status = "paused"


def resume(newsletter):
    if newsletter.status != "paused":
        raise SendingError(newsletter.status)
    newsletter.status = "sending"


def cancel(newsletter):
    """Stop for good: rows not yet sent stay unsent (`queued` rows are removed)."""
    if newsletter.status not in ("scheduled", "sending", "paused"):
        raise SendingError(newsletter.status)
    newsletter.status = "cancelled"
    newsletter.finished_at = utcnow()
    db.session.execute(
        Delivery.__table__.delete().where(Delivery.newsletter_id == newsletter.id,
                                          Delivery.status.in_(OPEN_DELIVERY_STATES))
    )


def progress(newsletter_id):
    """{status: count} of the newsletter's rows, all statuses present."""
    from newsletter.models import DELIVERY_STATES

    counts = dict.fromkeys(DELIVERY_STATES, 0)
    counts.update(dict(db.session.execute(
        select(Delivery.status, func.count()).where(Delivery.newsletter_id == newsletter_id).group_by(Delivery.status)
    ).all()))
    return counts


# --- the reconciler --------------------------------------------------------------------


def reclaim_expired():
    """Rows whose job died (lease over) go back to the queue. Returns how many."""
    return delivery_rows.reclaim_expired()


def start_due_schedules():
    """Start the scheduled newsletters whose time has come. Returns their ids."""
    due = db.session.execute(
        select(Newsletter).where(Newsletter.status == "scheduled", Newsletter.scheduled_at <= utcnow())
    ).scalars().all()
    for newsletter in due:
        start_sending(newsletter)
    db.session.commit()
    return [n.id for n in due]


def newsletters_with_due_rows():
    now = utcnow()
    return db.session.execute(
        select(Delivery.newsletter_id).join(Newsletter, Newsletter.id == Delivery.newsletter_id)
        .where(Newsletter.status == "sending", Delivery.status.in_(OPEN_DELIVERY_STATES),
               Delivery.next_attempt_at <= now).distinct()
    ).scalars().all()


def newsletters_sending():
    return db.session.execute(select(Newsletter.id).where(Newsletter.status == "sending")).scalars().all()

