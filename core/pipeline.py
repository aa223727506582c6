"""The exactly-once mail pipeline shared by newsletters and event mails.

Mail is a table of rows, one per message (`Delivery`, `EventMail`), each with
`status, attempts, next_attempt_at, claimed_until, smtp_reply, message_id,
sent_at`. A job claims a batch of due rows atomically (`FOR UPDATE SKIP
LOCKED` on PostgreSQL; on SQLite a conditional UPDATE, which SQLite
serialises), marks them `sending` with a lease, sends them over one SMTP
connection and records each row as soon as the server answered. A worker
that dies loses at most the one mail between the server's answer and that
record; rows whose lease ran out go back to the queue.

A `sent` is recorded by appending to the journal of sent mails
(`core.models.SentMail`, one small committed INSERT), which the job applies
to its rows at the end of each batch (`MailRows.apply_sent`); the
reconciler applies the entries of a job that died before it gives that
job's rows back (`reclaim_expired`), so a journaled mail is never sent
again. Updating the row itself per mail (status and sent_at with their
indexes, message_id, the reach trigger) cost twice as much, and on SQLite
that time is spent holding the one write lock both work horses need.

SMTP answers: 4xx to one recipient defer the row with exponential backoff
(SEND_MAX_ATTEMPTS, then `failed`); 5xx fails it, and the recipient-rejection
codes make `send` report a rejection so the caller can take the address off
its list.

One round trip per mail: each message goes out in one write with MAIL, RCPT
and DATA of the next mail (PIPELINING, `core.mail.SMTPRawConnection.submit`),
and the next mail is built while the server takes the current one; the
current one is recorded when its answer has been read, as before.

Connection faults are not recipient faults: a dropped session, a timeout or a
421 ends the SMTP session, not the job. `Session` reconnects with a short,
bounded back-off and the interrupted mail goes out again on the new session
without an attempt counted against its row. A cut after the server may
already have taken the message can make one duplicate per cut; a mail is
never lost. Only when the server stays away (SEND_RECONNECT_GIVE_UP_SECONDS)
does the job give its rows back untouched and stop; the reconciler starts it
again later.

Stopping: `send_batches` checks `core.shutdown.stop_requested()` between
mails. A job asked to stop finishes and records the mail in flight, gives its
unsent claimed rows back at once (no attempt counted, lease cleared) and
returns, so a restart neither duplicates a mail nor waits for a lease.
"""
import logging
import smtplib
import sqlite3
import threading
import time
from contextlib import closing, contextmanager
from contextvars import ContextVar
from datetime import datetime, timedelta, timezone

from flask import current_app
from sqlalchemy import and_, bindparam, delete, insert, select, update

from core import shutdown
from core.database import sqlite_write_turn
from core.extensions import db
from core.mail import is_connection_fault, new_raw_connection
from core.models import SentMail

log = logging.getLogger(__name__)

OPEN_STATES = ("queued", "deferred")
# The values of a `sent` record that the journal of sent mails carries (the rest is fixed).
JOURNALED = {"status", "sent_at", "message_id", "smtp_reply", "claimed_until"}
SQLITE_AUTOCHECKPOINT = 1000  # pages: SQLite's default
# 550 mailbox unavailable, 551 user not local, 553 mailbox name not allowed;
# and any enhanced status 5.1.x (bad destination address).
RECIPIENT_REJECTIONS = {550, 551, 553}

SENT, REFUSED, REJECTED = "sent", "refused", "rejected"


def utcnow():
    return datetime.now(timezone.utc)


class ServerUnavailable(Exception):
    """The mail server stayed unreachable for the bounded wait: give the rows back, retry later."""


class StopRequested(Exception):
    """The process is asked to stop (SIGTERM, Ctrl-C) while waiting for the mail server."""


def _sleep(seconds):
    """Sleep, but wake at once when a stop is requested."""
    deadline = time.monotonic() + seconds
    while not shutdown.stop_requested():
        left = deadline - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(left, 0.05))
    raise StopRequested()


