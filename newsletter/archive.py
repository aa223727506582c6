"""The public archive: a district's sent newsletters, and the web version each mail links to.

The web version is the compiled newsletter rendered without a recipient,
served as its own document (like the mail itself):
no name, no personal links, no tracking. Only sent newsletters (and ones
being sent) are shown.
"""
from flask import Blueprint, abort, current_app, render_template
from sqlalchemy import select

from core.database import load_or_404, set_district_scope
from core.extensions import db
from directory.models import District
from newsletter import compose
from newsletter.models import Newsletter

bp = Blueprint("archive", __name__)
PUBLISHED = ("sending", "paused", "sent")


@bp.before_request
def _unscoped():
    # Public pages: a signed-in coordinator of another district sees them too.
    set_district_scope(None)


@bp.get("/d/<key>/newsletters")
def index(key):
    district = load_or_404(District, key=key)
    newsletters = db.session.execute(
        select(Newsletter).where(Newsletter.district_key == key, Newsletter.status.in_(PUBLISHED))
        .order_by(Newsletter.started_at.desc())
    ).scalars().all()
    return render_template("newsletter/archive.html", district=district, newsletters=newsletters)


def anonymous_html(newsletter):
    """The newsletter's HTML for everyone: placeholders filled neutrally, tracking removed."""
    context = {"name": "", "email": "", "municipality": "", "preferences_url": "#", "unsubscribe_url": "#",
               "web_url": "#", "open_url": "", "click_base": ""}
    html, text = compose.compile_content(newsletter)
    return compose.personalised(html, text, newsletter.subject, context)[1]


@bp.get("/d/<key>/newsletters/<int:id>")
def newsletter(key, id):
    item = load_or_404(Newsletter, id=id, district_key=key)
    if item.status not in PUBLISHED:
        abort(404)
    response = current_app.response_class(anonymous_html(item), mimetype="text/html")
    # The mail's own document: its inline styles and remote images may load,
    # nothing may run (a mail has no business with scripts).
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; font-src https:; sandbox"
    )
    return response
