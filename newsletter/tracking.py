"""Opens and clicks: link rewriting, the pixel and redirect routes, reach figures.

A newsletter with tracking on gets its links rewritten once, at compile
time, to `{{ click_base }}/<link id>` and an open pixel `{{ open_url }}`;
the per-recipient render fills both from `tracking_context`, whose signed
token names the delivery. A click is answered from the link table only:
the request names a link id, never a target, so nobody can make the
redirect point elsewhere. A test mail gets a token naming its newsletter
instead (`tracking_context_for_test_send`): its links work, nothing is
counted.

What a request leaves behind is a count on one TrackingEvent row: delivery,
kind, link, whether a machine made it, and the window it fell in (see
`count_hit`): repeats within TRACKING_WINDOW_SECONDS add to the row's `hits`
instead of adding rows, so hammering one pixel costs one row per window.
The pixel and the redirect load no ORM object and send one statement per
counted request. Per-token (`count_hit`) and per-address (`hit_allowed`)
rate limits stop the counting, never the answer. The IP address and the user agent are
looked at to decide that and then dropped.

Mail clients, proxies and security scanners fetch pixels and links on their
own. A hit counts as a machine's when it comes within
MACHINE_OPEN_SECONDS of the delivery's sending (nobody reads that fast;
scanners and Apple's prefetch do) or from a known proxy or scanner
(MACHINE_USER_AGENTS). They are kept, and reported apart.
"""
import functools
import html as htmllib
import re
import time
from datetime import timedelta
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from flask import Blueprint, abort, current_app, request
from flask_limiter.util import get_remote_address
from limits import parse_many
from sqlalchemy import BigInteger, Boolean, Integer, String, and_, bindparam, case, func, select, text, update
from werkzeug.urls import iri_to_uri

from core.database import UTCDateTime, set_district_scope, sqlite_write_turn
from core.extensions import db, limiter
from core.paging import MAX_INT
from core.tokens import InvalidToken, make_token, read_token
from directory.models import Municipality
from legal import services as legal_services
from newsletter.models import DELIVERY_STATES, Delivery, Link, Newsletter, TrackingEvent
from subscribers import privacy
from subscribers.models import utcnow

bp = Blueprint("tracking", __name__)


@limiter.request_filter
def _no_route_limits():
    # No route limit applies to tracking (the address limit is `hit_allowed`'s):
    # a request filter spares these requests Flask-Limiter's search for one,
    # which `exempt` does not (measured: 0.3 ms of a pixel's 2 ms).
    return request.blueprint == "tracking"

TOKEN_PURPOSE = "delivery-tracking"
DEFAULT_MACHINE_OPEN_SECONDS = 10
DEFAULT_WINDOW_SECONDS = 3600
DEFAULT_HITS_PER_WINDOW = 100
SECONDS_PER_DAY = 86400
# The day reach counts a touch on is a Berlin day (reach.definition.berlin_day).
BERLIN = ZoneInfo("Europe/Berlin")

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
    is tracked. Flushes; does not commit. The legal pages (footer) are
    never tracked: reading the Impressum is nobody's reach.
    """
    urls = {}  # in order of appearance
    untracked = {url for _title, url in legal_services.mail_links()}

    def tracked(value):
        url = tracked_url(value)
        return None if url in untracked else url

    def collect(value):
        url = tracked(value)
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
        url = tracked(value)
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
    return type(value) is int and 0 < value <= MAX_INT


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
    """Whether the user agent is a proxy's, a scanner's or a library's (see MACHINE_USER_AGENTS)."""
    agent = (user_agent or "").strip().lower()
    return agent in MACHINE_EXACT_USER_AGENTS or any(marker in agent for marker in MACHINE_USER_AGENTS)


