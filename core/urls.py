"""URLs: absolute links for mails, redirect targets taken from a request, and
pages reached by a personal link.

Jobs and CLI commands have no request to take the host from, and links in
mails must point at the public address even when a request came in through
an internal one.

A redirect target that arrives with a request (the login's `next`, the
language switch's `next`) goes through `safe_redirect_target`, the one check
of the service: only a path on this site passes, never an open redirect.

A page whose URL carries a personal token (confirm, preferences, unsubscribe,
RSVP, booking) is the person's own: `personal_link` keeps it out of every
cache and its URL out of Referer headers, error pages included.
"""
from functools import wraps
from urllib.parse import unquote, urlsplit, urlunsplit

from flask import current_app, has_request_context, request

# Marked on the request itself: `g` lives as long as the app context, which
# CLI code and tests share between requests.
_PERSONAL_LINK_MARK = "egov.personal_link"
PERSONAL_LINK_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
}
# Enough rounds to see through any realistic multiple encoding ("%255C").
_DECODE_ROUNDS = 4


def external_url(endpoint, **values):
    base = urlsplit(current_app.config["BASE_URL"])
    adapter = current_app.url_map.bind(base.netloc, script_name=base.path or "/", url_scheme=base.scheme)
    return adapter.build(endpoint, values, force_external=True)


def base_host():
    return urlsplit(current_app.config["BASE_URL"]).hostname or "localhost"


_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin(url):
    parts = urlsplit(url)
    return parts.scheme, (parts.hostname or "").lower(), parts.port or _DEFAULT_PORTS.get(parts.scheme)


def address_mismatch():
    """(the address this request came in on, BASE_URL) when they differ, else None.

    Links in mails are built from BASE_URL; a service reached under another
    host or port sends links that lead somewhere else (or nowhere).
    """
    if not has_request_context():
        return None
    base = current_app.config["BASE_URL"]
    seen = request.host_url.rstrip("/")
    return (seen, base) if _origin(seen) != _origin(base) else None


# --- redirect targets from a request ----------------------------------------------


def _own_hosts():
    hosts = {urlsplit(current_app.config["BASE_URL"]).netloc.lower()}
    if has_request_context():
        hosts.add(request.host.lower())
    return hosts


def _has_control(value, space_too=False):
    limit = 33 if space_too else 32
    return any(ord(char) < limit or ord(char) == 127 for char in value)


def _is_plain_path(value):
    """A same-site path as it stands: no scheme, no host, nothing a browser reads as one."""
    if not value.startswith("/") or value.startswith("//"):
        return False
    # Browsers read "\" as "/" ("/\evil" is "//evil") and drop tabs and line
    # breaks ("/\t/evil" is "//evil"); no URL of ours has either.
    if "\\" in value or _has_control(value, space_too=True):
        return False
    parts = urlsplit(value)
    return not parts.scheme and not parts.netloc


def _decodes_to_plain_path(path):
    """The path stays a plain one however often something on the way decodes it ("/%5Cevil", "/%2F/evil")."""
    for _round in range(_DECODE_ROUNDS):
        decoded = unquote(path)
        if decoded == path:
            return True
        if decoded.startswith("//") or "\\" in decoded or _has_control(decoded):
            return False
        path = decoded
    return False  # still encoded after several rounds: nobody needs that


def safe_redirect_target(target):
    """`target` as a path on this site, or None: the only way a redirect target from a request is used.

    Accepted: a path ("/d/08115/?page=2"), or an absolute http(s) URL of our
    own host, which becomes its path. Refused: other hosts, other schemes,
    protocol-relative ("//evil", "/\\evil", "\\\\evil"), control characters
    and whitespace, and all of these percent-encoded in the path ("/%5Cevil",
    "/%2F/evil"), since something on the way may decode it once more.
    """
    if not isinstance(target, str) or not target or len(target) > 2048:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        if parts.scheme.lower() not in ("http", "https") or parts.netloc.lower() not in _own_hosts():
            return None
        if "\\" in target or _has_control(target, space_too=True):
            return None
        target = urlunsplit(("", "", parts.path or "/", parts.query, parts.fragment))
    if not _is_plain_path(target) or not _decodes_to_plain_path(urlsplit(target).path):
        return None
    return target


# --- pages reached by a personal link -------------------------------------------


def personal_link(view):
    """Mark a view whose URL holds a personal token: `no-store` and `no-referrer` on every answer.

    The headers are set after the request (core.views), so an error page of
    such a URL (an expired link: 410) carries them too.
    """

    @wraps(view)
    def wrapped(*args, **kwargs):
        request.environ[_PERSONAL_LINK_MARK] = True
        return view(*args, **kwargs)

    return wrapped


def apply_personal_link_headers(response):
    """Set the headers on the response of a `personal_link` view (called for every response)."""
    if has_request_context() and request.environ.get(_PERSONAL_LINK_MARK):
        response.headers.update(PERSONAL_LINK_HEADERS)
    return response
