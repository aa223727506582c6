"""Signed tokens for links in mails (itsdangerous), one salt per purpose.

A token made for one purpose never verifies for another, so a confirmation
link can not be replayed as an unsubscribe link or the other way round.
Purposes are registered here, in one place, with their lifetime.
"""
import functools
from datetime import timedelta

from flask import current_app
from itsdangerous import BadData, SignatureExpired, TimestampSigner, URLSafeTimedSerializer
from itsdangerous.encoding import base64_encode
from itsdangerous.url_safe import URLSafeSerializerMixin

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


class _Signer(TimestampSigner):
    """itsdangerous' timestamp signer that derives its key once per secret, not once per token."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._keys = {}

    def derive_key(self, secret_key=None):
        secret_key = self.secret_keys[-1] if secret_key is None else secret_key
        key = self._keys.get(secret_key)
        if key is None:
            key = self._keys[secret_key] = super().derive_key(secret_key)
        return key


class LinkSerializer(URLSafeTimedSerializer):
    """itsdangerous' URL-safe timed serializer without the work a mail loop would repeat for every token.

    A newsletter makes three tokens per recipient. The tokens are the same
    format and verify both ways with a plain URLSafeTimedSerializer of the
    same key and salt (links in mails sent before keep working):
    - payloads up to COMPRESS_FROM bytes of JSON are not offered to zlib:
      compressing a few dozen bytes never comes out shorter, and each
      `zlib.compress` call sets up its whole state (most of a token's cost);
    - the signer of a salt, and its derived key, are made once.
    """

    default_signer = _Signer
    COMPRESS_FROM = 120

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._signers = {}

    def make_signer(self, salt=None):
        signer = self._signers.get(salt)
        if signer is None:
            signer = self._signers[salt] = super().make_signer(salt)
        return signer

    def dump_payload(self, obj):
        json = super(URLSafeSerializerMixin, self).dump_payload(obj)  # the JSON, before the mixin compresses it
        if len(json) >= self.COMPRESS_FROM:
            return super().dump_payload(obj)
        return base64_encode(json)


@functools.lru_cache(maxsize=64)
def _serializer_for(secret_key, purpose):
    # Built once per key and purpose: each build derives the signing key
    # again, a noticeable part of a tracking pixel's cost.
    return LinkSerializer(secret_key, salt=f"egov-reach:{purpose}")


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