def hit_bucket(now, window_seconds):
    """The number of the counting window `now` falls in: windows of the given length, restarting every Berlin day.

    A window never spans two Berlin days, so all hits counted on one row fall
    on the day reach counts the row on (reach counts per person and day).
    """
    window = max(1, min(int(window_seconds), SECONDS_PER_DAY))
    local = now.astimezone(BERLIN)
    windows_per_day = -(-SECONDS_PER_DAY // window)
    second_of_day = local.hour * 3600 + local.minute * 60 + local.second
    return local.date().toordinal() * windows_per_day + second_of_day // window


# One statement per counted hit, written out once: building it with the
# SQLAlchemy expression language on every request cost more than running it.
# The same text runs on SQLite (≥ 3.24, upsert) and PostgreSQL. ON CONFLICT
# names the unique index uq_tracking_events_hit of TrackingEvent.
_HIT_SQL = """
INSERT INTO tracking_events (delivery_id, district_key, kind, link_id, machine, created_at, last_at, hits, bucket)
SELECT d.id, d.district_key, :kind, {link}, (:forced OR d.sent_at IS NULL OR d.sent_at > :machine_until),
       :now, :now, 1, :bucket
FROM deliveries d {join}
WHERE d.id = :delivery_id{where}
ON CONFLICT (delivery_id, kind, coalesce(link_id, 0), machine, bucket)
DO UPDATE SET hits = tracking_events.hits + 1, last_at = excluded.last_at WHERE tracking_events.hits < :max_hits
RETURNING {answer}
"""
_HIT_PARAMETERS = (
    bindparam("kind", type_=String), bindparam("forced", type_=Boolean),
    bindparam("machine_until", type_=UTCDateTime), bindparam("now", type_=UTCDateTime),
    bindparam("bucket", type_=BigInteger), bindparam("delivery_id", type_=Integer),
    bindparam("max_hits", type_=Integer),
)
_COUNT_OPEN = text(_HIT_SQL.format(link="NULL", join="", where="", answer="id")).bindparams(*_HIT_PARAMETERS)
_COUNT_CLICK = text(_HIT_SQL.format(
    # The link must be one of the delivery's newsletter's; the redirect's target comes back.
    link="l.id", join="JOIN links l ON l.newsletter_id = d.newsletter_id", where=" AND l.id = :link_id",
    answer="(SELECT links.url FROM links WHERE links.id = tracking_events.link_id)",
)).bindparams(*_HIT_PARAMETERS, bindparam("link_id", type_=Integer))


def count_hit(delivery_id, kind, user_agent, head=False, link_id=None):
    """Count one open or click of a delivery in ONE statement; what it found, or None.

    INSERT … SELECT from the delivery (and, for a click, the link, which must
    be one of the delivery's newsletter's) ON CONFLICT on the hit index DO
    UPDATE hits + 1: the first hit in a window writes the row, the next ones
    count on it, up to TRACKING_TOKEN_HITS_PER_WINDOW (the per-token limit,
    kept where the count lives: it costs no round trip to Redis). The
    machine flag is computed in the statement from the delivery's `sent_at`
    (too soon after sending), the user agent and the method, so no row is
    loaded first. RETURNING gives the click's stored URL
    (an open returns True). Nothing matches (no such delivery, or a link of
    another newsletter) or the row is full: None, nothing written.

    Runs in its own short transaction on an engine connection, committed
    here: the ORM session's machinery cost three times the statement itself
    (measured: about 1.7 ms against 0.4 ms on SQLite).
    """
    config = current_app.config
    now = utcnow()
    seconds = config.get("MACHINE_OPEN_SECONDS", DEFAULT_MACHINE_OPEN_SECONDS)
    parameters = {
        "kind": kind, "forced": bool(head or is_machine_agent(user_agent)),
        "machine_until": now - timedelta(seconds=seconds), "now": now,
        "bucket": hit_bucket(now, config.get("TRACKING_WINDOW_SECONDS", DEFAULT_WINDOW_SECONDS)),
        "delivery_id": delivery_id,
        "max_hits": config.get("TRACKING_TOKEN_HITS_PER_WINDOW", DEFAULT_HITS_PER_WINDOW),
    }
    if kind == "click":
        if not _valid_id(link_id):
            return None
        statement, parameters["link_id"] = _COUNT_CLICK, link_id
    else:
        statement = _COUNT_OPEN
    with sqlite_write_turn(), db.engine.begin() as connection:
        found = connection.execute(statement, parameters).first()
    if found is None:
        return None
    return found[0] if kind == "click" else True


def record_open(delivery_id, user_agent, head=False):
    """Count an open of the delivery (up to the limit); False when there is no such delivery."""
    if count_hit(delivery_id, "open", user_agent, head):
        return True
    # Rare: beyond the limit, or a delivery that is gone.
    return db.session.scalar(select(Delivery.id).where(Delivery.id == delivery_id)) is not None


def record_click(delivery_id, link_id, user_agent, head=False):
    """Count a click (up to the limit) and return the link's URL; None when it is not the delivery's newsletter's."""
    return count_hit(delivery_id, "click", user_agent, head, link_id) or delivery_link_url(delivery_id, link_id)


def delivery_link_url(delivery_id, link_id):
    """The URL of a link of the delivery's newsletter, counting nothing; None when there is none."""
    if not _valid_id(link_id):
        return None
    return db.session.scalar(
        select(Link.url).join(Delivery, Delivery.newsletter_id == Link.newsletter_id)
        .where(Delivery.id == delivery_id, Link.id == link_id)
    )


class AddressWindows:
    """Fixed-window hit counts per client address, in this process's memory.

    The per-address limit lives in the web process: a round trip to Redis per
    pixel cost more than the rest of the request (measured: about 0.8 ms of
    2.9 ms), and `limits`' own memory storage starts a timer thread on nearly
    every hit under load (0.3 ms). With N web processes an address may get up
    to N times the limit counted; what it bounds is the counting, and each
    row has its own cap. A sync gunicorn worker serves one request at a time;
    under threads a race can only miscount by a few hits.
    """

    def __init__(self):
        self.reset()

    def reset(self):
        self.counts = {}

    def hit(self, item, address, now=None):
        """Count a hit against the rate-limit item (`limits.RateLimitItem`); False beyond its amount."""
        seconds = item.get_expiry()
        window = int((time.time() if now is None else now) // seconds)
        key = (seconds, item.amount)
        current, counts = self.counts.get(key, (None, None))
        if current != window:
            counts = {}  # a new window: the old counts (of every address) go
            self.counts[key] = (window, counts)
        counts[address] = counts.get(address, 0) + 1
        return counts[address] <= item.amount


_address_windows = AddressWindows()


def reset_address_limits():
    """Forget every address's count in this process (tests; Redis flushes do not reach it)."""
    _address_windows.reset()


def hit_allowed(address):
    """Count one hit of the client address against TRACKING_ADDRESS_RATE_LIMIT; False beyond it.

    Beyond a limit the pixel and the redirect still answer (a reader must
    reach the link, a mail client gets its image); only the counting stops,
    which is all an attacker could have used. The per-token limit is
    `count_hit`'s.
    """
    for item in _limits(current_app.config.get("TRACKING_ADDRESS_RATE_LIMIT")):
        if not _address_windows.hit(item, address or ""):
            return False
    return True


@functools.lru_cache(maxsize=16)
def _limits(spec):
    return tuple(parse_many(spec)) if spec else ()


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


def _counted():
    return hit_allowed(get_remote_address())


def _test_send_link_url(newsletter_id, link_id):
    """A link's URL for a test mail's click (nothing recorded); None when not the newsletter's."""
    if not _valid_id(link_id):
        return None
    return db.session.scalar(select(Link.url).where(Link.id == link_id, Link.newsletter_id == newsletter_id))


@bp.get("/t/o/<token>.gif")
def open_pixel(token):
    kind, row_id = _token_or_404(token)
    if kind == "delivery" and _counted():
        if not record_open(row_id, *_request_facts()):
            abort(404)
    response = current_app.response_class(PIXEL, mimetype="image/gif")
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/t/c/<token>/<int:link_id>")
def click(token, link_id):
    kind, row_id = _token_or_404(token)
    if kind == "delivery" and _counted():
        url = record_click(row_id, link_id, *_request_facts())
    elif kind == "delivery":
        url = delivery_link_url(row_id, link_id)
    else:
        url = _test_send_link_url(row_id, link_id)
    if url is None:
        abort(404)
    # A bare 302 (werkzeug's `redirect` also writes an HTML body nobody reads).
    return current_app.response_class(status=302, headers={
        "Location": iri_to_uri(url), "Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})


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
      human clicks (every counted hit); `clicks_machine`: machine clicks;
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
            func.sum(case((and_(is_click, human), TrackingEvent.hits), else_=0)).label("human_clicks"),
            func.sum(case((and_(is_click, TrackingEvent.machine.is_(True)), TrackingEvent.hits), else_=0))
            .label("machine_clicks"),
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
    """The person's deliveries: which newsletter, how it went, and their opens and clicks (counted per window)."""
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
                "count": sum(event.hits for event, _url in opens),
                "events": [_exported(event) for event, _url in opens],
            },
            "clicks": {
                "count": sum(event.hits for event, _url in clicks),
                "events": [dict(_exported(event), url=url) for event, url in clicks],
            },
        })
    return result


def _exported(event):
    """One row of hits: the first (`at`) and last time, how many, whether a machine made them."""
    return {"at": privacy.iso(event.created_at), "last_at": privacy.iso(event.last_at), "count": event.hits,
            "automatic": event.machine}


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
