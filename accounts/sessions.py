"""Sign-in sessions that the server can end.

Flask's session cookie is only signed: whoever holds a copy holds the
sign-in, and nothing in the cookie can be taken back. So a sign-in is also a
row here (`UserSession`), and the cookie carries a random key that names it;
every request looks the row up (the Flask-Login user loader in
accounts/auth.py). Deleting the row ends the sign-in everywhere:

- logout deletes the browser's own row;
- a new password deletes all rows of the account (the browser that changed
  it gets a fresh one);
- deactivating or deleting an account deletes all of its rows;
- a session unused for SESSION_IDLE_SECONDS, or older than
  SESSION_MAX_SECONDS, is refused and deleted.

Only the SHA-256 of a key is stored, so reading this table signs nobody in.
"Last seen" is written at most every TOUCH_RESOLUTION, not on every request.
The API never uses these sessions: it takes bearer tokens only.

Plain functions without request objects (accounts.auth holds the request
side: the user loader, sign_in, sign_out); none commits.
"""
import hashlib
import secrets
from datetime import timedelta, timezone

from flask import current_app
from sqlalchemy import delete, or_, select, update

from accounts.models import UserSession, utcnow
from core.extensions import db

# The key of the session key inside Flask's session cookie.
COOKIE_KEY = "_session"
TOUCH_RESOLUTION = timedelta(minutes=5)
# Set in the database session's info when `user_for` wrote something.
WROTE = "accounts.sessions.wrote"
USER_AGENT_LENGTH = 255


def _hash(key):
    return hashlib.sha256(key.encode()).hexdigest()


def _aware(value):
    # SQLite hands back naive UTC.
    return value.replace(tzinfo=timezone.utc) if value is not None and value.tzinfo is None else value


def lifetimes():
    """(idle, absolute) lifetime of a session as timedeltas, from the settings (core/config.py)."""
    config = current_app.config
    return timedelta(seconds=config["SESSION_IDLE_SECONDS"]), timedelta(seconds=config["SESSION_MAX_SECONDS"])


def is_expired(row, now=None):
    now = now or utcnow()
    idle, absolute = lifetimes()
    return now - _aware(row.last_seen_at) > idle or now - _aware(row.created_at) > absolute


def start(user, user_agent=""):
    """Open a session for `user`; returns its key (for the cookie; it is stored only as a hash).

    Expired sessions of everybody are purged here: sign-ins are rare and the
    table is small, so this one DELETE keeps it small without a timer.
    """
    purge_expired()
    key = secrets.token_urlsafe(32)
    # By id: the user may come from another database session (CLI, tests).
    db.session.add(UserSession(user_id=user.id, key_hash=_hash(key), user_agent=(user_agent or "")[:USER_AGENT_LENGTH]))
    db.session.flush()
    return key


def user_for(key, user_id=None):
    """The active user of a live session with this key, or None.

    An expired session found here is deleted; a live one has "last seen"
    moved on when it is older than TOUCH_RESOLUTION. Both are plain
    statements (a logout in another tab may have deleted the row meanwhile,
    which must not fail this request), marked with `wrote()` for the caller
    to commit (accounts.auth does, at the start of each request).
    """
    if not isinstance(key, str) or not key:
        return None
    row = db.session.execute(
        select(UserSession).where(UserSession.key_hash == _hash(key))
    ).scalar_one_or_none()
    if row is None:
        return None
    if user_id is not None and str(row.user_id) != str(user_id):
        return None
    now = utcnow()
    if is_expired(row, now):
        db.session.execute(delete(UserSession).where(UserSession.id == row.id))
        db.session.info[WROTE] = True
        return None
    user = row.user
    if not user.active:
        return None
    if now - _aware(row.last_seen_at) > TOUCH_RESOLUTION:
        db.session.execute(update(UserSession).where(UserSession.id == row.id).values(last_seen_at=now))
        db.session.info[WROTE] = True
    return user


def wrote():
    """Whether `user_for` changed a row in this database session since the last call (which resets it)."""
    return db.session.info.pop(WROTE, False)


def end(key):
    """End the session with this key, if there is one."""
    if isinstance(key, str) and key:
        db.session.execute(delete(UserSession).where(UserSession.key_hash == _hash(key)))


def end_all(user):
    """End every session of `user`; returns how many there were."""
    if user.id is None:
        return 0
    result = db.session.execute(delete(UserSession).where(UserSession.user_id == user.id))
    return result.rowcount


def purge_expired(now=None):
    """Delete every expired session; returns how many."""
    now = now or utcnow()
    idle, absolute = lifetimes()
    result = db.session.execute(
        delete(UserSession).where(
            or_(UserSession.last_seen_at < now - idle, UserSession.created_at < now - absolute)
        )
    )
    return result.rowcount

