"""The public newsletter archive, the web version each mail links to, and the archive's Atom feed."""
import re
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone

import pytest

from core.extensions import db
from directory.models import District
from newsletter import jobs, services, webversion
from newsletter.models import Newsletter
from tests.signin import sign_in_client

ATOM = "{http://www.w3.org/2005/Atom}"
BODY = (
    "Guten Tag {{ name }},\n\n"
    "hier sind die **Neuigkeiten** für {{ municipality }}. Die E-Rechnung kommt auch nach {{ municipality }}.\n\n"
    "Mehr dazu auf [der Seite des Landes](https://www.service-bw.de/e-rechnung).\n\n"
    "[Einstellungen ändern]({{ preferences_url }}) · [Abmelden]({{ unsubscribe_url }})\n"
)


def _send(newsletter, run_jobs):
    services.send_now(newsletter)
    db.session.commit()
    jobs.enqueue_senders(newsletter.id)
    run_jobs()


def _path(url):
    return re.sub(r"^https?://[^/]+", "", url)


def _switch(client, newsletter, on):
    data = {"published_in_archive": "y"} if on else {}
    response = client.post(f"/d/{newsletter.district_key}/newsletters/{newsletter.id}/publish", data=data)
    assert response.status_code == 302
    return response


def _feed_titles(client, key="08115"):
    response = client.get(f"/d/{key}/newsletters.atom")
    assert response.status_code == 200 and response.mimetype == "application/atom+xml"
    root = ET.fromstring(response.get_data())
    assert root.tag == f"{ATOM}feed"
    return [entry.findtext(f"{ATOM}title") for entry in root.findall(f"{ATOM}entry")], root


@pytest.fixture
def archive_client(two_districts, make_user, smtp_app):
    # smtp_app last: its app context is the current one, so the jobs send to the test server.
    client = smtp_app.test_client()
    sign_in_client(client, make_user("koordination@lrabb.de", districts=("08115",)))
    return client


