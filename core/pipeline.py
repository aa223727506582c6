"""The exactly-once mail pipeline shared by newsletters and event mails.

Mail is a table of rows, one per message (`Delivery`, `EventMail`), each with
`status, attempts, next_attempt_at, claimed_until, smtp_reply, message_id,
sent_at`. A job claims a batch of due rows atomically (`FOR UPDATE SKIP
LOCKED` on PostgreSQL; on SQLite a conditional UPDATE, which SQLite
serialises), marks them `sending` with a lease, sends them over one SMTP
connection and records each row as soon as the server answered. A worker
that dies loses at most the one mail between the server's answer and that
record; rows whose lease ran out go back to the queue.

SMTP answers: 4xx, timeouts and refused connections defer the row with
exponential backoff (SEND_MAX_ATTEMPTS, then `failed`); 5xx fails it, and
the recipient-rejection codes make `send` report a rejection so the caller
can take the address off its list.
"""
import smtplib
import socket
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime, timedelta, timezone

from flask import current_app
from sqlalchemy import and_, bindparam, update

from core.extensions import db

OPEN_STATES = ("queued", "deferred")
# 550 mailbox unavailable, 551 user not local, 553 mailbox name not allowed;
# and any enhanced status 5.1.x (bad destination address).
RECIPIENT_REJECTIONS = {550, 551, 553}

SENT, REFUSED, REJECTED = "sent", "refused", "rejected"


def utcnow():
    return datetime.now(timezone.utc)


class ServerUnavailable(Exception):
    """The mail server can not be reached or dropped the connection: stop, retry later."""


# The sending job's AUTOCOMMIT connection for the records (see `recording`).
_recorder = ContextVar("mail_recorder", default=None)


@contextmanager
def recording():
    """Record each mail's outcome over one AUTOCOMMIT connection: each UPDATE is its own transaction.

    The same guarantee as UPDATE + session commit, at a third of the cost
    (no BEGIN/COMMIT round trips, no session bookkeeping).
    """
    with db.engine.connect() as connection:
        connection = connection.execution_options(isolation_level="AUTOCOMMIT")
        if db.engine.dialect.name == "postgresql":
            # Waiting for the WAL flush on every mail would halve the throughput;
            # a lost last commit after a database crash costs at most a duplicate.
            connection.exec_driver_sql("SET synchronous_commit TO OFF")
        token = _recorder.set(connection)
        try:
            yield
        finally:
            _recorder.reset(token)


def _reply_text(code, text):
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return f"{code} {text}"[:500]


def is_rejection(code, text):
    """The recipient does not exist. A 5.7.x policy refusal (spam filter, blocklist) is about us, not them."""
    status = str(text).lstrip()
    if status.startswith("5.7."):
        return False
    return code in RECIPIENT_REJECTIONS or status.startswith("5.1.")


class MailRows:
    """The pipeline's operations on one table of mail rows; `owner` is the column a job's rows share."""

    def __init__(self, model, owner):
        self.model = model
        self.table = model.__table__
        self.owner = owner
        self._statements = {}

    # --- claiming ---------------------------------------------------------------

    def due(self, owner_id, now):
        return and_(self.owner == owner_id, self.model.status.in_(OPEN_STATES), self.model.next_attempt_at <= now)

    def claim_batch(self, owner_id, size):
        """Mark up to `size` due rows `sending` for this job, atomically; returns their ids (committed)."""
        model = self.model
        now = utcnow()
        lease = now + timedelta(seconds=current_app.config["SEND_LEASE_SECONDS"])
        candidates = db.select(model.id).where(self.due(owner_id, now)).order_by(model.id).limit(size)
        if db.engine.dialect.name == "postgresql":
            candidates = candidates.with_for_update(skip_locked=True)
        ids = db.session.execute(
            update(model)
            .where(model.id.in_(candidates.scalar_subquery()), model.status.in_(OPEN_STATES))
            .values(status="sending", claimed_until=lease)
            .returning(model.id)
            .execution_options(synchronize_session=False)
        ).scalars().all()
        db.session.commit()
        return sorted(ids)

    def release(self, ids):
        """Give claimed rows back untouched (the job stops early: paused, cancelled, server down)."""
        if ids:
            db.session.execute(
                update(self.model).where(self.model.id.in_(ids), self.model.status == "sending")
                .values(status="queued", claimed_until=None).execution_options(synchronize_session=False)
            )
            db.session.commit()

    def reclaim_expired(self):
        """Rows whose job died (lease over) go back to the queue. Returns how many."""
        result = db.session.execute(
            update(self.model).where(self.model.status == "sending", self.model.claimed_until < utcnow())
            .values(status="queued", claimed_until=None).execution_options(synchronize_session=False)
        )
        db.session.commit()
        return result.rowcount

    # --- recording --------------------------------------------------------------

    def _statement(self, names):
        """The UPDATE of one row's outcome, built once per set of columns (building it costs more than running it)."""
        statement = self._statements.get(names)
        if statement is None:
            table = self.table
            statement = self._statements[names] = (
                update(table).where(table.c.id == bindparam("row_id"), table.c.status == "sending")
                .values(attempts=table.c.attempts + 1,
                        **{name: bindparam(f"new_{name}", type_=table.c[name].type) for name in names})
            )
        return statement

    def record(self, row_id, **values):
        values.setdefault("claimed_until", None)
        statement = self._statement(tuple(sorted(values)))
        params = {"row_id": row_id, **{f"new_{name}": value for name, value in values.items()}}
        connection = _recorder.get()
        if connection is None:
            db.session.execute(statement, params)
            db.session.commit()
        else:
            connection.execute(statement, params)

    def defer(self, row_id, attempts, reply):
        config = current_app.config
        if attempts + 1 >= config["SEND_MAX_ATTEMPTS"]:
            self.record(row_id, status="failed", smtp_reply=reply)
            return
        delay = min(config["SEND_RETRY_BASE_SECONDS"] * 2 ** attempts, config["SEND_RETRY_MAX_SECONDS"])
        self.record(row_id, status="deferred", smtp_reply=reply, next_attempt_at=utcnow() + timedelta(seconds=delay))

    def _refused(self, row_id, attempts, code, text):
        reply = _reply_text(code, text)
        if 400 <= code < 500:
            self.defer(row_id, attempts, reply)
            return REFUSED
        self.record(row_id, status="failed", smtp_reply=reply)
        return REJECTED if is_rejection(code, text if isinstance(text, str) else text.decode("utf-8", "replace")) \
            else REFUSED

    # --- sending ----------------------------------------------------------------

    def send(self, connection, row_id, attempts, envelope_from, recipient, msg_id, data):
        """Send one mail and record the outcome: SENT, REFUSED, or REJECTED (the address does not exist).

        Raises ServerUnavailable (after deferring the row) when the server is gone.
        """
        try:
            connection.send_raw(envelope_from, recipient, data)
        except smtplib.SMTPRecipientsRefused as error:
            code, text = next(iter(error.recipients.values()))
            return self._refused(row_id, attempts, code, text)
        except (smtplib.SMTPDataError, smtplib.SMTPSenderRefused) as error:
            return self._refused(row_id, attempts, error.smtp_code, error.smtp_error)
        except (smtplib.SMTPServerDisconnected, smtplib.SMTPConnectError, socket.timeout, OSError) as error:
            self.defer(row_id, attempts, f"connection: {error}"[:500])
            raise ServerUnavailable(str(error)) from error
        self.record(row_id, status="sent", sent_at=utcnow(), message_id=msg_id, smtp_reply="250")
        return SENT
