"""Opens and clicks: link rewriting, the pixel and the redirect, forged tokens,
machine opens, reach figures, and the data-protection hooks."""
import re
from datetime import timedelta
from urllib.parse import urlsplit

import jinja2
import pytest
from sqlalchemy import func, select

from core.extensions import db
from core.tokens import PURPOSES, make_token
from newsletter import tracking
from newsletter.models import Delivery, Link, Newsletter, TrackingEvent
from subscribers import privacy
from subscribers.models import utcnow

FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0"
GMAIL_PROXY = "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
YAHOO_PROXY = "YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html"
APPLE_MPP = "Mozilla/5.0"

SAMPLE = """<!doctype html>
<html><head><link href="https://fonts.googleapis.com/css?family=Ubuntu" rel="stylesheet"></head>
<body><div>
<a href="https://example.org/a?x=1&amp;y=2" target="_blank">A</a>
<a class="button" href='http://example.org/b'>B</a>
<a href="https://example.org/a?x=1&amp;y=2">A again</a>
<a href=https://example.org/c?d=1>C unquoted</a>
<a href="mailto:info@lrabb.de">mail</a>
<a href="tel:+497031663">phone</a>
<a href="#top">top</a>
<a href="{{ unsubscribe_url }}">Abmelden</a>
<a href="https://example.org/m?ags={{ municipality_ags }}">personal</a>
<a data-href="https://example.org/not-a-link" title="href=https://example.org/neither">x</a>
</div></body></html>"""


@pytest.fixture
def world(two_districts, make_subscriber):
    """A sent Böblingen newsletter with three deliveries (two municipalities) and one link."""
    anna = make_subscriber("anna@boeblingen.de", ags="08115003")
    bert = make_subscriber("bert@boeblingen.de", ags="08115003", name="Bert")
    carla = make_subscriber("carla@sindelfingen.de", ags="08115045", name="Carla")
    newsletter = make_newsletter()
    deliveries = [make_delivery(newsletter, s) for s in (anna, bert, carla)]
    link = Link(newsletter_id=newsletter.id, district_key="08115", url="https://www.service-bw.de/?a=1&b=2")
    db.session.add(link)
    db.session.commit()
    return {"newsletter": newsletter, "deliveries": deliveries, "link": link,
            "subscribers": (anna, bert, carla)}


def make_newsletter(district_key="08115", subject="Neues aus dem Kreis"):
    newsletter = Newsletter(district_key=district_key, subject=subject, body="Hallo", status="sent", tracking=True)
    db.session.add(newsletter)
    db.session.flush()
    return newsletter


def make_delivery(newsletter, subscriber, status="sent", sent_ago=timedelta(hours=1)):
    delivery = Delivery(
        newsletter=newsletter, subscriber_id=subscriber.id, district_key=subscriber.district_key,
        municipality_ags=subscriber.municipality_ags, status=status, attempts=1,
        sent_at=utcnow() - sent_ago if status == "sent" else None,
        smtp_reply=f"250 2.0.0 Ok: queued <{subscriber.email}>" if status == "sent" else "",
        message_id=f"<nl{newsletter.id}.{subscriber.id}.{subscriber.email.replace('@', '=')}@lrabb.de>",
    )
    db.session.add(delivery)
    db.session.commit()
    return delivery


def urls_for(delivery):
    return tracking.tracking_context(delivery.id)


def path(url):
    return urlsplit(url).path


def events():
    db.session.expire_all()
    return db.session.scalars(select(TrackingEvent).order_by(TrackingEvent.id)).all()


def open_pixel(client, delivery, user_agent=FIREFOX):
    return client.get(path(urls_for(delivery)["open_url"]), headers={"User-Agent": user_agent})


def click(client, delivery, link_id, user_agent=FIREFOX):
    return client.get(path(urls_for(delivery)["click_base"]) + f"/{link_id}", headers={"User-Agent": user_agent})


# --- rewriting -------------------------------------------------------------------


