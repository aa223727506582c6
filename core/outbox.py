"""Reading the mail outbox: the `.eml` files that `core.mail.OutboxConnection` writes.

Only names of exactly the form OutboxConnection produces are ever opened, so
a name taken from a URL cannot reach any other file. The files are whatever
was sent, possibly broken: every reading function here degrades to an empty
or placeholder value instead of raising, because one odd message must not
take the outbox page down.
"""
import email
import email.errors
import email.policy
import mimetypes
import os
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from email.parser import BytesHeaderParser

from core.paging import Page

# `{UTC timestamp %Y%m%dT%H%M%S%fZ}-{12 hex digits}.eml`, as in core/mail.py.
STEM_PATTERN = re.compile(r"\d{8}T\d{12}Z-[0-9a-f]{12}")
SUFFIX = ".eml"

# What a malformed header, charset or transfer encoding raises inside the
# standard library's email package; it varies by defect and Python version.
DECODING_ERRORS = (
    email.errors.MessageError,
    LookupError,
    UnicodeError,
    ValueError,
    TypeError,
    IndexError,
    AttributeError,
    AssertionError,
)


def is_valid_stem(stem):
    return isinstance(stem, str) and STEM_PATTERN.fullmatch(stem) is not None


def file_name(stem):
    return stem + SUFFIX


def message_path(directory, stem):
    """The file of a message, or None when the name is malformed or unknown."""
    if not is_valid_stem(stem):
        return None
    path = os.path.join(directory, file_name(stem))
    return path if os.path.isfile(path) else None


def list_stems(directory):
    """All message names, newest first (the name starts with the UTC time)."""
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    stems = (n[: -len(SUFFIX)] for n in names if n.endswith(SUFFIX))
    return sorted((s for s in stems if is_valid_stem(s)), reverse=True)


def stamp_of(stem):
    """When OutboxConnection wrote the file (UTC), read from its name."""
    try:
        return datetime.strptime(stem[:22], "%Y%m%dT%H%M%S%fZ").replace(tzinfo=timezone.utc)
    except ValueError:
        return None  # right shape, impossible date: not one of ours, but harmless


def _decoded(name, raw):
    try:
        return str(email.policy.default.header_fetch_parse(name, raw))
    except DECODING_ERRORS:
        return str(raw).encode("ascii", "replace").decode("ascii")


def header(message, name):
    """A header as readable text ('' when absent)."""
    for key, raw in message.raw_items():
        if key.lower() == name.lower():
            return _decoded(key, raw)
    return ""


def headers(message):
    """Every header in order, as (name, text) pairs."""
    return [(key, _decoded(key, raw)) for key, raw in message.raw_items()]


def sent_at(message, stem):
    """The Date header as an aware datetime, else the time the file was written."""
    try:
        moment = getattr(message.get("Date"), "datetime", None)
    except DECODING_ERRORS:
        moment = None
    if moment is None:
        return stamp_of(stem)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


@dataclass
class Summary:
    stem: str
    subject: str
    sender: str
    recipients: str
    date: datetime
    size: int


def summarize(directory, stem):
    """Subject, addresses, date and size, reading only the header section."""
    path = message_path(directory, stem)
    if path is None:
        return None
    try:
        with open(path, "rb") as fh:
            message = BytesHeaderParser(policy=email.policy.default).parse(fh)
        size = os.path.getsize(path)
    except FileNotFoundError:
        return None  # removed between listing and reading
    return Summary(
        stem=stem,
        subject=header(message, "Subject"),
        sender=header(message, "From"),
        recipients=header(message, "To"),
        date=sent_at(message, stem),
        size=size,
    )


def list_messages(directory, page=1, per_page=50):
    """One page of summaries, newest first; None when the page does not exist."""
    stems = list_stems(directory)
    pages = max(1, -(-len(stems) // per_page))
    if page < 1 or page > pages:
        return None
    chosen = stems[(page - 1) * per_page : page * per_page]
    items = [s for s in (summarize(directory, stem) for stem in chosen) if s is not None]
    return Page(items=items, number=page, pages=pages, total=len(stems), per_page=per_page)


def load_message(directory, stem):
    """The parsed message, or None when the name is malformed or unknown."""
    path = message_path(directory, stem)
    if path is None:
        return None
    try:
        with open(path, "rb") as fh:
            return email.message_from_binary_file(fh, policy=email.policy.default)
    except FileNotFoundError:
        return None


def _part_text(part):
    try:
        return part.get_content()
    except DECODING_ERRORS:
        payload = part.get_payload(decode=True) or b""
        return payload.decode("utf-8", "replace")


def body_parts(message):
    """The text/plain and text/html parts a mail client would show (or None)."""
    try:
        text = message.get_body(preferencelist=("plain",))
        html = message.get_body(preferencelist=("html",))
    except DECODING_ERRORS:
        return None, None
    return text, html


def text_body(message):
    part, _ = body_parts(message)
    return None if part is None else _part_text(part)


def html_body(message):
    _, part = body_parts(message)
    return None if part is None else _part_text(part)


@dataclass
class Attachment:
    index: int
    name: str
    content_type: str
    size: int
    data: bytes


def attachments(message):
    """Every leaf part except the shown bodies: files, calendar invitations, images."""
    shown = [p for p in body_parts(message) if p is not None]
    found = []
    for part in message.walk():
        if part.is_multipart() or any(part is s for s in shown):
            continue
        found.append(_attachment(len(found), part))
    return found


def _attachment(index, part):
    content_type = part.get_content_type()
    try:
        data = part.get_payload(decode=True) or b""
    except DECODING_ERRORS:
        data = b""
    return Attachment(index=index, name=_file_name(part, index, content_type), content_type=content_type, size=len(data), data=data)


def _file_name(part, index, content_type):
    try:
        name = part.get_filename() or ""
    except DECODING_ERRORS:
        name = ""
    # A name in a mail is untrusted: never let it carry a directory.
    name = os.path.basename(name.replace("\\", "/")).strip().lstrip(".")
    if not name:
        name = f"anhang-{index + 1}{mimetypes.guess_extension(content_type) or '.bin'}"
    return name
