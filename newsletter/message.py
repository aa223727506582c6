"""The bytes of one newsletter mail, built directly.

Flask-Mail's Message goes through the email package for every mail (and
asks DNS for the host name in make_msgid); at thousands of mails a minute
that is most of the cost. The parts that are the same for every recipient
(From, Subject encoding when it has no placeholders, Reply-To, List-Id) are
prepared once per newsletter; per recipient only the body, the links and
the Message-ID change. Bodies are base64 (lines of 76 characters), headers
RFC 2047-encoded where they are not ASCII.
"""
import base64
import binascii
import secrets
from email.utils import formataddr, formatdate

CRLF = b"\r\n"


def encode_header(value):
    """`value`, or RFC 2047 base64 words of it when it is not ASCII (email.header is slow: 0.7 ms)."""
    if value.isascii():
        return value
    data = value.encode("utf-8")
    words, start = [], 0
    while start < len(data):
        # 45 bytes encode to 60 characters: each word stays within 75 (RFC 2047),
        # and a word never ends inside a character (no continuation byte 10xxxxxx next).
        end = min(start + 45, len(data))
        while end < len(data) and data[end] & 0xC0 == 0x80:
            end -= 1
        words.append(f"=?utf-8?b?{base64.b64encode(data[start:end]).decode('ascii')}?=")
        start = end
    return "\r\n ".join(words)


def address(name, email):
    """`Name <email>`, the name RFC 2047-encoded when it is not ASCII."""
    return formataddr((name, email)) if name else email


def message_id(domain):
    return f"<{secrets.token_hex(12)}@{domain}>"


# The line slices of a base64 body up to 1 MiB, made once: slicing by a ready
# slice object in C (map) is a third cheaper than a Python loop over offsets.
_LINE_SLICES = [slice(start, start + 76) for start in range(0, 1 << 20, 76)]


def _base64_lines(data):
    """Base64 in lines of 76 characters, each ended by CRLF (as `base64.encodebytes`, at a third of its cost)."""
    encoded = binascii.b2a_base64(data, newline=False)
    count = (len(encoded) + 75) // 76
    if count <= len(_LINE_SLICES):
        lines = list(map(encoded.__getitem__, _LINE_SLICES[:count]))
    else:
        lines = [encoded[start:start + 76] for start in range(0, len(encoded), 76)]
    lines.append(b"")
    return CRLF.join(lines)


def _part(content_type, text):
    body = _base64_lines(text.encode("utf-8"))
    return (
        f"Content-Type: {content_type}; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n".encode("ascii")
        + body
    )


def build(headers, text, html):
    """RFC 5322 bytes: `headers` [(name, value)] and a multipart/alternative of text and HTML."""
    boundary = "=_" + secrets.token_hex(12)
    head = "".join(f"{name}: {value}\r\n" for name, value in headers)
    head += f'MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary="{boundary}"\r\n\r\n'
    delimiter = f"--{boundary}\r\n".encode("ascii")
    return b"".join((
        head.encode("ascii"),
        delimiter, _part("text/plain", text), CRLF,
        delimiter, _part("text/html", html), CRLF,
        f"--{boundary}--\r\n".encode("ascii"),
    ))


def date_header():
    return formatdate(localtime=False, usegmt=True)