def test_rewrite_links_tracks_http_links_once_and_leaves_the_rest(two_districts):
    newsletter = make_newsletter()
    html = tracking.rewrite_links(newsletter, SAMPLE)
    links = {link.url: link.id for link in db.session.scalars(select(Link).filter_by(newsletter_id=newsletter.id))}
    assert set(links) == {"https://example.org/a?x=1&y=2", "http://example.org/b", "https://example.org/c?d=1"}
    a, b, c = links["https://example.org/a?x=1&y=2"], links["http://example.org/b"], links["https://example.org/c?d=1"]
    assert html.count('href="{{ click_base }}/%d"' % a) == 2
    assert "href='{{ click_base }}/%d'" % b in html
    assert 'href="{{ click_base }}/%d"' % c in html
    for untouched in ('href="mailto:info@lrabb.de"', 'href="tel:+497031663"', 'href="#top"',
                      'href="{{ unsubscribe_url }}"', 'href="https://example.org/m?ags={{ municipality_ags }}"',
                      '<link href="https://fonts.googleapis.com/css?family=Ubuntu"',
                      'data-href="https://example.org/not-a-link" title="href=https://example.org/neither"'):
        assert untouched in html
    assert "example.org/a" not in html and "example.org/b" not in html
    assert html.endswith(tracking.OPEN_PIXEL + "</body></html>")
    assert html.count("{{ open_url }}") == 1

    # Compiling again reuses the rows and adds no second pixel.
    again = tracking.rewrite_links(newsletter, SAMPLE)
    assert again == html
    assert tracking.rewrite_links(newsletter, html) == html
    assert db.session.scalar(select(func.count()).select_from(Link).filter_by(newsletter_id=newsletter.id)) == 3


def test_rewrite_links_without_body_appends_the_pixel(two_districts):
    newsletter = make_newsletter()
    html = tracking.rewrite_links(newsletter, '<p><a href="https://example.org/">x</a></p>')
    assert html.endswith(tracking.OPEN_PIXEL)


def test_rewritten_mail_rendered_per_recipient_leads_to_the_stored_targets(client, world):
    delivery = world["deliveries"][0]
    newsletter = world["newsletter"]
    html = tracking.rewrite_links(newsletter, SAMPLE)
    db.session.commit()
    rendered = jinja2.Environment(autoescape=True).from_string(html).render(
        unsubscribe_url="http://localhost/unsubscribe/x", municipality_ags="08115003",
        **tracking.tracking_context(delivery.id, "http://localhost/"),
    )
    hrefs = re.findall(r"""href=["']?(http://localhost/t/c/[^"'\s>]+)""", rendered)
    assert len(hrefs) == 4
    targets = []
    for href in hrefs:
        response = client.get(path(href), headers={"User-Agent": FIREFOX})
        assert response.status_code == 302
        assert response.headers["Cache-Control"] == "no-store"
        targets.append(response.headers["Location"])
    assert targets == ["https://example.org/a?x=1&y=2", "http://example.org/b", "https://example.org/a?x=1&y=2",
                       "https://example.org/c?d=1"]
    pixel = re.search(r'<img src="(http://localhost/t/o/[^"]+\.gif)"', rendered).group(1)
    assert client.get(path(pixel), headers={"User-Agent": FIREFOX}).status_code == 200
    # The link that appears twice was clicked twice: one row, two hits.
    assert [(e.kind, e.machine, e.hits) for e in events()] == [("click", False, 2), ("click", False, 1),
                                                                ("click", False, 1), ("open", False, 1)]


def test_tracking_context_matches_the_routes(app, world):
    delivery = world["deliveries"][0]
    context = tracking.tracking_context(delivery.id)
    token = make_token("delivery-tracking", delivery.id)
    assert context == {"open_url": f"http://localhost/t/o/{token}.gif", "click_base": f"http://localhost/t/c/{token}"}
    assert tracking.delivery_id_from(token) == delivery.id