def test_the_web_version_is_written_for_nobody_and_shown_only_when_published(
        archive_client, make_subscriber, smtp_server, run_jobs):
    client = archive_client
    make_subscriber("anna@boeblingen.de", name="Anna Alt", ags="08115045")
    district = db.session.get(District, "08115")
    newsletter = services.create_newsletter(district, "Neues für {{ name }} aus {{ municipality }}", BODY, tracking=True)
    db.session.commit()
    _send(newsletter, run_jobs)

    # The mail is personal and tracked; it has no link to a web version that is not published.
    mail = smtp_server.wait_for(1)[0]
    html_part = mail.get_body(("html",)).get_content()
    text_part = mail.get_body(("plain",)).get_content()
    assert "Guten Tag Anna Alt," in html_part and "für Sindelfingen, Stadt" in html_part
    assert "/t/o/" in html_part and "/t/c/" in html_part
    assert "Im Browser ansehen" not in html_part and "Im Browser ansehen" not in text_part

    # Sent but not published: nowhere to be seen.
    assert client.get(f"/d/08115/newsletters/{newsletter.id}").status_code == 404
    assert "Neues für" not in client.get("/d/08115/newsletters").get_data(as_text=True)
    assert _feed_titles(client)[0] == []

    _switch(client, newsletter, on=True)
    detail = client.get(f"/d/08115/newsletters/{newsletter.id}/manage").get_data(as_text=True)
    assert "Aus dem Archiv nehmen" in detail and f'href="/d/08115/newsletters/{newsletter.id}"' in detail

    page = client.get(f"/d/08115/newsletters/{newsletter.id}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    # Neutral words instead of empty placeholders.
    assert "Guten Tag," in html and "Guten Tag ," not in html
    assert "<strong>Neuigkeiten</strong> für Ihre Gemeinde." in html and "auch nach Ihrer Gemeinde." in html
    assert "Neues für Sie aus Ihrer Gemeinde" in html
    assert not re.search(r"für\s*[.<,]", html) and "XNAMEX" not in html and "{{" not in html
    # No one's data, no personal links, no tracking, no dead links.
    assert "Anna" not in html and "anna@" not in html and "Sindelfingen" not in html
    for trace in ("/t/o/", "/t/c/", "/unsubscribe/", "/preferences/", "about:", "Im Browser ansehen"):
        assert trace not in html
    assert 'href="#"' not in html and 'href=""' not in html
    assert "Einstellungen ändern · Abmelden" in html  # the coordinator's words stay, without the links
    assert 'href="https://www.service-bw.de/e-rechnung"' in html
    # In the site's layout: <main>, the language, a way back, the subscribe link, the feed.
    assert re.search(r'<html lang="de">', html) and '<article class="web-version" lang="de"' in html
    assert '<main id="main"' in html and html.count("<h1") == 1
    assert 'href="/d/08115/newsletters">Zurück zum Newsletter-Archiv' in html
    assert 'href="/d/08115/subscribe"' in html
    assert 'rel="alternate" type="application/atom+xml" href="/d/08115/newsletters.atom"' in html
    # The page keeps a policy without inline styles or scripts; the content carries no style attribute.
    policy = page.headers["Content-Security-Policy"]
    assert "'unsafe-inline'" not in policy and "default-src 'self'" in policy
    assert "style=" not in html and "<script" not in html

    index = client.get("/d/08115/newsletters").get_data(as_text=True)
    assert "Neues für Sie aus Ihrer Gemeinde" in index
    assert _feed_titles(client)[0] == ["Neues für Sie aus Ihrer Gemeinde"]

    # Switched off after sending: gone again, from the page, the index and the feed.
    _switch(client, newsletter, on=False)
    assert client.get(f"/d/08115/newsletters/{newsletter.id}").status_code == 404
    assert "Neues für" not in client.get("/d/08115/newsletters").get_data(as_text=True)
    assert _feed_titles(client)[0] == []


def test_a_published_newsletter_links_its_web_version_from_the_mail(archive_client, make_subscriber, smtp_server,
                                                                    run_jobs):
    make_subscriber("anna@boeblingen.de", name="Anna Alt")
    district = db.session.get(District, "08115")
    newsletter = services.create_newsletter(district, "Neues zur E-Rechnung", "Hallo {{ name }}, die **E-Rechnung** kommt.",
                                            published_in_archive=True)
    db.session.commit()
    _send(newsletter, run_jobs)
    mail = smtp_server.wait_for(1)[0]
    web = re.search(r"https?://[^\s\"]+/d/08115/newsletters/\d+", mail.get_body(("plain",)).get_content()).group(0)
    html = archive_client.get(_path(web)).get_data(as_text=True)
    assert "Hallo, die <strong>E-Rechnung</strong> kommt." in html and "Anna" not in html


def _sent(district, subject, body="Inhalt", days_ago=0, published=True):
    newsletter = services.create_newsletter(district, subject, body, published_in_archive=published)
    newsletter.status = "sent"
    newsletter.started_at = datetime.now(timezone.utc) - timedelta(days=days_ago)
    db.session.commit()
    return newsletter


def test_the_archive_lists_newest_first_searches_and_feeds(client, two_districts):
    boeblingen, esslingen = two_districts
    old = _sent(boeblingen, "Rückblick Onlinezugangsgesetz", "Das OZG im Rückblick.", days_ago=30)
    new = _sent(boeblingen, "Neues zur E-Rechnung", "Die X-Rechnung kommt.", days_ago=1)
    middle = _sent(boeblingen, "Sprechstunden im Frühjahr", "Termine für die Sprechstunde.", days_ago=10)
    _sent(boeblingen, "Nicht veröffentlicht", "Geheim", days_ago=2, published=False)
    _sent(esslingen, "Esslinger Neuigkeiten", days_ago=0)

    index = client.get("/d/08115/newsletters").get_data(as_text=True)
    positions = [index.index(item.subject) for item in (new, middle, old)]
    assert positions == sorted(positions)
    assert "Nicht veröffentlicht" not in index and "Esslinger" not in index
    assert '<main id="main"' in index and 'type="application/atom+xml"' in index

    # Search by subject and by text, ignoring case; nothing unpublished is ever found.
    found = client.get("/d/08115/newsletters?q=e-rechnung").get_data(as_text=True)
    assert "Neues zur E-Rechnung" in found and "Rückblick" not in found and "Sprechstunden im" not in found
    found = client.get("/d/08115/newsletters?q=ozg").get_data(as_text=True)
    assert "Rückblick Onlinezugangsgesetz" in found and "E-Rechnung" not in found
    assert "Nicht veröffentlicht" not in client.get("/d/08115/newsletters?q=geheim").get_data(as_text=True)
    nothing = client.get("/d/08115/newsletters?q=%25_%5C")
    assert nothing.status_code == 200 and "Kein Newsletter passt zur Suche." in nothing.get_data(as_text=True)

    titles, feed = _feed_titles(client)
    assert titles == [new.subject, middle.subject, old.subject]
    assert feed.find(f"{ATOM}link[@rel='self']").get("href").endswith("/d/08115/newsletters.atom")
    entry = feed.find(f"{ATOM}entry")
    assert entry.find(f"{ATOM}link").get("href").endswith(f"/d/08115/newsletters/{new.id}")
    assert "X-Rechnung" in entry.findtext(f"{ATOM}content")
    assert _feed_titles(client, "08116")[0] == ["Esslinger Neuigkeiten"]
    assert client.get("/d/99999/newsletters.atom").status_code == 404


def test_the_archive_pages(client, two_districts):
    boeblingen, _ = two_districts
    for number in range(23):
        _sent(boeblingen, f"Ausgabe {number:02d}", days_ago=30 - number)
    first = client.get("/d/08115/newsletters").get_data(as_text=True)
    assert "Ausgabe 22" in first and "Ausgabe 02" not in first and "Seite 1 von 2" in first
    second = client.get("/d/08115/newsletters?page=2").get_data(as_text=True)
    assert "Ausgabe 02" in second and "Ausgabe 22" not in second
    assert client.get("/d/08115/newsletters?page=99999999999").status_code == 200


def test_forged_ids_and_other_districts_answer_404(client, two_districts):
    boeblingen, esslingen = two_districts
    published = _sent(boeblingen, "Öffentlich")
    hidden = _sent(boeblingen, "Verborgen", published=False)
    draft = services.create_newsletter(boeblingen, "Entwurf", "Noch nicht fertig", published_in_archive=True)
    db.session.commit()
    assert client.get(f"/d/08115/newsletters/{published.id}").status_code == 200
    assert client.get(f"/d/08116/newsletters/{published.id}").status_code == 404
    assert client.get(f"/d/08115/newsletters/{hidden.id}").status_code == 404
    assert client.get(f"/d/08115/newsletters/{draft.id}").status_code == 404
    assert client.get("/d/08115/newsletters/999999").status_code == 404
    assert client.get("/d/08115/newsletters/99999999999").status_code == 404
    assert client.get("/d/99999/newsletters").status_code == 404
    feed = client.get("/d/08115/newsletters.atom").get_data(as_text=True)
    assert "Verborgen" not in feed and "Entwurf" not in feed and "Öffentlich" in feed


def test_only_an_editor_of_the_district_switches_the_archive(client, two_districts, make_user, sign_in):
    boeblingen, _ = two_districts
    newsletter = _sent(boeblingen, "Zum Schalten", published=False)
    sign_in(make_user("koordination@esslingen.de", districts=("08116",)))
    assert client.post(f"/d/08115/newsletters/{newsletter.id}/publish", data={"published_in_archive": "y"}).status_code == 404
    sign_in(make_user("viewer@lrabb.de", role="viewer", districts=("08115",)))
    assert client.post(f"/d/08115/newsletters/{newsletter.id}/publish", data={"published_in_archive": "y"}).status_code == 403
    db.session.refresh(newsletter)
    assert newsletter.published_in_archive is False


def test_compose_offers_the_archive_switch_off_by_default(client, two_districts, make_user, sign_in):
    sign_in(make_user())
    page = client.get("/d/08115/newsletters/new").get_data(as_text=True)
    checkbox = re.search(r'<input[^>]*name="published_in_archive"[^>]*>', page).group(0)
    assert "checked" not in checkbox and 'for="published_in_archive"' in page
    response = client.post("/d/08115/newsletters/new", data={
        "subject": "Mit Archiv", "body_format": "markdown", "body": "Text", "published_in_archive": "y",
    })
    assert response.status_code == 302
    assert db.session.execute(db.select(Newsletter).filter_by(subject="Mit Archiv")).scalar_one().published_in_archive


@pytest.mark.parametrize("source, expected", [
    ("Guten Tag {{ name }},", "Guten Tag,"),
    ("Hallo <strong>{{ name }}</strong>, willkommen", "Hallo<strong></strong>, willkommen"),
    ("Liebe/r {{ name }},", "Guten Tag,"),
    ("Sehr geehrte Frau {{ name }},", "Guten Tag,"),
    ("Danke, {{ name }}!", "Danke!"),
    ("{{ name }}, schön, dass Sie dabei sind.", "schön, dass Sie dabei sind."),
    ("Neues für {{ name }}", "Neues für Sie"),
    ("Neues für {{ municipality }}", "Neues für Ihre Gemeinde"),
    ("Grüße aus {{ municipality }} und in {{ municipality }}", "Grüße aus Ihrer Gemeinde und in Ihrer Gemeinde"),
    ("{{ municipality }} ist dabei.", "Ihre Gemeinde ist dabei."),
    ("Diese Mail ging an {{ email }}.", "Diese Mail ging an Ihre E-Mail-Adresse."),
])
def test_placeholders_become_neutral_words(app, source, expected):
    rendered = webversion._render(source, True)
    assert webversion.neutral(rendered) == expected


def test_mjml_content_is_sanitised_and_keeps_no_styles(app, two_districts):
    boeblingen, _ = two_districts
    body = ('<mj-section><mj-column><mj-text color="#ff0000">Hallo {{ name }}, '
            '<a href="{{ web_url }}">im Browser</a></mj-text>'
            '<mj-raw><script>alert(1)</script><img src="x" onerror="alert(2)" alt="Bild"></mj-raw>'
            '</mj-column></mj-section>')
    newsletter = _sent(boeblingen, "MJML", body=body)
    newsletter.body_format = "mjml"
    html = webversion.content_html(newsletter)
    assert "Hallo, im Browser" in html.replace("\n", "")
    assert "<script" not in html and "onerror" not in html and "style=" not in html and "<a " not in html
    assert 'role="presentation"' in html
