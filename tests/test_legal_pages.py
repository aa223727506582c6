"""Impressum, Datenschutzerklärung, Erklärung zur Barrierefreiheit: the admins'
settings, the public pages, the links in the footer of every page and every
mail (followed, as a visitor would), and the admins' banner while one is missing.
"""
import re
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select

from core.extensions import db
from core.models import Setting
from legal import services as legal

IMPRINT = "https://www.lrabb.de/impressum"
PRIVACY_TEXT = """## Verantwortliche Stelle

Landratsamt Böblingen, Parkstraße 16, 71034 Böblingen.

## Ihre Rechte

Sie können Auskunft verlangen: <script>alert(1)</script> [gefährlich](javascript:alert(1))"""
TITLES = ["Impressum", "Datenschutzerklärung", "Erklärung zur Barrierefreiheit"]
MAIL_TITLES = ["Impressum", "Datenschutz", "Barrierefreiheit"]


def configure(imprint_url=IMPRINT, privacy_text=PRIVACY_TEXT):
    legal.save({"imprint": (imprint_url, ""), "privacy": ("", privacy_text), "accessibility": ("", "")})
    db.session.commit()


def stored():
    return db.session.execute(select(Setting.key, Setting.value).order_by(Setting.key)).all()


def footer_links(html):
    """[(title, href)] of the footer's legal navigation."""
    nav = re.search(r'<ul class="legal-links">(.*?)</ul>', html, re.DOTALL)
    assert nav, "no legal links in the footer"
    return [(title, href.replace("&amp;", "&")) for href, title in re.findall(r'<a href="([^"]+)">([^<]+)</a>', nav.group(1))]


def follow(client, href, title):
    """The link works: the configured external page, or a page of ours answering 200 with the text."""
    if href == IMPRINT:
        return
    parts = urlsplit(href)
    assert parts.netloc in ("", "localhost"), href  # relative on pages, BASE_URL in mails
    response = client.get(parts.path)
    assert response.status_code == 200, (href, response.status_code)
    page = response.get_data(as_text=True)
    assert {"Datenschutz": "Verantwortliche Stelle", "Datenschutzerklärung": "Verantwortliche Stelle",
            "Barrierefreiheit": "Feedback und Kontaktangaben",
            "Erklärung zur Barrierefreiheit": "Feedback und Kontaktangaben"}[title] in page


def check_page(client, path, status=200):
    response = client.get(path)
    assert response.status_code == status, (path, response.status_code)
    links = footer_links(response.get_data(as_text=True))
    assert [title for title, _href in links] == TITLES, path
    assert links[0][1] == IMPRINT
    for title, href in links:
        follow(client, href, title)
    return response


@pytest.fixture
def admin(make_user):
    return make_user("admin@lrabb.de", role="admin", districts=())


@pytest.fixture
def coordinator(make_user):
    return make_user()


# --- the public pages ----------------------------------------------------------------


def test_every_public_page_links_the_three(client, two_districts, make_event, make_user, sign_in):
    configure()
    event = make_event()
    for path in ["/login", "/d/08115/subscribe", "/d/08115/subscribe/check-inbox", "/d/08115/veranstaltungen",
                 f"/d/08115/events/{event.id}/anmelden", "/d/08115/newsletters",
                 "/impressum-gibt-es-nicht", "/confirm/kaputt", "/datenschutz", "/barrierefreiheit"]:
        status = 404 if path in ("/impressum-gibt-es-nicht", "/confirm/kaputt") else 200
        check_page(client, path, status)
    assert client.get("/impressum").headers["Location"] == IMPRINT
    # Staff pages and a refusal too.
    sign_in(make_user())
    check_page(client, "/d/08115/")
    check_page(client, "/admin/legal", 403)


