"""Opens and clicks: link rewriting, the pixel and redirect routes, reach figures.

A newsletter with tracking on gets its links rewritten once, at compile
time, to `{{ click_base }}/<link id>` and an open pixel `{{ open_url }}`;
the per-recipient render fills both from `tracking_context`, whose signed
token names the delivery. A click is answered from the link table only:
the request names a link id, never a target, so nobody can make the
redirect point elsewhere. A test mail gets a token naming its newsletter
instead (`tracking_context_for_test_send`): its links work, nothing is
counted.

What a request leaves behind is one TrackingEvent: delivery, kind, link,
time and whether a machine made it. The IP address and the user agent are
looked at to decide that and then dropped.

Mail clients, proxies and security scanners fetch pixels and links on their
own. An event counts as a machine's when it comes within
MACHINE_OPEN_SECONDS of the delivery's sending (nobody reads that fast;
scanners and Apple's prefetch do) or from a known proxy or scanner
(MACHINE_USER_AGENTS). They are kept, and reported apart.
"""
import html as htmllib
import re
from datetime import timedelta
from urllib.parse import urlsplit

from flask import Blueprint, abort, current_app, redirect, request
from sqlalchemy import and_, case, func, select, update

from core.database import set_district_scope
from core.extensions import db
from core.tokens import InvalidToken, make_token, read_token
from directory.models import Municipality
from newsletter.models import DELIVERY_STATES, Delivery, Link, Newsletter, TrackingEvent
from subscribers import privacy
from subscribers.models import utcnow

bp = Blueprint("tracking", __name__)

TOKEN_PURPOSE = "delivery-tracking"
DEFAULT_MACHINE_OPEN_SECONDS = 10
# Ids are 32-bit integer columns on PostgreSQL; a larger number from a URL
# must answer 404, not a database error.
MAX_ID = 2**31 - 1

# Substrings (compared in lower case) of user agents that fetch pixels or
# links for a mailbox rather than for a reader.
MACHINE_USER_AGENTS = (
    # Gmail fetches images through its proxy, which hides the reader and
    # caches the image ("… (via ggpht.com GoogleImageProxy)").
    "googleimageproxy",
    "ggpht.com",
    # Yahoo and AOL Mail's image proxy ("YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-…").
    "yahoomailproxy",
    # Microsoft: link previews and Safe Links / Defender checks, and Office's
    # look at a link before it opens a browser.
    "bingpreview",
    "microsoft office existence discovery",
    "microsoft office protocol discovery",
    "safelinks",
    # Mail security gateways and link scanners that name themselves.
    "barracuda",
    "mimecast",
    "proofpoint",
    "forcepoint",
    "symantec",
    "trendmicro",
    "trend micro",
    "sophos",
    "ironport",
    "spamexperts",
    "fortiguard",
    # Crawlers, chat-app link previews and HTTP libraries.
    "googlebot",
    "bingbot",
    "facebookexternalhit",
    "slackbot",
    "twitterbot",
    "linkedinbot",
    "whatsapp",
    "telegrambot",
    "discordbot",
    "python-requests",
    "python-urllib",
    "aiohttp",
    "go-http-client",
    "curl/",
    "wget/",
    "headlesschrome",
)
# Whole user agents that mark a machine: Apple Mail Privacy Protection
# fetches every remote image on delivery with just "Mozilla/5.0", and
# real mail clients always send a user agent.
MACHINE_EXACT_USER_AGENTS = ("mozilla/5.0", "")

# A 1×1 transparent GIF.
PIXEL = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)

OPEN_PIXEL = (
    '<img src="{{ open_url }}" width="1" height="1" alt="" '
    'style="display:block;border:0;width:1px;height:1px">'
)

# An <a> (or image map <area>) start tag; quoted values may hold ">".
_LINK_TAG = re.compile(r"""<(?:a|area)\b(?:[^>"']|"[^"]*"|'[^']*')*>""", re.IGNORECASE)
# One attribute inside a start tag.
_ATTRIBUTE = re.compile(r"""([^\s"'<>/=]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'<>`]+)))?""")
_BODY_END = re.compile(r"</body\s*>", re.IGNORECASE)
# Browsers drop tabs and line breaks inside URLs (WHATWG URL parsing).
_URL_DROPPED = str.maketrans("", "", "\t\n\r")


# --- compile time: links and pixel ---------------------------------------------


