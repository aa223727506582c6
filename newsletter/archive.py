"""The public archive: a district's published newsletters, their web versions and an Atom feed.

A newsletter is public when its coordinator published it ("im Archiv
veröffentlichen", off by default, switchable at any time) and its sending
began (PUBLISHED); any other id answers 404, like an unknown one. The web
version is the content written for nobody (newsletter/webversion.py) inside
the site's own layout: <main>, the page language, a way back to the archive,
the subscribe link instead of personal links, no tracking.
"""
import re
from datetime import datetime, timezone

from feedgen.feed import FeedGenerator
from flask import Blueprint, Response, abort, render_template, request, url_for
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import func, or_, select

from core.database import load_or_404, set_district_scope
from core.extensions import db
from core.paging import paginate
from core.urls import external_url
from core.views import SECURITY_HEADERS
from directory.identity import mail_context
from directory.models import District
from newsletter import webversion
from newsletter.models import Newsletter

bp = Blueprint("archive", __name__)
PUBLISHED = ("sending", "paused", "sent")
PER_PAGE = 20
FEED_ENTRIES = 20
MAX_SEARCH = 200
# The site's policy, with images from the web: a newsletter may show pictures it links from https sites.
PAGE_POLICY = re.sub(r"img-src ([^;]*)", r"img-src \1 https:", SECURITY_HEADERS["Content-Security-Policy"])


@bp.before_request
def _unscoped():
    # Public pages: a signed-in coordinator of another district sees them too.
    set_district_scope(None)


def published(key):
    """SELECT of the district's public newsletters, newest sending first."""
    return (
        select(Newsletter)
        .where(Newsletter.district_key == key, Newsletter.status.in_(PUBLISHED), Newsletter.published_in_archive)
        .order_by(Newsletter.started_at.desc(), Newsletter.id.desc())
    )


def _matching(query, search):
    """Subject or content containing the words, ignoring case (LIKE, on SQLite and PostgreSQL alike)."""
    for word in search.split():
        needle = "%" + word.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = query.where(or_(
            func.lower(Newsletter.subject).like(needle, escape="\\"),
            func.lower(Newsletter.body).like(needle, escape="\\"),
        ))
    return query


def _feed_url(key):
    return url_for("archive.feed", key=key)


@bp.get("/d/<key>/newsletters")
def index(key):
    district = load_or_404(District, key=key)
    search = " ".join(request.args.get("q", "").split())[:MAX_SEARCH]
    query = _matching(published(key), search) if search else published(key)
    page = paginate(query, request.args.get("page", 1, type=int), PER_PAGE)
    return render_template(
        "newsletter/archive.html", district=district, page=page, search=search,
        subjects={item.id: webversion.subject(item) for item in page.items}, feed_url=_feed_url(key),
    )


def _public_or_404(key, id):
    item = load_or_404(Newsletter, id=id, district_key=key)
    if item.status not in PUBLISHED or not item.published_in_archive:
        abort(404)
    return item


@bp.get("/d/<key>/newsletters/<int:id>")
def newsletter(key, id):
    district = load_or_404(District, key=key)
    item = _public_or_404(key, id)
    response = Response(render_template(
        "newsletter/web_version.html", district=district, newsletter=item, subject=webversion.subject(item),
        content=webversion.content_html(item), coordinator=mail_context(district).get("coordinator"),
        feed_url=_feed_url(key),
    ))
    response.headers["Content-Security-Policy"] = PAGE_POLICY
    return response


@bp.get("/d/<key>/newsletters.atom")
def feed(key):
    """The district's published newsletters as an Atom feed, newest first, with their content."""
    district = load_or_404(District, key=key)
    items = db.session.execute(published(key).limit(FEED_ENTRIES)).scalars().all()
    name = f"{district.kind} {district.name}"
    # A feed reader sends no language and the newsletters are German: so is the feed.
    with force_locale("de"):
        title = _("Newsletter der E-Government-Koordination %(district)s", district=name)
        author = _("E-Government-Koordination %(district)s", district=name)
    generator = FeedGenerator()
    generator.id(external_url("archive.index", key=key))
    generator.title(title)
    generator.language("de")
    generator.author({"name": author})
    generator.link(href=external_url("archive.feed", key=key), rel="self", type="application/atom+xml")
    generator.link(href=external_url("archive.index", key=key), rel="alternate", type="text/html")
    newest = max((_updated(item) for item in items), default=None)
    # An empty feed still needs <updated>: the start of the archive will do, and stays the same.
    generator.updated(newest or datetime(2026, 1, 1, tzinfo=timezone.utc))
    # feedgen writes entries in reverse order of adding them: add the oldest first.
    for item in reversed(items):
        url = external_url("archive.newsletter", key=key, id=item.id)
        entry = generator.add_entry()
        entry.id(url)
        entry.title(webversion.subject(item))
        entry.link(href=url, rel="alternate", type="text/html")
        entry.published(item.started_at)
        entry.updated(_updated(item))
        entry.content(webversion.content_html(item), type="html")
    response = Response(generator.atom_str(pretty=True), mimetype="application/atom+xml")
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


def _updated(item):
    return item.started_at or item.updated_at
