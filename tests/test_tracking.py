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
    assert [(e.kind, e.machine) for e in events()] == [("click", False)] * 4 + [("open", False)]


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
    assert [(e.kind, e.machine) for e in events()] == [("open", True), ("open", True)]


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