def test_mails_and_the_pages_they_lead_to_link_the_three(two_districts, make_subscriber, make_user, make_event,
                                                         smtp_app, smtp_server, run_jobs):
    from datetime import timedelta

    from directory.models import District
    from events import jobs as event_jobs
    from events import services as events
    from newsletter import jobs as newsletter_jobs
    from newsletter import services as newsletters

    configure()
    make_user()
    anna = make_subscriber("anna.beispiel@boeblingen.de", ags="08115003")
    client = smtp_app.test_client()

    newsletter = newsletters.create_newsletter(db.session.get(District, "08115"), "Neues", "Hallo {{ name }}!",
                                               preheader="Kurz gesagt")
    newsletters.send_now(newsletter)
    db.session.commit()
    newsletter_jobs.enqueue_senders(newsletter.id)

    workshop = make_event()
    office_hours = make_event(kind="office_hours")
    for event in (workshop, office_hours):
        events.invite(event)
        db.session.commit()
        event_jobs.enqueue_senders(event.id)
    run_jobs()
    data = events.event_data(workshop)
    data.starts_at += timedelta(hours=1)
    data.ends_at += timedelta(hours=1)
    events.update_event(workshop, data)
    db.session.commit()
    event_jobs.enqueue_senders(workshop.id)
    run_jobs()
    events.cancel_event(workshop)
    db.session.commit()
    event_jobs.enqueue_senders(workshop.id)
    # A confirmation for a new address, the "already subscribed" notice for Anna.
    for address in ("lena.schmid@sindelfingen.de", anna.email):
        assert client.post("/d/08115/subscribe", data={"email": address, "name": "X", "municipality": "08115045",
                                                       "consent": "1"}).status_code == 302
    run_jobs()
    messages = smtp_server.wait_for(7)
    subjects = sorted(str(m["Subject"]).split(":")[0].split(" ")[0] for m in messages)
    assert subjects == ["Abgesagt", "Bitte", "Einladung", "Geändert", "Neues", "Sie", "Sprechstunde"], subjects

    personal_pages = set()
    for message in messages:
        html = message.get_body(("html",)).get_content()
        text = message.get_body(("plain",)).get_content()
        in_html = re.findall(r'<a href="([^"]+)" style="color:#0b5394">(Impressum|Datenschutz|Barrierefreiheit)</a>',
                             html)
        in_text = [(url, title) for title, url in re.findall(r"^(Impressum|Datenschutz|Barrierefreiheit): (\S+)\r?$",
                                                                text, re.MULTILINE)]
        assert [title for _url, title in in_html] == MAIL_TITLES, message["Subject"]
        assert in_text == in_html, message["Subject"]
        for url, title in in_html:
            assert url == IMPRINT or url.startswith("http://localhost/"), url  # absolute: BASE_URL
            follow(client, url, title)
        personal_pages.update(
            urlsplit(url).path for url in re.findall(r"http://localhost/\S+", text)
            if re.match(r"/(confirm|preferences|unsubscribe|rsvp|book)/", urlsplit(url).path))
    kinds = {path.split("/")[1] for path in personal_pages}
    assert kinds == {"confirm", "preferences", "unsubscribe", "rsvp", "book"}, kinds
    for path in sorted(personal_pages):
        response = client.get(path)
        if response.status_code != 410:  # the RSVP links of the cancelled workshop
            check_page(client, path)


def test_text_pages_render_markdown_without_markup_from_the_input(client, app):
    configure()
    page = client.get("/datenschutz").get_data(as_text=True)
    assert "<h2>Verantwortliche Stelle</h2>" in page and "<h1>Datenschutzerklärung</h1>" in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>" not in page
    assert "javascript:" not in page.split("<main")[1].split("href=")[-1] and 'href="javascript' not in page


