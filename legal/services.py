"""The legal pages: Impressum, Datenschutzerklärung, Erklärung zur Barrierefreiheit.

Each is either a URL (the body's own page) or a text kept in the service
(Markdown, rendered without raw HTML) at a stable public address (/impressum,
/datenschutz, /barrierefreiheit). Admins set them under Rechtliche Angaben;
they live in the `settings` table, so every web and worker process sees the
same. An `IMPRINT_URL`, `PRIVACY_URL` or `ACCESSIBILITY_URL` from the
environment counts until an admin stores something.

The accessibility statement ships with a default (templates/legal/
accessibility_default.md) and so is never missing; a public body has to
write its own Impressum and Datenschutzerklärung, and until it has, admins
see a banner on every page.
"""
from dataclasses import dataclass
from datetime import datetime, timezone
from urllib.parse import urlsplit

from flask import current_app, has_request_context, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from markdown_it import MarkdownIt
from markupsafe import Markup
from sqlalchemy import delete, select
from sqlalchemy.exc import SQLAlchemyError

from core.extensions import db
from core.models import Setting
from core.urls import external_url

KINDS = ("imprint", "privacy", "accessibility")
TITLES = {
    "imprint": _l("Impressum"),
    "privacy": _l("Datenschutzerklärung"),
    "accessibility": _l("Erklärung zur Barrierefreiheit"),
}
# German in every mail (mails are German); the pages follow the language.
MAIL_TITLES = {"imprint": "Impressum", "privacy": "Datenschutz", "accessibility": "Barrierefreiheit"}
ENVIRONMENT = {"imprint": "IMPRINT_URL", "privacy": "PRIVACY_URL", "accessibility": "ACCESSIBILITY_URL"}
REQUIRED = ("imprint", "privacy")  # no default: the body must write its own
MAX_URL = 2000
MAX_TEXT = 100_000
# Kept on the request itself: `g` lives as long as the app context, which CLI
# code and tests share between requests.
_CACHE = "egov.legal_pages"

# No raw HTML (escaped as text), no images (remote loads); markdown-it refuses
# javascript:, vbscript:, file: and data: links itself.
markdown = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False}).disable("image")


class LegalError(ValueError):
    """Input that is not stored; `field` names the form field."""

    def __init__(self, message, field):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class LegalPage:
    kind: str
    url: str | None = None  # an address of the body's own site
    text: str | None = None  # Markdown kept in the service

    @property
    def title(self):
        return TITLES[self.kind]

    @property
    def is_default(self):
        return self.kind == "accessibility" and not self.url and not self.text

    @property
    def present(self):
        return bool(self.url or self.text or self.is_default)


def _key(kind, part):
    return f"legal.{kind}.{part}"


def _stored():
    keys = [_key(kind, part) for kind in KINDS for part in ("url", "text")]
    rows = db.session.execute(select(Setting.key, Setting.value).where(Setting.key.in_(keys)))
    return dict(rows.all())


def _environment_pages():
    return {kind: LegalPage(kind, url=current_app.config.get(ENVIRONMENT[kind]) or None) for kind in KINDS}


def pages():
    """{kind: LegalPage}, read once per request.

    An error page must render even when the database is what failed: then
    the addresses from the environment are all there is.
    """
    if has_request_context() and _CACHE in request.environ:
        return request.environ[_CACHE]
    try:
        stored = _stored()
    except SQLAlchemyError:
        current_app.logger.warning("legal pages: settings unreadable, using the environment", exc_info=True)
        return _environment_pages()
    result = {}
    for kind in KINDS:
        url, text = stored.get(_key(kind, "url")), stored.get(_key(kind, "text"))
        if not url and not text:
            url = current_app.config.get(ENVIRONMENT[kind]) or None
        result[kind] = LegalPage(kind, url=url or None, text=text or None)
    if has_request_context():
        request.environ[_CACHE] = result
    return result


def missing():
    """The pages a public body must still provide (for the admins' banner)."""
    current = pages()
    return [current[kind] for kind in REQUIRED if not current[kind].present]


def href(page, external=False):
    """Where a link to the page leads: its URL, or its public page in the service; None when missing."""
    if not page.present:
        return None
    if page.url:
        return page.url
    endpoint = f"legal.{page.kind}"
    return external_url(endpoint) if external else url_for(endpoint)


def links(external=False):
    """[(page, href)] of the pages that exist, in the order of KINDS."""
    return [(page, href(page, external)) for page in pages().values() if page.present]


def mail_links():
    """[(German title, absolute URL)] for the footer of every mail."""
    return [(MAIL_TITLES[page.kind], url) for page, url in links(external=True)]


# --- checking and storing -----------------------------------------------------------


def check_url(value, field):
    """The URL as stored ("" for none), or LegalError: only http(s) addresses with a host."""
    value = (value or "").strip()
    if not value:
        return ""
    if len(value) > MAX_URL:
        raise LegalError(_("Die Adresse darf höchstens %(max)d Zeichen lang sein.", max=MAX_URL), field)
    parts = urlsplit(value)
    if (parts.scheme.lower() not in ("http", "https") or not parts.hostname
            or any(char.isspace() or ord(char) < 32 or ord(char) == 127 or char in "\\{}" for char in value)):
        raise LegalError(_("Bitte geben Sie eine vollständige Adresse an, die mit https:// oder http:// beginnt."),
                         field)
    return value


def check_text(value, field):
    value = (value or "").replace("\r\n", "\n").replace("\r", "\n").strip()
    if len(value) > MAX_TEXT:
        raise LegalError(_("Der Text darf höchstens %(max)d Zeichen lang sein (jetzt: %(n)d).",
                           max=MAX_TEXT, n=len(value)), field)
    return value


def check(values):
    """{kind: (url, text)} checked and normalised, or the first LegalError; stores nothing."""
    checked = {}
    for kind in KINDS:
        url, text = values.get(kind, ("", ""))
        url, text = check_url(url, f"{kind}_url"), check_text(text, f"{kind}_text")
        if url and text:
            raise LegalError(_("Bitte geben Sie entweder eine Adresse oder einen Text an, nicht beides."),
                             f"{kind}_url")
        if kind == "accessibility" and text == default_accessibility_text():
            text = ""  # unchanged default: keep following the configured contact
        checked[kind] = (url, text)
    return checked


def save(values):
    """Store {kind: (url, text)} after checking all of it; the caller commits."""
    checked = check(values)
    db.session.execute(delete(Setting).where(Setting.key.like("legal.%")))
    now = datetime.now(timezone.utc)
    for kind, (url, text) in checked.items():
        for part, value in (("url", url), ("text", text)):
            if value:
                db.session.add(Setting(key=_key(kind, part), value=value, updated_at=now))
    if has_request_context():
        request.environ.pop(_CACHE, None)
    return checked


# --- rendering ----------------------------------------------------------------------


def accessibility_contact():
    return current_app.config.get("ACCESSIBILITY_CONTACT") or current_app.config["ADMIN_EMAIL"]


def default_accessibility_text():
    """The shipped statement (German, Markdown) with the configured feedback address."""
    return render_template("legal/accessibility_default.md", contact=accessibility_contact()).strip()


def text_of(page):
    """The Markdown a page kept in the service shows (the default statement when nothing is stored)."""
    return page.text or (default_accessibility_text() if page.is_default else "")


def render(text):
    return Markup(markdown.render(text))