class Session:
    """A mail connection that outlives its SMTP sessions.

    `send_raw` sends one mail; when the session fails under it (see
    `core.mail.is_connection_fault`) it opens a new one and sends the same
    mail again. Consecutive faults wait 0 s, then SEND_RECONNECT_BACKOFF_SECONDS,
    doubling up to ..._MAX_SECONDS; when no mail went out for
    SEND_RECONNECT_GIVE_UP_SECONDS it raises ServerUnavailable. A mail that
    loses the session SEND_RECONNECT_MAIL_CUTS times raises its last error, so
    its row is deferred as after a 4xx: a message the server cannot take must
    not hold up the whole send.
    """

    def __init__(self, connection):
        self.connection = connection
        config = current_app.config
        self.backoff = config["SEND_RECONNECT_BACKOFF_SECONDS"]
        self.backoff_max = config["SEND_RECONNECT_BACKOFF_MAX_SECONDS"]
        self.give_up = config["SEND_RECONNECT_GIVE_UP_SECONDS"]
        self.mail_cuts = config["SEND_RECONNECT_MAIL_CUTS"]
        self.faults = 0  # consecutive, since the last mail that went through
        self.failing_since = None
        self.sessions = 0  # SMTP sessions opened (logs, tests)

    def send_raw(self, envelope_from, recipient, data, then=None, meanwhile=None):
        """Send one mail; `then` announces the next one (see `SMTPRawConnection.submit`).

        `meanwhile()` runs once, after the message went out and before its
        answer is read: the caller builds the next mail there while the
        server takes this one. It must not raise.
        """
        cuts = 0
        while True:
            try:
                self.connection.submit(envelope_from, recipient, data, then)
                if meanwhile is not None:
                    work, meanwhile = meanwhile, None
                    work()
                result = self.connection.result()
            except (smtplib.SMTPException, OSError) as error:
                if not is_connection_fault(error):
                    self._healthy()  # the server answered; the answer is about this mail
                    raise
                cuts += 1
                if cuts >= self.mail_cuts:
                    raise
                log.info("SMTP session lost (%s); reconnecting", error)
                self.connection.close()
                self._fault(error)
                self.reconnect()
                continue
            self._healthy()
            return result

    def reconnect(self):
        """Open a new session within the bounded wait, or raise ServerUnavailable (or StopRequested)."""
        while True:
            try:
                self.connection.reconnect()
                self.sessions += 1
                return
            except (smtplib.SMTPException, OSError) as error:
                if not is_connection_fault(error):
                    raise
                self.connection.close()
                self._fault(error)

    def _fault(self, error):
        """Wait before the next try, or raise ServerUnavailable when the bounded wait is over."""
        now = time.monotonic()
        if self.failing_since is None:
            self.failing_since = now
        self.faults += 1
        delay = 0.0 if self.faults == 1 else min(self.backoff * 2 ** (self.faults - 2), self.backoff_max)
        waited = now - self.failing_since
        if waited + delay > self.give_up:
            raise ServerUnavailable(f"no working SMTP session for {waited:.0f} s: {error}") from error
        if delay:
            _sleep(delay)

    def _healthy(self):
        self.faults = 0
        self.failing_since = None


@contextmanager
def mail_session():
    """A `Session` over the configured transport, its first SMTP session opened within the bounded wait."""
    session = Session(new_raw_connection())
    try:
        session.reconnect()
        yield session
    finally:
        session.connection.close()


# The sending job's recorder (see `recording`).
_recorder = ContextVar("mail_recorder", default=None)


class Prepared:
    """A Core statement compiled once for the driver: its SQL, and how to turn values into its arguments.

    The values pass through their columns' bind processors (a datetime
    becomes SQLite's text, UTC first) and are ordered for positional
    drivers, as SQLAlchemy would do on every execute.
    """

    def __init__(self, statement, dialect):
        compiled = statement.compile(dialect=dialect)
        self.sql = compiled.string
        self.order = list(compiled.positiontup) if compiled.positional else None
        self.fixed = dict(compiled.params)
        self.converters = {}
        for name, bind in compiled.binds.items():
            converter = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if converter is not None:
                self.converters[name] = converter

    def arguments(self, values):
        params = {**self.fixed, **values}
        for name, converter in self.converters.items():
            params[name] = converter(params[name])
        return params if self.order is None else [params[name] for name in self.order]


