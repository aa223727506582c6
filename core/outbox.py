"""Reading the mail outbox: the `.eml` files that `core.mail.OutboxConnection` writes.

Only names of exactly the form OutboxConnection produces are ever opened, so
a name taken from a URL cannot reach any other file. The files are whatever
was sent, possibly broken: every reading function here degrades to an empty
or placeholder value instead of raising, because one odd message must not
take the outbox page down.

Filtering and the district scope need the headers of every file, not only
of one page's: `summarize` reads just the header block (the bytes up to the
first empty line) and keeps what it parsed per file name, size and
modification time in this process (`SummaryCache`). A file is written once
and renamed into place, so a cached summary stays true until the file goes.
"""
import email
import email.errors
import email.header
import email.policy
import email.utils
import mimetypes
import os
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timezone
from email.parser import BytesHeaderParser

from core.mail import DISTRICT_HEADER, KIND_HEADER, KINDS
from core.paging import Page

# `{UTC timestamp %Y%m%dT%H%M%S%fZ}-{12 hex digits}.eml`, as in core/mail.py.
STEM_PATTERN = re.compile(r"\d{8}T\d{12}Z-[0-9a-f]{12}")
SUFFIX = ".eml"
# A header block is a few kB (a DKIM signature, long List-Unsubscribe
# URLs); beyond this a file is not read further for its summary.
MAX_HEADER_BYTES = 256 * 1024
UNKNOWN_KIND = "unknown"
DISTRICT_KEY_PATTERN = re.compile(r"\d{5}")  # a Kreisschlüssel, as directory.models.District.key

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


def headers(message):
    """Every header in order, as (name, text) pairs."""
    return [(key, _decoded(key, raw)) for key, raw in message.raw_items()]


@dataclass
class Summary:
    stem: str
    subject: str
    sender: str
    recipients: str
    date: datetime
    size: int
    kind: str = UNKNOWN_KIND  # one of core.mail.KINDS, or UNKNOWN_KIND for mail without the header
    district_key: str = ""  # "" when the mail does not say

    def matches(self, recipient="", subject=""):
        """Whether the recipients and the subject contain these texts, ignoring case."""
        return recipient.casefold() in self.recipients.casefold() and subject.casefold() in self.subject.casefold()


def read_header_block(fh, limit=MAX_HEADER_BYTES):
    """The bytes of a message up to and including the empty line after its headers (at most `limit`)."""
    data = b""
    while len(data) < limit:
        chunk = fh.read(8192)
        if not chunk:
            break
        searched_from = max(0, len(data) - 3)
        data += chunk
        ends = [at + len(sep) for sep in (b"\r\n\r\n", b"\n\n") if (at := data.find(sep, searched_from)) != -1]
        if ends:
            return data[: min(ends)]
    return data[:limit]


def _text(raw):
    """A raw header value as readable text: unfolded, RFC 2047 words decoded, bad bytes replaced.

    The summaries of a whole outbox are read at once, so this is the
    standard library's plain decoder, not `email.policy.default`'s header
    classes (which parse every address and cost a millisecond a header).
    """
    raw = raw.encode("utf-8", "surrogateescape").decode("utf-8", "replace")  # 8-bit bytes, as RFC 6532 allows
    raw = re.sub(r"\r?\n(?=[ \t])", "", raw).strip()
    if "=?" not in raw:
        return raw  # no encoded words: nothing to decode
    try:
        return str(email.header.make_header(email.header.decode_header(raw)))
    except DECODING_ERRORS:
        return raw


def _date(raw, stem):
    try:
        moment = email.utils.parsedate_to_datetime(raw) if raw else None
    except DECODING_ERRORS:
        moment = None
    if moment is None:
        return stamp_of(stem)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _read_summary(path, stem, size):
    with open(path, "rb") as fh:
        block = read_header_block(fh)
    # compat32 only splits the block into raw (name, value) pairs; the first of each name counts.
    raw = {}
    for name, value in BytesHeaderParser(policy=email.policy.compat32).parsebytes(block).raw_items():
        raw.setdefault(name.lower(), value)
    kind = _text(raw.get(KIND_HEADER.lower(), "")).lower()
    district_key = _text(raw.get(DISTRICT_HEADER.lower(), ""))
    return Summary(
        stem=stem,
        subject=_text(raw.get("subject", "")),
        sender=_text(raw.get("from", "")),
        recipients=_text(raw.get("to", "")),
        date=_date(_text(raw.get("date", "")), stem),
        size=size,
        kind=kind if kind in KINDS else UNKNOWN_KIND,
        district_key=district_key if DISTRICT_KEY_PATTERN.fullmatch(district_key) else "",
    )


class SummaryCache:
    """Parsed summaries by file name, valid while the file keeps its size and modification time.

    Bounded (least recently used go first) and shared by the threads of
    one process; each web process keeps its own.
    """

    def __init__(self, size=50_000):
        self.size = size
        self._entries = OrderedDict()
        self._lock = threading.Lock()

    def get(self, path, stamp):
        with self._lock:
            entry = self._entries.get(path)
            if entry is None or entry[0] != stamp:
                return None
            self._entries.move_to_end(path)
            return entry[1]

    def put(self, path, stamp, summary):
        with self._lock:
            self._entries[path] = (stamp, summary)
            self._entries.move_to_end(path)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def clear(self):
        with self._lock:
            self._entries.clear()


summaries = SummaryCache()


def summarize(directory, stem):
    """Subject, addresses, date, size, kind and district, reading only the header block."""
    path = message_path(directory, stem)
    if path is None:
        return None
    try:
        info = os.stat(path)
        stamp = (info.st_size, info.st_mtime_ns)
        summary = summaries.get(path, stamp)
        if summary is None:
            summary = _read_summary(path, stem, info.st_size)
            summaries.put(path, stamp, summary)
    except FileNotFoundError:
        return None  # removed between listing and reading
    return summary


def visible(summary, district_keys):
    """Whether a user with these districts (None: all, as an admin) may see the message.

    Mail that names no district (older files, mail from outside the
    service) is for admins only.
    """
    return district_keys is None or (summary.district_key != "" and summary.district_key in district_keys)


@dataclass(frozen=True)
class Filters:
    recipient: str = ""
    subject: str = ""
    kind: str = ""  # "" for every kind; else one of KINDS or UNKNOWN_KIND

    @property
    def active(self):
        return bool(self.recipient or self.subject or self.kind)

    def accept(self, summary):
        return (not self.kind or summary.kind == self.kind) and summary.matches(self.recipient, self.subject)


def list_messages(directory, page=1, per_page=50, filters=Filters(), district_keys=None):
    """One page of the summaries a user may see that pass `filters`, newest first; None when the page does not exist.

    `district_keys` as in `visible`. Without filters and scope only the
    shown page is read; otherwise every file's header block (or its cached
    summary).
    """
    stems = list_stems(directory)
    if filters.active or district_keys is not None:
        found = (summarize(directory, stem) for stem in stems)
        chosen = [s for s in found if s is not None and visible(s, district_keys) and filters.accept(s)]
        total = len(chosen)
    else:
        chosen, total = None, len(stems)
    pages = max(1, -(-total // per_page))
    if page < 1 or page > pages:
        return None
    if chosen is None:
        shown = (summarize(directory, stem) for stem in stems[(page - 1) * per_page : page * per_page])
        items = [s for s in shown if s is not None]
    else:
        items = chosen[(page - 1) * per_page : page * per_page]
    return Page(items=items, number=page, pages=pages, total=total, per_page=per_page)


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