def test_a_test_mails_links_work_and_count_nothing(client, world):
    newsletter = world["newsletter"]
    other = make_newsletter(subject="Anderer")
    foreign = Link(newsletter_id=other.id, district_key="08115", url="https://evil.example/")
    db.session.add(foreign)
    db.session.commit()
    context = tracking.tracking_context_for_test_send(newsletter.id)
    pixel = client.get(path(context["open_url"]), headers={"User-Agent": FIREFOX})
    assert pixel.status_code == 200 and pixel.mimetype == "image/gif"
    response = client.get(path(context["click_base"]) + f"/{world['link'].id}")
    assert response.status_code == 302 and response.headers["Location"] == world["link"].url
    assert client.get(path(context["click_base"]) + f"/{foreign.id}").status_code == 404
    assert tracking.delivery_id_from(path(context["open_url"]).split("/")[-1][:-4]) is None
    assert events() == []


# --- opens -----------------------------------------------------------------------


def test_open_pixel_records_a_human_open(client, world):
    delivery = world["deliveries"][0]
    response = open_pixel(client, delivery)
    assert response.status_code == 200
    assert response.mimetype == "image/gif"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.data.startswith(b"GIF89a") and response.data[6:10] == b"\x01\x00\x01\x00"
    [event] = events()
    assert (event.delivery_id, event.kind, event.machine, event.district_key) == (delivery.id, "open", False, "08115")
    assert "Set-Cookie" not in response.headers


def test_an_open_right_after_sending_is_a_machine_open(client, world, make_subscriber):
    fresh = make_delivery(world["newsletter"], make_subscriber("dora@boeblingen.de"), sent_ago=timedelta(0))
    open_pixel(client, fresh)
    open_pixel(client, fresh)
    assert [(e.kind, e.machine, e.hits) for e in events()] == [("open", True, 2)]


def test_the_machine_window_is_configurable(make_app, two_districts, make_subscriber):
    app = make_app(MACHINE_OPEN_SECONDS=7200)
    with app.app_context():
        newsletter = make_newsletter()
        delivery = make_delivery(newsletter, make_subscriber("emil@boeblingen.de"))
        assert open_pixel(app.test_client(), delivery).status_code == 200
        assert [e.machine for e in events()] == [True]


@pytest.mark.parametrize("user_agent", [GMAIL_PROXY, YAHOO_PROXY, APPLE_MPP, "", "python-requests/2.32",
                                        "Mozilla/5.0 (compatible; BingPreview/1.0b)", "Barracuda Sentinel (EE)"])
def test_proxy_and_scanner_user_agents_are_machine_opens(client, world, user_agent):
    open_pixel(client, world["deliveries"][0], user_agent)
    assert [(e.kind, e.machine) for e in events()] == [("open", True)]


def test_a_head_request_is_a_machine_open(client, world):
    path_ = path(urls_for(world["deliveries"][0])["open_url"])
    assert client.head(path_, headers={"User-Agent": FIREFOX}).status_code == 200
    assert [e.machine for e in events()] == [True]


def test_opens_are_recorded_for_any_signed_in_user(client, world, make_user, sign_in):
    # A reader signed in as coordinator of another district is no obstacle: the token decides.
    sign_in(make_user("koordination@lra-es.de", districts=("08116",)))
    assert open_pixel(client, world["deliveries"][0]).status_code == 200
    assert click(client, world["deliveries"][0], world["link"].id).status_code == 302
    assert len(events()) == 2


def test_an_erased_subscribers_delivery_still_counts_anonymously(client, world):
    anna = world["subscribers"][0]
    delivery = world["deliveries"][0]
    privacy.erase_subscriber(anna)
    db.session.commit()
    assert open_pixel(client, delivery).status_code == 200
    assert click(client, delivery, world["link"].id).status_code == 302
    assert [(e.delivery_id, e.kind, e.machine) for e in events()] == [(delivery.id, "open", False),
                                                                      (delivery.id, "click", False)]


# --- clicks ----------------------------------------------------------------------


def test_click_redirects_to_the_stored_url(client, world):
    delivery = world["deliveries"][1]
    response = click(client, delivery, world["link"].id)
    assert response.status_code == 302
    assert response.headers["Location"] == "https://www.service-bw.de/?a=1&b=2"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    [event] = events()
    assert (event.delivery_id, event.kind, event.link_id, event.machine) == (delivery.id, "click", world["link"].id,
                                                                              False)