class Recorder:
    """One AUTOCOMMIT connection and a DBAPI cursor on it: each execute is its own committed transaction.

    The record of a mail (the journal's INSERT for a `sent`, an UPDATE of
    the row otherwise) is one prepared statement run straight on the
    driver's cursor: SQLAlchemy compiles it once per table and set of columns
    (`Prepared`, kept by `MailRows._prepared`); going through a Connection for
    every mail cost as much CPU as SQLite's own work.
    """

    def __init__(self, connection):
        self.connection = connection
        self.dialect = connection.dialect
        self.cursor = connection.connection.cursor()
        self.sqlite = self.dialect.name == "sqlite"
        self.database = connection.engine.url.database if self.sqlite else None
        self._checkpointer = None

    def execute(self, sql, args):
        if self.sqlite:
            with sqlite_write_turn():
                self.cursor.execute(sql, args)
        else:
            self.cursor.execute(sql, args)

    def checkpoint(self, wait=False):
        """On SQLite, move the WAL into the database file, outside the write turn (see `recording`).

        It runs in a thread on its own connection (SQLite lets go of the GIL
        while it waits for the disk), so the job sends on meanwhile; one at a
        time. `wait=True` checkpoints here and now, after the running one.
        """
        if not self.sqlite or not self.database or self.database == ":memory:":
            return
        running = self._checkpointer
        if wait:
            if running is not None:
                running.join()
            self.cursor.execute("PRAGMA wal_checkpoint(PASSIVE)")
            return
        if running is not None and running.is_alive():
            return
        self._checkpointer = threading.Thread(target=_checkpoint, args=(self.database,), daemon=True,
                                              name="sqlite-checkpoint")
        self._checkpointer.start()


def _checkpoint(database):
    try:
        with closing(sqlite3.connect(database, timeout=30, isolation_level=None)) as connection:
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.execute("PRAGMA wal_checkpoint(PASSIVE)")
    except sqlite3.Error as error:  # the next checkpoint, or any connection's own, catches up
        log.warning("SQLite checkpoint failed: %s", error)


@contextmanager
def recording():
    """Record each mail's outcome through one `Recorder` for the whole job.

    The same guarantee as UPDATE + session commit, at a fraction of the cost
    (no BEGIN/COMMIT round trips, no session bookkeeping, no per-mail
    statement handling in SQLAlchemy).

    On SQLite the sending jobs take turns for these writes
    (`core.database.sqlite_write_turn`): with two work horses recording
    hundreds of mails a second each, SQLite's busy handler sleeping was
    where they waited. The recorder's connection does not checkpoint the
    write-ahead log itself (that fsyncs, and would make the other job wait
    for the disk inside the turn); `send_batches` checkpoints after each
    batch, outside the turn. Each record is still its own committed
    transaction before the next mail goes out.
    """
    with db.engine.connect() as connection:
        connection = connection.execution_options(isolation_level="AUTOCOMMIT")
        recorder = Recorder(connection)
        if db.engine.dialect.name == "postgresql":
            # Waiting for the WAL flush on every mail would halve the throughput;
            # a lost last commit after a database crash costs at most a duplicate.
            connection.exec_driver_sql("SET synchronous_commit TO OFF")
        elif recorder.sqlite:
            connection.exec_driver_sql("PRAGMA wal_autocheckpoint=0")
        token = _recorder.set(recorder)
        try:
            yield recorder
        finally:
            _recorder.reset(token)
            if recorder.sqlite:
                recorder.checkpoint(wait=True)
                # The connection goes back to the pool: as every other one again.
                connection.exec_driver_sql(f"PRAGMA wal_autocheckpoint={SQLITE_AUTOCHECKPOINT}")
            recorder.cursor.close()


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


class Mail:
    """One claimed row's mail, as the sending loop handles it.

    `build()` gives (Message-ID, bytes); the loop calls it while the server
    takes the mail before this one (`prepare`), or when the mail is due
    (`content`). `rejected()`, when given, runs after the server said the
    address does not exist.
    """

    __slots__ = ("row_id", "attempts", "envelope_from", "recipient", "build", "rejected", "_content", "_error")

    def __init__(self, row_id, attempts, envelope_from, recipient, build, rejected=None):
        self.row_id, self.attempts = row_id, attempts
        self.envelope_from, self.recipient = envelope_from, recipient
        self.build, self.rejected = build, rejected
        self._content = self._error = None

    @property
    def envelope(self):
        return self.envelope_from, self.recipient

    def prepare(self):
        """Build the mail now; never raises (an error is raised by `content`, when the mail is due)."""
        if self._content is None and self._error is None:
            try:
                self._content = self.build()
            except Exception as error:  # noqa: BLE001 - kept and raised again by content()
                self._error = error

    def content(self):
        self.prepare()
        if self._error is not None:
            raise self._error
        return self._content


