"""The hand-built mail bytes of newsletter/message.py and the per-recipient render: same results as the stdlib."""
import base64
import email
import email.header
import email.policy
import os

import pytest

from newsletter import compose, message


@pytest.mark.parametrize("size", [0, 1, 56, 57, 58, 76, 13_000, (1 << 20) * 3 // 4 + 500])
def test_base64_lines_are_those_of_encodebytes_with_crlf(size):
    data = os.urandom(size)
    assert message._base64_lines(data) == base64.encodebytes(data).replace(b"\n", b"\r\n")


@pytest.mark.parametrize("value", [
    "Neuigkeiten für Böblingen: OZG, E-Rechnung, Sprechstunden", "ä" * 100, "€𝄞" * 30, "a" * 44 + "ü" + "x", "plain",
])
def test_encoded_headers_decode_to_the_value_in_short_words(value):
    encoded = message.encode_header(value)
    assert str(email.header.make_header(email.header.decode_header(encoded.replace("\r\n", "")))) == value
    assert all(len(word) <= 75 for word in encoded.split("\r\n "))


def test_a_built_message_parses_back_to_its_parts():
    html = "<p>Grüße aus Böblingen</p>\n" * 500
    data = message.build([("From", "a@example.org"), ("Subject", message.encode_header("Grüße"))], "Text äöü", html)
    parsed = email.message_from_bytes(data, policy=email.policy.default)
    assert parsed["Subject"] == "Grüße"
    assert parsed.get_body(("plain",)).get_content() == "Text äöü"
    assert parsed.get_body(("html",)).get_content() == html
    assert all(len(line) <= 78 for line in data.split(b"\r\n"))


def test_the_per_recipient_render_equals_jinjas_own_and_stays_sandboxed():
    html = "<p>{{ name }} aus {{ municipality }}</p><a href=\"{{ unsubscribe_url }}\">x</a>"
    context = {"name": "<Erika>", "municipality": "Böblingen", "unsubscribe_url": "https://e.example/u?a=1&b=2",
               "email": "", "preferences_url": "", "web_url": ""}
    subject, rendered, text = compose.personalised(html, "Hallo {{ name }}", "Für {{ municipality }}", context)
    assert rendered == compose._compiled(html, True).render(context)
    assert "&lt;Erika&gt;" in rendered and "a=1&amp;b=2" in rendered
    assert (subject, text) == ("Für Böblingen", "Hallo <Erika>")
    from jinja2.exceptions import SecurityError

    with pytest.raises(SecurityError):
        compose.personalised("{{ name.__class__.__mro__ }}", "", "", {"name": "x"})