def test_clicks_of_scanners_and_right_after_sending_are_machine_clicks(client, world, make_subscriber):
    fresh = make_delivery(world["newsletter"], make_subscriber("dora@boeblingen.de"), sent_ago=timedelta(seconds=1))
    assert click(client, fresh, world["link"].id).status_code == 302
    scanned = click(client, world["deliveries"][0], world["link"].id, "Microsoft Office Existence Discovery")
    assert scanned.status_code == 302
    assert [e.machine for e in events()] == [True, True]


def test_click_with_a_link_of_another_newsletter_is_404(client, world, make_subscriber):
    other = make_newsletter(subject="Anderer Newsletter")
    foreign = Link(newsletter_id=other.id, district_key="08115", url="https://evil.example/")
    esslingen = make_newsletter("08116", "Esslingen")
    foreign_district = Link(newsletter_id=esslingen.id, district_key="08116", url="https://evil.example/es")
    db.session.add_all([foreign, foreign_district])
    db.session.commit()
    delivery = world["deliveries"][0]
    for link_id in (foreign.id, foreign_district.id, foreign_district.id + 1000, 0, 2**31, 10**30):
        response = click(client, delivery, link_id)
        assert response.status_code == 404, link_id
        assert "evil" not in response.headers.get("Location", "")
    # The target can not be given in the request.
    base = path(urls_for(delivery)["click_base"])
    for attempt in (f"{base}/{world['link'].id}?url=https://evil.example/", f"{base}/https://evil.example/",
                    f"{base}/-1", f"{base}/{world['link'].id}/../../evil"):
        response = client.get(attempt, headers={"User-Agent": FIREFOX})
        assert "evil" not in response.headers.get("Location", ""), attempt
    assert [e.link_id for e in events()] == [world["link"].id]  # only the ?url= one, to the stored target


# --- forged tokens ---------------------------------------------------------------