def tracked_url(value):
    """The URL a link's raw href attribute stands for, if it is one we track; else None.

    Only absolute http(s) URLs are tracked. Jinja expressions stay as they are:
    they are personalised per recipient (unsubscribe, preferences, web version).
    """
    if "{{" in value or "{%" in value:
        return None
    url = htmllib.unescape(value).strip(" \t\n\r\f").translate(_URL_DROPPED)
    if not url.lower().startswith(("http://", "https://")):
        return None
    if any(ord(char) < 0x20 or char == "\x7f" for char in url):
        return None  # not a URL a browser would follow; leave it alone
    try:
        if not urlsplit(url).hostname:
            return None
    except ValueError:
        return None
    return url


def _href_spans(tag):
    """(start, end, raw value) of the href attribute value inside one start tag, if any."""
    for match in _ATTRIBUTE.finditer(tag, 1):
        if match.group(1).lower() != "href":
            continue
        for group in (2, 3, 4):
            if match.group(group) is not None:
                return match.start(group), match.end(group), match.group(group)
        return None
    return None


def _rewrite_tags(html, replace):
    """Apply replace(raw href) -> new raw href or None to every link tag's href."""

    def rewrite_tag(match):
        tag = match.group(0)
        span = _href_spans(tag)
        if span is None:
            return tag
        start, end, value = span
        new = replace(value)
        if new is None:
            return tag
        # Unquoted values get quotes, so the Jinja expression stays one attribute.
        if tag[start - 1] not in "\"'":
            new = f'"{new}"'
        return tag[:start] + new + tag[end:]

    return _LINK_TAG.sub(rewrite_tag, html)


def rewrite_links(newsletter, html):
    """Point the compiled HTML's links at the click redirect and add the open pixel.

    Each distinct http(s) URL gets one Link row of the newsletter (reused
    when the newsletter is compiled again) and its hrefs become
    `{{ click_base }}/<link id>`. The caller decides whether the newsletter
    is tracked. Flushes; does not commit.
    """
    urls = {}  # in order of appearance

    def collect(value):
        url = tracked_url(value)
        if url is not None:
            urls[url] = None

    _rewrite_tags(html, collect)
    links = {link.url: link for link in newsletter.links}
    for url in urls:
        if url not in links:
            links[url] = Link(district_key=newsletter.district_key, url=url)
            newsletter.links.append(links[url])
    db.session.flush()

    def replace(value):
        url = tracked_url(value)
        return None if url is None else "{{ click_base }}/%d" % links[url].id

    html = _rewrite_tags(html, replace)
    if "{{ open_url }}" not in html:
        ends = list(_BODY_END.finditer(html))
        at = ends[-1].start() if ends else len(html)
        html = html[:at] + OPEN_PIXEL + html[at:]
    return html


# --- send time: per recipient --------------------------------------------------


def tracking_context(delivery_id, base_url=None):
    """`open_url` and `click_base` for one delivery's mail (cheap: runs once per recipient).

    Pass `base_url` from the sending loop to skip the config lookup.
    """
    return _context(make_token(TOKEN_PURPOSE, delivery_id), base_url)


def tracking_context_for_test_send(newsletter_id, base_url=None):
    """`open_url` and `click_base` for a test mail: the links work, nothing is recorded."""
    return _context(make_token(TOKEN_PURPOSE, {"test": newsletter_id}), base_url)


def _context(token, base_url):
    base = (base_url or current_app.config["BASE_URL"]).rstrip("/")
    return {"open_url": f"{base}/t/o/{token}.gif", "click_base": f"{base}/t/c/{token}"}


def _valid_id(value):
    return type(value) is int and 0 < value <= MAX_ID


def read_tracking_token(token):
    """("delivery", id) or ("test", newsletter id) for a genuine tracking token; else None."""
    try:
        payload = read_token(TOKEN_PURPOSE, token)
    except InvalidToken:
        return None
    if _valid_id(payload):
        return "delivery", payload
    if type(payload) is dict and payload.keys() == {"test"} and _valid_id(payload["test"]):
        return "test", payload["test"]
    return None


def delivery_id_from(token):
    """The delivery id a tracking token was made for; None when it is not a genuine delivery token."""
    kind_and_id = read_tracking_token(token)
    return kind_and_id[1] if kind_and_id and kind_and_id[0] == "delivery" else None


# --- recording -----------------------------------------------------------------


