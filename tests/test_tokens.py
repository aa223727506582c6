"""Signed link tokens (core/tokens.py): one format with itsdangerous, purposes kept apart."""
import pytest
from itsdangerous import URLSafeTimedSerializer

from core.tokens import PURPOSES, ExpiredToken, InvalidToken, LinkSerializer, make_token, read_token

PAYLOADS = [{"s": "AbCdEfGhIjKlMnOpQrStUv"}, 4711, {"test": 12}, {"s": "x" * 400, "n": list(range(60))}]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_tokens_verify_both_ways_with_a_plain_itsdangerous_serializer(payload):
    # Links in mails sent before the faster serializer must keep working, and the other way round.
    ours = LinkSerializer("a secret", salt="egov-reach:subscriber-manage")
    plain = URLSafeTimedSerializer("a secret", salt="egov-reach:subscriber-manage")
    assert plain.loads(ours.dumps(payload)) == payload
    assert ours.loads(plain.dumps(payload)) == payload


def test_small_payloads_skip_zlib_and_large_ones_are_still_compressed():
    ours = LinkSerializer("a secret", salt="s")
    assert not ours.dumps({"s": "abc"}).startswith(".")
    assert ours.dumps({"s": "x" * 400}).startswith(".")  # compressed, as itsdangerous marks it


def test_a_token_of_another_key_or_salt_does_not_verify():
    token = LinkSerializer("a secret", salt="one").dumps(1)
    assert LinkSerializer("a secret", salt="one").loads(token) == 1
    for other in (LinkSerializer("another secret", salt="one"), LinkSerializer("a secret", salt="two")):
        with pytest.raises(Exception):
            other.loads(token)


def test_purposes_are_kept_apart_and_lifetimes_hold(app, monkeypatch):
    with app.app_context():
        token = make_token("subscriber-unsubscribe", {"s": "p1"})
        assert read_token("subscriber-unsubscribe", token) == {"s": "p1"}
        for purpose in PURPOSES:
            if purpose != "subscriber-unsubscribe":
                with pytest.raises(InvalidToken):
                    read_token(purpose, token)
        confirm = make_token("subscription-confirm", {"s": "p1"})
        import time

        later = time.time() + PURPOSES["subscription-confirm"].total_seconds() + 60
        monkeypatch.setattr(time, "time", lambda: later)
        with pytest.raises(ExpiredToken):
            read_token("subscription-confirm", confirm)
        assert read_token("subscriber-unsubscribe", token) == {"s": "p1"}  # never expires
        with pytest.raises(InvalidToken):
            read_token("subscriber-unsubscribe", token[:-2])