def forged_tokens(app, delivery_id):
    """At least fifty tokens that must not identify a delivery."""
    good = make_token("delivery-tracking", delivery_id)
    tokens = [good[:n] for n in (0, 1, 5, 10, len(good) // 2, len(good) - 10, len(good) - 2, len(good) - 1)]
    tokens += [good[:i] + ("A" if good[i] != "A" else "B") + good[i + 1:] for i in range(0, len(good), 2)][:12]
    tokens += [good + "x", good + ".", "." + good, good.replace(".", ""), good.upper(), good.lower(), "..", "a.b.c",
               "x" * 600, good.split(".")[0]]
    for purpose in PURPOSES:
        if purpose != "delivery-tracking":
            tokens += [make_token(purpose, delivery_id), make_token(purpose, {"s": "x", "n": "y"}),
                       make_token(purpose, str(delivery_id))]
    # Genuine signatures on payloads that are no delivery id.
    tokens += [make_token("delivery-tracking", payload)
               for payload in (str(delivery_id), True, -delivery_id, 0, 2**31, 10**20, [delivery_id],
                               {"d": delivery_id}, None, delivery_id + 100000, {"test": str(delivery_id)},
                               {"test": delivery_id, "d": 1})]
    # Signed with another secret key.
    original = app.config["SECRET_KEY"]
    app.config["SECRET_KEY"] = "another-secret"
    try:
        tokens += [make_token("delivery-tracking", delivery_id)]
    finally:
        app.config["SECRET_KEY"] = original
    return [t for t in dict.fromkeys(tokens) if t != good]


def test_forged_truncated_and_cross_purpose_tokens_are_404_and_record_nothing(app, client, world):
    delivery = world["deliveries"][0]
    link_id = world["link"].id
    tokens = forged_tokens(app, delivery.id)
    assert len(tokens) >= 50
    for token in tokens:
        for url in (f"/t/o/{token}.gif", f"/t/c/{token}/{link_id}"):
            response = client.get(url, headers={"User-Agent": FIREFOX})
            assert response.status_code == 404, (url, response.status_code)
            assert "Location" not in response.headers
    assert events() == []


# --- bounded counting ------------------------------------------------------------

UNLIMITED = {"TRACKING_TOKEN_HITS_PER_WINDOW": 10**9, "TRACKING_ADDRESS_RATE_LIMIT": ""}


def rows_and_hits(delivery_id=None):
    """{(kind, link id, machine): (rows, hits)} of one delivery (or all)."""
    db.session.expire_all()
    query = select(TrackingEvent.kind, TrackingEvent.link_id, TrackingEvent.machine, func.count(),
                   func.sum(TrackingEvent.hits))
    if delivery_id is not None:
        query = query.where(TrackingEvent.delivery_id == delivery_id)
    rows = db.session.execute(
        query.group_by(TrackingEvent.kind, TrackingEvent.link_id, TrackingEvent.machine)
    ).all()
    return {(kind, link_id, machine): (count, hits) for kind, link_id, machine, count, hits in rows}


def test_ten_thousand_pixel_hits_on_one_token_add_a_handful_of_rows(make_app, two_districts, make_subscriber):
    app = make_app(**UNLIMITED)
    with app.app_context():
        newsletter = make_newsletter()
        delivery = make_delivery(newsletter, make_subscriber("anna@boeblingen.de", ags="08115003"))
        other = make_delivery(newsletter, make_subscriber("bert@boeblingen.de", ags="08115003"))
        client = app.test_client()
        pixel = path(urls_for(delivery)["open_url"])
        for n in range(10_000):
            # A reader's mail client and Gmail's image proxy, both fetching again and again.
            response = client.get(pixel, headers={"User-Agent": GMAIL_PROXY if n % 4 == 0 else FIREFOX})
            assert response.status_code == 200
        counted = rows_and_hits(delivery_id=delivery.id)
        # One row per identity and window; a window boundary during the run may add one.
        assert set(counted) == {("open", None, False), ("open", None, True)}
        assert all(rows <= 2 for rows, _hits in counted.values())
        assert counted[("open", None, False)][1] == 7_500 and counted[("open", None, True)][1] == 2_500
        open_pixel(client, other, APPLE_MPP)
        stats = tracking.newsletter_stats(newsletter)
        assert (stats["opens_human"], stats["opens_machine"]) == (1, 1)
        assert stats["municipalities_opened"] == 1


def test_repeated_clicks_count_on_one_row_per_link(make_app, two_districts, make_subscriber):
    app = make_app(**UNLIMITED)
    with app.app_context():
        newsletter = make_newsletter()
        delivery = make_delivery(newsletter, make_subscriber("anna@boeblingen.de", ags="08115003"))
        first, second = (Link(newsletter_id=newsletter.id, district_key="08115", url=f"https://example.org/{n}")
                         for n in (1, 2))
        db.session.add_all([first, second])
        db.session.commit()
        client = app.test_client()
        for n in range(1_500):
            link = first if n % 3 else second
            agent = "Microsoft Office Existence Discovery" if n % 5 == 0 else FIREFOX
            response = click(client, delivery, link.id, agent)
            assert response.status_code == 302 and response.headers["Location"] == link.url
        counted = rows_and_hits(delivery_id=delivery.id)
        assert set(counted) == {("click", first.id, False), ("click", first.id, True),
                                ("click", second.id, False), ("click", second.id, True)}
        assert all(rows <= 2 for rows, _hits in counted.values())
        assert sum(hits for _rows, hits in counted.values()) == 1_500
        human = sum(hits for (_kind, _link, machine), (_rows, hits) in counted.items() if not machine)
        stats = tracking.newsletter_stats(newsletter)
        assert (stats["clicks"], stats["clicks_total"], stats["clicks_machine"]) == (1, human, 1_500 - human)
        assert (stats["opens_human"], stats["opens_machine"]) == (1, 0)


def test_a_machine_and_a_reader_of_one_delivery_stay_apart(client, world, make_subscriber):
    fresh = make_delivery(world["newsletter"], make_subscriber("dora@boeblingen.de"), sent_ago=timedelta(0))
    open_pixel(client, fresh)                     # too soon: a machine
    open_pixel(client, world["deliveries"][0])   # a reader
    open_pixel(client, world["deliveries"][0], GMAIL_PROXY)
    open_pixel(client, world["deliveries"][0])
    assert [(e.delivery_id, e.machine, e.hits) for e in events()] == [
        (fresh.id, True, 1), (world["deliveries"][0].id, False, 2), (world["deliveries"][0].id, True, 1)]


def test_a_new_window_starts_a_new_row_and_reach_counts_each_day(client, world, monkeypatch):
    delivery = world["deliveries"][0]
    start = utcnow().replace(hour=10, minute=0, second=0, microsecond=0)  # noon in Berlin: same day for hours
    for minutes in (0, 1, 59, 60, 61):
        monkeypatch.setattr(tracking, "utcnow", lambda m=minutes: start + timedelta(minutes=m))
        open_pixel(client, delivery)
    assert [(e.hits, e.created_at, e.last_at) for e in events()] == [
        (3, start, start + timedelta(minutes=59)), (2, start + timedelta(minutes=60), start + timedelta(minutes=61))]


@pytest.mark.parametrize("window", [1, 7, 600, 3600, 5000, 86400, 10**9])
def test_a_window_never_spans_two_berlin_days(window):
    from datetime import datetime, timezone
    from zoneinfo import ZoneInfo

    berlin = ZoneInfo("Europe/Berlin")
    for day in ("2026-03-29", "2026-07-01", "2026-10-25", "2026-12-31"):  # DST changes and a year's end
        midnight = datetime.fromisoformat(day + "T00:00:00").replace(tzinfo=berlin).astimezone(timezone.utc)
        assert tracking.hit_bucket(midnight - timedelta(microseconds=1), window) < tracking.hit_bucket(midnight, window)
        noon = datetime.fromisoformat(day + "T12:00:00").replace(tzinfo=berlin).astimezone(timezone.utc)
        if 43200 % window == 0:  # noon starts a window
            at_noon = tracking.hit_bucket(noon, window)
            assert tracking.hit_bucket(noon - timedelta(seconds=1), window) < at_noon
            assert tracking.hit_bucket(noon + timedelta(seconds=window - 1), window) == at_noon
            assert tracking.hit_bucket(noon + timedelta(seconds=window), window) > at_noon
        if window >= 86400:  # one window a day, also on a 23-hour day
            assert tracking.hit_bucket(midnight + timedelta(hours=22, minutes=59), window) == tracking.hit_bucket(
                midnight, window)


def test_a_counted_request_sends_one_statement(client, world):
    from sqlalchemy import event

    statements = []

    def remember(_conn, _cursor, statement, *_args):
        statements.append(statement)

    urls = urls_for(world["deliveries"][0])
    pixel, link = path(urls["open_url"]), path(urls["click_base"]) + f"/{world['link'].id}"
    event.listen(db.engine, "before_cursor_execute", remember)
    try:
        for _ in range(3):
            statements.clear()
            assert client.get(pixel, headers={"User-Agent": FIREFOX}).status_code == 200
            assert len(statements) == 1 and "INSERT INTO tracking_events" in statements[0], statements
            statements.clear()
            assert client.get(link, headers={"User-Agent": FIREFOX}).status_code == 302
            assert len(statements) == 1 and "INSERT INTO tracking_events" in statements[0], statements
    finally:
        event.remove(db.engine, "before_cursor_execute", remember)
    assert [(e.kind, e.hits) for e in events()] == [("open", 3), ("click", 3)]


# --- rate limits -------------------------------------------------------------------


def test_beyond_the_token_limit_the_pixel_and_redirect_answer_but_count_nothing(make_app, two_districts,
                                                                                  make_subscriber):
    app = make_app(TRACKING_TOKEN_HITS_PER_WINDOW=3, TRACKING_ADDRESS_RATE_LIMIT="")
    with app.app_context():
        newsletter = make_newsletter()
        anna = make_delivery(newsletter, make_subscriber("anna@boeblingen.de"))
        bert = make_delivery(newsletter, make_subscriber("bert@boeblingen.de"))
        link = Link(newsletter_id=newsletter.id, district_key="08115", url="https://example.org/ziel")
        other = make_newsletter(subject="Anderer")
        foreign = Link(newsletter_id=other.id, district_key="08115", url="https://evil.example/")
        db.session.add_all([link, foreign])
        db.session.commit()
        client = app.test_client()
        for _ in range(5):
            response = open_pixel(client, anna)
            assert response.status_code == 200 and response.data == tracking.PIXEL
        for _ in range(5):
            response = click(client, anna, link.id)
            assert response.status_code == 302 and response.headers["Location"] == link.url
        # Over the limit the link check still holds.
        assert click(client, anna, foreign.id).status_code == 404
        assert open_pixel(client, bert).status_code == 200  # another token has its own budget
        assert rows_and_hits(anna.id) == {("open", None, False): (1, 3), ("click", link.id, False): (1, 3)}
        assert rows_and_hits(bert.id) == {("open", None, False): (1, 1)}
        # A machine's hits have their own row and budget: a scanner can not use up the reader's.
        assert open_pixel(client, anna, GMAIL_PROXY).status_code == 200
        assert rows_and_hits(anna.id)[("open", None, True)] == (1, 1)


def test_beyond_the_address_limit_nothing_more_is_counted_from_that_address(make_app, two_districts,
                                                                             make_subscriber):
    app = make_app(TRACKING_ADDRESS_RATE_LIMIT="4 per minute")
    with app.app_context():
        newsletter = make_newsletter()
        deliveries = [make_delivery(newsletter, make_subscriber(f"p{n}@boeblingen.de")) for n in range(6)]
        client = app.test_client()
        for delivery in deliveries:
            assert open_pixel(client, delivery).status_code == 200
        other = app.test_client()
        pixel = path(urls_for(deliveries[5])["open_url"])
        assert other.get(pixel, headers={"User-Agent": FIREFOX},
                         environ_base={"REMOTE_ADDR": "192.0.2.7"}).status_code == 200
        assert sum(hits for _rows, hits in rows_and_hits().values()) == 5
        assert [e.delivery_id for e in events()] == [d.id for d in deliveries[:4]] + [deliveries[5].id]


def test_tracking_needs_no_redis(client, world, monkeypatch):
    # The address limit lives in the web process; a Redis outage changes nothing here.
    from redis import Redis
    from redis.exceptions import ConnectionError as RedisConnectionError

    def unreachable(*_args, **_kwargs):
        raise RedisConnectionError("down")

    monkeypatch.setattr(Redis, "execute_command", unreachable)
    assert open_pixel(client, world["deliveries"][0]).status_code == 200
    assert [e.hits for e in events()] == [1]


# --- figures ---------------------------------------------------------------------


def test_newsletter_stats(client, world, make_subscriber):
    newsletter = world["newsletter"]
    anna, bert, carla = world["deliveries"]
    link = world["link"]
    # Two more recipients that were not reached.
    make_delivery(newsletter, make_subscriber("failed@sindelfingen.de", ags="08115045"), status="failed")
    make_delivery(newsletter, make_subscriber("queued@boeblingen.de"), status="queued")

    open_pixel(client, anna)                    # human open
    open_pixel(client, anna, GMAIL_PROXY)       # plus a machine open
    click(client, anna, link.id)                # human click
    click(client, anna, link.id)                # and another one
    open_pixel(client, bert, APPLE_MPP)         # machine only
    click(client, bert, link.id, "Mozilla/5.0 (compatible; BingPreview/1.0b)")  # machine click
    click(client, carla, link.id)               # a click without an open (images blocked)

    stats = tracking.newsletter_stats(newsletter)
    assert stats == {
        "queued": 1, "sending": 0, "sent": 3, "deferred": 0, "failed": 1, "bounced": 0, "suppressed": 0,
        "recipients": 5,
        "opens_human": 2,                  # anna, carla (by her click)
        "opens_machine": 1,                # bert
        "clicks": 2,                       # anna, carla
        "clicks_total": 3,
        "clicks_machine": 1,
        "municipalities_reached": 2,       # Böblingen, Sindelfingen
        "municipalities_opened": 2,
        "district_municipalities": 2,
    }


def test_stats_of_a_newsletter_without_deliveries(two_districts):
    stats = tracking.newsletter_stats(make_newsletter("08116", "Leer"))
    assert stats["recipients"] == 0 and stats["opens_human"] == 0 and stats["opens_machine"] == 0
    assert stats["clicks"] == stats["clicks_total"] == stats["municipalities_reached"] == 0
    assert stats["district_municipalities"] == 2


# --- data-protection rights ------------------------------------------------------


def test_export_lists_the_persons_deliveries_with_opens_and_clicks(client, world):
    anna = world["subscribers"][0]
    delivery = world["deliveries"][0]
    open_pixel(client, delivery)
    click(client, delivery, world["link"].id)
    click(client, world["deliveries"][1], world["link"].id)  # Bert's, not Anna's
    document = privacy.export_subscriber(anna)
    [entry] = document["newsletters"]
    assert entry["newsletter"] == {"id": world["newsletter"].id, "subject": "Neues aus dem Kreis"}
    assert (entry["status"], entry["attempts"]) == ("sent", 1)
    assert entry["sent_at"] == delivery.sent_at.isoformat()
    assert entry["message_id"] == delivery.message_id
    assert entry["opens"]["count"] == 1 and entry["opens"]["events"][0]["automatic"] is False
    assert entry["clicks"]["count"] == 1
    click(client, delivery, world["link"].id)  # again: the same row, two hits
    [entry] = privacy.export_subscriber(anna)["newsletters"]
    assert entry["clicks"]["count"] == 2
    [row] = entry["clicks"]["events"]
    assert row["count"] == 2 and row["at"] <= row["last_at"]
    assert entry["clicks"]["events"][0]["url"] == "https://www.service-bw.de/?a=1&b=2"


def test_erasure_leaves_no_personal_data_in_deliveries(client, world):
    anna = world["subscribers"][0]
    delivery_id = world["deliveries"][0].id
    open_pixel(client, world["deliveries"][0])
    email = anna.email
    privacy.erase_subscriber(anna)
    db.session.commit()
    db.session.expire_all()
    delivery = db.session.get(Delivery, delivery_id)
    assert delivery.subscriber_id is None
    assert delivery.smtp_reply == "" and delivery.message_id is None
    assert (delivery.status, delivery.municipality_ags, delivery.district_key) == ("sent", "08115003", "08115")
    for row in db.session.execute(select(Delivery.__table__)).all():
        assert not any(email in str(value) for value in row)
    # The others keep theirs.
    assert db.session.get(Delivery, world["deliveries"][1].id).message_id is not None
    # The reach stays.
    assert [e.delivery_id for e in events()] == [delivery_id]
    stats = tracking.newsletter_stats(world["newsletter"])
    assert stats["sent"] == 3 and stats["municipalities_reached"] == 2
    assert stats["opens_human"] == 1 and stats["municipalities_opened"] == 1


def test_the_newsletters_section_is_registered_once():
    assert [section for section, _export in privacy._exporters].count("newsletters") == 1


def test_address_windows_count_each_address_per_window():
    from limits import parse

    from newsletter.tracking import AddressWindows

    windows, item = AddressWindows(), parse("2 per minute")
    assert windows.hit(item, "192.0.2.1", now=60.0) and windows.hit(item, "192.0.2.1", now=119.0)
    assert not windows.hit(item, "192.0.2.1", now=119.5)  # the third in the same minute
    assert windows.hit(item, "192.0.2.2", now=119.5)  # another address counts apart
    assert windows.hit(item, "192.0.2.1", now=120.0)  # a new minute starts afresh