def is_machine_agent(user_agent):
    agent = (user_agent or "").strip().lower()
    return agent in MACHINE_EXACT_USER_AGENTS or any(marker in agent for marker in MACHINE_USER_AGENTS)


def is_machine(sent_at, now, user_agent, head=False):
    """Whether a fetch at `now` was made by a machine rather than a reader.

    Too soon after sending (or before the row even records its sending), a
    proxy or scanner user agent, or a HEAD request (a link check, never a
    mail client showing an image).
    """
    if head or sent_at is None:
        return True
    seconds = current_app.config.get("MACHINE_OPEN_SECONDS", DEFAULT_MACHINE_OPEN_SECONDS)
    if now - sent_at < timedelta(seconds=seconds):
        return True
    return is_machine_agent(user_agent)


def _record(delivery, kind, user_agent, head, link_id=None):
    now = utcnow()
    event = TrackingEvent(
        delivery_id=delivery.id, district_key=delivery.district_key, kind=kind, link_id=link_id,
        machine=is_machine(delivery.sent_at, now, user_agent, head), created_at=now,
    )
    db.session.add(event)
    return event


def record_open(delivery_id, user_agent, head=False):
    """Record an open of the delivery; None (nothing recorded) when there is no such delivery."""
    delivery = db.session.execute(
        select(Delivery.id, Delivery.district_key, Delivery.sent_at).where(Delivery.id == delivery_id)
    ).first()
    if delivery is None:
        return None
    return _record(delivery, "open", user_agent, head)


def record_click(delivery_id, link_id, user_agent, head=False):
    """Record a click and return the link's stored URL; None when the link is not the delivery's newsletter's."""
    if not _valid_id(link_id):
        return None
    row = db.session.execute(
        select(Delivery.id, Delivery.district_key, Delivery.sent_at, Link.url)
        .join(Link, Link.newsletter_id == Delivery.newsletter_id)
        .where(Delivery.id == delivery_id, Link.id == link_id)
    ).first()
    if row is None:
        return None
    _record(row, "click", user_agent, head, link_id=link_id)
    return row.url


# --- routes --------------------------------------------------------------------


@bp.before_request
def _unscoped():
    # The token is the authority; a reader may be signed in as a coordinator
    # of another district.
    set_district_scope(None)


def _token_or_404(token):
    kind_and_id = read_tracking_token(token)
    if kind_and_id is None:
        abort(404)
    return kind_and_id


def _request_facts():
    return request.headers.get("User-Agent", ""), request.method == "HEAD"


def _test_send_link_url(newsletter_id, link_id):
    """A link's URL for a test mail's click (nothing recorded); None when not the newsletter's."""
    if not _valid_id(link_id):
        return None
    return db.session.scalar(select(Link.url).where(Link.id == link_id, Link.newsletter_id == newsletter_id))


@bp.get("/t/o/<token>.gif")
def open_pixel(token):
    kind, row_id = _token_or_404(token)
    if kind == "delivery":
        if record_open(row_id, *_request_facts()) is None:
            abort(404)
        db.session.commit()
    response = current_app.response_class(PIXEL, mimetype="image/gif")
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/t/c/<token>/<int:link_id>")
def click(token, link_id):
    kind, row_id = _token_or_404(token)
    if kind == "delivery":
        url = record_click(row_id, link_id, *_request_facts())
    else:
        url = _test_send_link_url(row_id, link_id)
    if url is None:
        abort(404)
    db.session.commit()
    response = redirect(url, 302)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


# --- figures -------------------------------------------------------------------