class MailRows:
    """The pipeline's operations on one table of mail rows; `owner` is the column a job's rows share."""

    def __init__(self, model, owner):
        self.model = model
        self.table = model.__table__
        self.owner = owner
        self._statements = {}
        self._compiled_statements = {}

    # --- claiming ---------------------------------------------------------------

    def due(self, owner_id, now):
        return and_(self.owner == owner_id, self.model.status.in_(OPEN_STATES), self.model.next_attempt_at <= now)

    def claim_batch(self, owner_id, size):
        """Mark up to `size` due rows `sending` for this job, atomically; returns their ids (committed)."""
        model = self.model
        now = utcnow()
        lease = now + timedelta(seconds=current_app.config["SEND_LEASE_SECONDS"])
        # No ORDER BY: the due index gives the first `size` rows at once (deferred
        # ones first, then queued ones by time), where sorting every due row by
        # id took 13 ms per claim at 30,000 rows. The batch is sent in id order.
        candidates = db.select(model.id).where(self.due(owner_id, now)).limit(size)
        if db.engine.dialect.name == "postgresql":
            candidates = candidates.with_for_update(skip_locked=True)
        with sqlite_write_turn():
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
            with sqlite_write_turn():
                db.session.execute(
                    update(self.model).where(self.model.id.in_(ids), self.model.status == "sending")
                    .values(status="queued", claimed_until=None).execution_options(synchronize_session=False)
                )
                db.session.commit()

    def reclaim_expired(self):
        """Rows whose job died (lease over) go back to the queue, except those it sent. Returns how many."""
        now = utcnow()
        table = self.table
        expired = select(table.c.id).where(table.c.status == "sending", table.c.claimed_until < now)
        self.apply_sent(SentMail.row_id.in_(expired))
        with sqlite_write_turn():
            result = db.session.execute(
                update(self.model).where(self.model.status == "sending", self.model.claimed_until < now)
                .values(status="queued", claimed_until=None).execution_options(synchronize_session=False)
            )
            # Entries whose row is no longer being sent (applied already, or the row is gone).
            db.session.execute(delete(SentMail).where(
                SentMail.table_name == table.name,
                SentMail.row_id.not_in(select(table.c.id).where(table.c.status == "sending")),
            ))
            db.session.commit()
        return result.rowcount

    # --- the journal of sent mails -------------------------------------------------

    def _journal_insert(self):
        """The journal's INSERT of one sent mail of this table."""
        journal = SentMail.__table__
        return insert(journal).values(
            table_name=self.table.name, row_id=bindparam("row_id"),
            sent_at=bindparam("sent_at", type_=journal.c.sent_at.type),
            message_id=bindparam("message_id", type_=journal.c.message_id.type),
        )

    def apply_sent(self, *criteria):
        """Mark the rows of the journal's entries (those matching `criteria`) `sent`, and drop the entries.

        Safe to run twice and from any process: only rows still `sending`
        change, and an entry goes only with its row's update, in one
        transaction. Returns how many rows changed.
        """
        table = self.table
        with sqlite_write_turn():
            entries = db.session.execute(
                select(SentMail.id, SentMail.row_id, SentMail.sent_at, SentMail.message_id)
                .where(SentMail.table_name == table.name, *criteria)
            ).all()
            if not entries:
                db.session.commit()
                return 0
            changed = db.session.execute(
                update(table).where(table.c.id == bindparam("entry_row"), table.c.status == "sending")
                .values(status="sent", attempts=table.c.attempts + 1, sent_at=bindparam("entry_sent_at"),
                        message_id=bindparam("entry_message_id"), smtp_reply="250", claimed_until=None),
                [{"entry_row": row_id, "entry_sent_at": sent_at, "entry_message_id": message_id}
                 for _id, row_id, sent_at, message_id in entries],
            ).rowcount
            db.session.execute(delete(SentMail).where(SentMail.id.in_([entry[0] for entry in entries])))
            db.session.commit()
        return changed

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

    def _prepared(self, key, build, dialect):
        """The `Prepared` form of the statement `build()` makes, made once per key and dialect."""
        prepared = self._compiled_statements.get((key, dialect.name))
        if prepared is None:
            prepared = self._compiled_statements[(key, dialect.name)] = Prepared(build(), dialect)
        return prepared

    def record(self, row_id, **values):
        """Record one row's outcome, committed before this returns.

        In a sending job (`recording`) a `sent` goes into the journal of
        sent mails (`SentMail`), which the job applies to the rows at the
        end of the batch; everything else updates the row at once.
        """
        values.setdefault("claimed_until", None)
        recorder = _recorder.get()
        if (recorder is not None and values.get("status") == "sent" and set(values) == JOURNALED
                and values["smtp_reply"] == "250" and values["claimed_until"] is None):
            prepared = self._prepared("journal", self._journal_insert, recorder.dialect)
            recorder.execute(prepared.sql, prepared.arguments(
                {"row_id": row_id, "sent_at": values["sent_at"], "message_id": values["message_id"]}))
            return
        names = tuple(sorted(values))
        params = {"row_id": row_id, **{f"new_{name}": value for name, value in values.items()}}
        if recorder is None:
            db.session.execute(self._statement(names), params)
            db.session.commit()
            return
        prepared = self._prepared(names, lambda: self._statement(names), recorder.dialect)
        recorder.execute(prepared.sql, prepared.arguments(params))

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

    def send(self, session, mail, following=None):
        """Send a `Mail` over a `Session` and record the outcome: SENT, REFUSED, or REJECTED (no such address).

        `following`, the mail to be sent next, is announced to the server
        with this one and built while the server takes this one. Raises
        ServerUnavailable (the row untouched: the caller gives it back) when
        the server stays away.
        """
        row_id, attempts = mail.row_id, mail.attempts
        msg_id, data = mail.content()
        try:
            if following is None:
                session.send_raw(mail.envelope_from, mail.recipient, data)
            else:
                session.send_raw(mail.envelope_from, mail.recipient, data,
                                 then=following.envelope, meanwhile=following.prepare)
        except smtplib.SMTPRecipientsRefused as error:
            code, text = next(iter(error.recipients.values()))
            return self._refused(row_id, attempts, code, text)
        except (smtplib.SMTPDataError, smtplib.SMTPSenderRefused) as error:
            return self._refused(row_id, attempts, error.smtp_code, error.smtp_error)
        except (smtplib.SMTPServerDisconnected, smtplib.SMTPConnectError, OSError) as error:
            # This mail lost the session SEND_RECONNECT_MAIL_CUTS times (see Session).
            self.defer(row_id, attempts, f"connection: {error}"[:500])
            return REFUSED
        self.record(row_id, status="sent", sent_at=utcnow(), message_id=msg_id, smtp_reply="250")
        return SENT