def test_the_shipped_accessibility_statement_names_the_configured_contact(make_app):
    app = make_app(ACCESSIBILITY_CONTACT="barrierefreiheit@lrabb.de")
    with app.app_context():
        page = app.test_client().get("/barrierefreiheit").get_data(as_text=True)
    for heading in ("Stand der Vereinbarkeit mit den Anforderungen", "Nicht barrierefreie Inhalte",
                    "Erstellung dieser Erklärung", "Feedback und Kontaktangaben", "Durchsetzungsverfahren"):
        assert f"<h2>{heading}</h2>" in page
    assert '<a href="mailto:barrierefreiheit@lrabb.de">barrierefreiheit@lrabb.de</a>' in page
    assert "Schlichtungsstelle" in page and 'lang="de"' in page.split("<main")[1]


def test_english_pages_name_the_links_in_english(client, app):
    configure()
    client.post("/language", data={"lang": "en"})
    titles = [title for title, _href in footer_links(client.get("/d/08115/subscribe").get_data(as_text=True))]
    assert titles == ["Imprint", "Privacy policy", "Accessibility statement"]


def test_public_forms_name_and_link_the_privacy_statement(client, two_districts, make_event, make_subscriber):
    from events.mail import booking_url

    configure()
    office_hours = make_event(kind="office_hours")
    book = urlsplit(booking_url(office_hours, make_subscriber())).path
    for path, consent in [("/d/08115/subscribe", "consent"),
                          (f"/d/08115/events/{make_event().id}/anmelden", "privacy"), (book, None)]:
        html = client.get(path).get_data(as_text=True)
        note = re.search(r'<p class="hint" id="privacy-statement">(.*?)</p>', html, re.DOTALL)
        assert note and '<a href="/datenschutz">Datenschutzerklärung</a>' in note.group(1), path
        if consent:
            checkbox = re.search(rf'<input type="checkbox" id="{consent}"[^>]*>', html).group(0)
            assert "privacy-statement" in checkbox.split("aria-describedby=")[1], path


# --- missing pages and the banner ---------------------------------------------------------


BANNER = "Rechtliche Angaben hinterlegen"


def test_banner_for_admins_only_until_imprint_and_privacy_exist(client, app, two_districts, admin, coordinator,
                                                                 sign_in):
    # Nothing configured: the shipped accessibility statement is the only link; the others are not there.
    page = client.get("/login").get_data(as_text=True)
    assert [title for title, _href in footer_links(page)] == ["Erklärung zur Barrierefreiheit"]
    assert BANNER not in page
    assert client.get("/impressum").status_code == 404 and client.get("/datenschutz").status_code == 404

    sign_in(coordinator)
    assert BANNER not in client.get("/d/08115/").get_data(as_text=True)

    sign_in(admin)
    for path in ("/d/08115/", "/admin/users", "/gibt-es-nicht"):
        page = client.get(path).get_data(as_text=True)
        assert BANNER in page and "Impressum, Datenschutzerklärung" in page, path
        assert '<a href="/admin/legal">' in page
    configure(privacy_text="")
    page = client.get("/admin/users").get_data(as_text=True)
    assert BANNER in page and "Es fehlen noch: Datenschutzerklärung." in page
    configure()
    assert BANNER not in client.get("/admin/users").get_data(as_text=True)


def test_an_address_from_the_environment_counts_until_an_admin_stores_one(make_app, two_districts, make_user,
                                                                          sign_in):
    app = make_app(IMPRINT_URL="https://www.lrabb.de/impressum-env", PRIVACY_URL="https://www.lrabb.de/ds")
    with app.app_context():
        client = app.test_client()
        from tests.signin import sign_in_client

        from accounts.services import create_user

        user, _password = create_user("admin@lrabb.de", "admin", ())
        db.session.commit()
        sign_in_client(client, user)
        page = client.get("/admin/users").get_data(as_text=True)
        assert BANNER not in page
        assert [href for _title, href in footer_links(page)] == [
            "https://www.lrabb.de/impressum-env", "https://www.lrabb.de/ds", "/barrierefreiheit"]
        client.post("/admin/legal", data={"imprint_url": "", "imprint_text": "Landratsamt Böblingen",
                                          "privacy_url": "https://www.lrabb.de/ds", "accessibility_url": "",
                                          "accessibility_text": ""})
        assert footer_links(client.get("/admin/users").get_data(as_text=True))[0][1] == "/impressum"