def newsletter_stats(newsletter):
    """Delivery and reach figures of one newsletter, in a few GROUP BY queries.

    - one key per delivery status (all of DELIVERY_STATES, 0 when none) and
      `recipients`, the number of deliveries;
    - `opens_human`: deliveries with at least one human open or human click
      (a click proves the mail was opened, also with images blocked);
    - `opens_machine`: deliveries opened only by machines (machine opens or
      clicks, no human one); the two never overlap;
    - `clicks`: deliveries with at least one human click; `clicks_total`:
      human click events; `clicks_machine`: machine click events;
    - `municipalities_reached`: municipalities reached ("erreicht": a delivery sent, not bounced);
    - `municipalities_opened`: municipalities actively reached ("aktiv erreicht": a human open or click);
      both from `reach.services.offer_reach`, the one definition of reach;
    - `district_municipalities`: municipalities of the newsletter's district.

    Deliveries of erased subscribers count as before: the municipality is on
    the delivery.
    """
    stats = dict.fromkeys(DELIVERY_STATES, 0)
    for status, count in db.session.execute(
        select(Delivery.status, func.count()).where(Delivery.newsletter_id == newsletter.id).group_by(Delivery.status)
    ):
        stats[status] = count
    stats["recipients"] = sum(stats[status] for status in DELIVERY_STATES)

    human = TrackingEvent.machine.is_(False)
    is_click = TrackingEvent.kind == "click"
    per_delivery = (
        select(
            func.max(case((human, 1), else_=0)).label("human"),
            func.sum(case((and_(is_click, human), 1), else_=0)).label("human_clicks"),
            func.sum(case((and_(is_click, TrackingEvent.machine.is_(True)), 1), else_=0)).label("machine_clicks"),
        )
        .select_from(Delivery)
        .join(TrackingEvent, TrackingEvent.delivery_id == Delivery.id)
        .where(Delivery.newsletter_id == newsletter.id)
        .group_by(Delivery.id)
        .subquery()
    )
    engaged = db.session.execute(
        select(
            func.coalesce(func.sum(per_delivery.c.human), 0),
            func.count(),
            func.coalesce(func.sum(case((per_delivery.c.human_clicks > 0, 1), else_=0)), 0),
            func.coalesce(func.sum(per_delivery.c.human_clicks), 0),
            func.coalesce(func.sum(per_delivery.c.machine_clicks), 0),
        )
    ).one()
    opens_human, opened_at_all, clicked, clicks_total, clicks_machine = map(int, engaged)

    from reach.definition import NEWSLETTER
    from reach.services import offer_reach

    # The municipality figures are reach's, defined once in reach/.
    reach = offer_reach(NEWSLETTER, newsletter.id, newsletter.district_key)
    district_municipalities = db.session.execute(
        select(func.count()).select_from(Municipality).where(Municipality.district_key == newsletter.district_key)
    ).scalar_one()
    stats.update(
        opens_human=opens_human,
        opens_machine=opened_at_all - opens_human,
        clicks=clicked,
        clicks_total=clicks_total,
        clicks_machine=clicks_machine,
        municipalities_reached=reach["reached"],
        municipalities_opened=reach["active"],
        district_municipalities=district_municipalities,
    )
    return stats


# --- data-protection rights ----------------------------------------------------


def export_deliveries(subscriber):
    """The person's deliveries: which newsletter, how it went, and their opens and clicks."""
    deliveries = db.session.execute(
        select(Delivery, Newsletter.subject)
        .join(Newsletter, Newsletter.id == Delivery.newsletter_id)
        .where(Delivery.subscriber_id == subscriber.id)
        .order_by(Delivery.id)
    ).all()
    events = {}
    for event, url in db.session.execute(
        select(TrackingEvent, Link.url)
        .outerjoin(Link, Link.id == TrackingEvent.link_id)
        .where(TrackingEvent.delivery_id.in_([delivery.id for delivery, _subject in deliveries]))
        .order_by(TrackingEvent.created_at, TrackingEvent.id)
    ):
        events.setdefault((event.delivery_id, event.kind), []).append((event, url))
    iso = privacy.iso
    result = []
    for delivery, subject in deliveries:
        opens = events.get((delivery.id, "open"), [])
        clicks = events.get((delivery.id, "click"), [])
        result.append({
            "newsletter": {"id": delivery.newsletter_id, "subject": subject},
            "status": delivery.status,
            "sent_at": iso(delivery.sent_at),
            "attempts": delivery.attempts,
            "smtp_reply": delivery.smtp_reply,
            "message_id": delivery.message_id,
            "opens": {
                "count": len(opens),
                "events": [{"at": iso(event.created_at), "automatic": event.machine} for event, _url in opens],
            },
            "clicks": {
                "count": len(clicks),
                "events": [{"at": iso(event.created_at), "automatic": event.machine, "url": url}
                           for event, url in clicks],
            },
        })
    return result


def erase_deliveries(subscriber):
    """Detach the person from their deliveries; status, municipality and events stay as anonymous reach.

    The SMTP reply and the Message-ID go too: both may contain the address.
    """
    db.session.execute(
        update(Delivery)
        .where(Delivery.subscriber_id == subscriber.id)
        .values(subscriber_id=None, smtp_reply="", message_id=None),
        execution_options={"synchronize_session": "fetch"},
    )


privacy.register("newsletters", export_deliveries, erase_deliveries)