# --- the sending job ----------------------------------------------------------------


def send_batches(rows, owner_id, load, prepare, still_sending=None):
    """Claim and send batches of `rows` of `owner_id` until none is due; the body of a sending job.

    `load(ids)` gives the claimed rows (objects with `.id`); `prepare(row)`
    gives the row's `Mail`, or None when the row needs no mail (it recorded
    the row itself, e.g. `suppressed`); `still_sending()` (checked before
    each batch) says False once the owner was paused or cancelled. Stops
    early, giving the unsent claimed rows back at once, when the process is
    asked to stop or the server stays away. Returns the number of rows
    handled.
    """
    size = current_app.config["SEND_BATCH_SIZE"]
    handled = 0
    try:
        with mail_session() as session, recording() as recorder:
            while not shutdown.stop_requested() and (still_sending is None or still_sending()):
                ids = rows.claim_batch(owner_id, size)
                if not ids:
                    break
                handled += _send_claimed(rows, session, ids, load, prepare)
                recorder.checkpoint()
    except ServerUnavailable as error:
        log.warning("%s %s: mail server unavailable, rows given back until the next attempt: %s",
                    rows.table.name, owner_id, error)
    except StopRequested:
        pass
    except (smtplib.SMTPException, OSError) as error:
        # Not a connection fault, while opening or closing the session (a
        # refused login, a bad certificate): no row is claimed any more.
        log.warning("%s %s: mail server refused the session: %s", rows.table.name, owner_id, error)
    if shutdown.stop_requested():
        log.info("%s %s: stopped on request after %d rows", rows.table.name, owner_id, handled)
    return handled


def _send_claimed(rows, session, ids, load, prepare):
    """Send the claimed rows in order, each announced with the one before it (one round trip per mail)."""
    done = []
    claimed = iter(load(ids))

    def next_mail():
        for row in claimed:
            if shutdown.stop_requested():
                return None
            mail = prepare(row)
            if mail is not None:
                return mail
            done.append(row.id)  # recorded by prepare: needs no mail
        return None

    try:
        mail = next_mail()
        while mail is not None:
            following = next_mail()
            outcome = rows.send(session, mail, following)
            done.append(mail.row_id)
            if outcome == REJECTED and mail.rejected is not None:
                mail.rejected()
            if shutdown.stop_requested():
                break  # an announced next mail is dropped with the session; its row goes back
            mail = following
    finally:
        # The batch's sent mails onto their rows; whatever was not sent goes
        # back at once: no attempt counted, no lease to wait for.
        rows.apply_sent(SentMail.row_id.in_(ids))
        sent = set(done)
        rows.release([i for i in ids if i not in sent])
    return len(done)