# --- the settings page ----------------------------------------------------------------


def form(**fields):
    data = {f"{kind}_{part}": "" for kind in legal.KINDS for part in ("url", "text")}
    data.update(imprint_url=IMPRINT, privacy_text="Text")
    data.update(fields)
    return data


def test_only_admins_reach_the_settings_page(client, app, two_districts, admin, coordinator, sign_in):
    assert client.get("/admin/legal").status_code == 302  # to the login
    sign_in(coordinator)
    assert client.get("/admin/legal").status_code == 403
    assert client.post("/admin/legal", data=form()).status_code == 403
    assert stored() == []
    sign_in(admin)
    page = client.get("/admin/legal").get_data(as_text=True)
    assert 'for="imprint_url"' in page and 'id="privacy_text"' in page
    assert "Feedback und Kontaktangaben" in page  # the shipped statement, ready to adapt
    response = client.post("/admin/legal", data=form())
    assert response.status_code == 302
    assert stored() == [("legal.imprint.url", IMPRINT), ("legal.privacy.text", "Text")]
    # Saving the shipped statement unchanged keeps following the configured contact.
    client.post("/admin/legal", data=form(accessibility_text=legal.default_accessibility_text().replace("\n", "\r\n")))
    assert [key for key, _value in stored()] == ["legal.imprint.url", "legal.privacy.text"]


@pytest.mark.parametrize("fields, field, message", [
    ({"imprint_url": "javascript:alert(1)"}, "imprint_url", "mit https:// oder http:// beginnt"),
    ({"imprint_url": "JavaScript:alert(document.cookie)//https://x"}, "imprint_url", "mit https:// oder http://"),
    ({"privacy_url": "//evil.example/ds", "privacy_text": ""}, "privacy_url", "mit https:// oder http://"),
    ({"accessibility_url": "ftp://lrabb.de/a"}, "accessibility_url", "mit https:// oder http://"),
    ({"imprint_url": "https://lrabb.de/{{ name }}"}, "imprint_url", "mit https:// oder http://"),
    ({"imprint_url": "https://lrabb.de/" + "a" * 2000}, "imprint_url", "höchstens 2000 Zeichen"),
    ({"privacy_text": "x" * 100_001}, "privacy_text", "höchstens 100000 Zeichen"),
    ({"privacy_url": "https://lrabb.de/ds"}, "privacy_url", "entweder eine Adresse oder einen Text"),
])
def test_bad_input_is_refused_at_its_field_and_stores_nothing(client, app, admin, sign_in, fields, field, message):
    configure(imprint_url="https://www.lrabb.de/alt", privacy_text="Alt")
    before = stored()
    sign_in(admin)
    response = client.post("/admin/legal", data=form(**fields))
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert re.search(rf'<p class="field-error" id="{field}-error">[^<]*{re.escape(message)}', page), page
    assert f'href="#{field}"' in page  # the summary leads to the field
    assert stored() == before
    assert db.session.execute(select(func.count()).select_from(Setting)).scalar_one() == 2


def test_pages_keep_their_footer_when_the_settings_cannot_be_read(make_app, monkeypatch):
    """An error page must render when the database is what failed: the environment's addresses remain."""
    from sqlalchemy.exc import OperationalError

    app = make_app(IMPRINT_URL=IMPRINT)

    def broken():
        raise OperationalError("SELECT", {}, Exception("database is locked"))

    monkeypatch.setattr(legal, "_stored", broken)
    with app.app_context():
        response = app.test_client().get("/gibt-es-nicht")
    assert response.status_code == 404
    assert footer_links(response.get_data(as_text=True)) == [
        ("Impressum", IMPRINT), ("Erklärung zur Barrierefreiheit", "/barrierefreiheit")]
