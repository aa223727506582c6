"""Signed tokens for links in mails (itsdangerous), one salt per purpose.

A token made for one purpose never verifies for another, so a confirmation
link can not be replayed as an unsubscribe link or the other way round.
Purposes are registered here, in one place, with their lifetime.
"""
import functools
from datetime import timedelta

from flask import current_app
from itsdangerous import BadData, SignatureExpired, URLSafeTimedSerializer

# purpose -> maximum age (None: never expires)
PURPOSES = {
    "subscription-confirm": timedelta(days=7),
    "subscriber-manage": None,
    "subscriber-unsubscribe": None,
    # Opens and clicks of one delivery (newsletter/tracking.py).
    "delivery-tracking": None,
    # Answering an event invitation, and booking office hours from one (events/).
    "event-rsvp": None,
    "event-booking": None,
}


class InvalidToken(ValueError):
    """Forged, truncated, unknown or made for another purpose."""


class ExpiredToken(InvalidToken):
    """Genuine, but older than its purpose allows."""


def _serializer(purpose):
    if purpose not in PURPOSES:
        raise KeyError(purpose)
    return _serializer_for(current_app.config["SECRET_KEY"], purpose)


@functools.lru_cache(maxsize=64)
def _serializer_for(secret_key, purpose):
    # Built once per key and purpose: each build derives the signing key
    # again, a noticeable part of a tracking pixel's cost.
    return URLSafeTimedSerializer(secret_key, salt=f"egov-reach:{purpose}")


def make_token(purpose, payload):
    return _serializer(purpose).dumps(payload)


def read_token(purpose, token):
    """The payload of a genuine, unexpired token for `purpose`; else InvalidToken/ExpiredToken."""
    max_age = PURPOSES[purpose]
    try:
        return _serializer(purpose).loads(token or "", max_age=max_age.total_seconds() if max_age else None)
    except SignatureExpired as exc:
        raise ExpiredToken(purpose) from exc
    except (BadData, UnicodeError, ValueError, TypeError) as exc:
        raise InvalidToken(purpose) from exc
