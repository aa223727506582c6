"""The web pages' frame and the district pages: navigation, scoping, language, errors."""
import re

import pytest


@pytest.fixture
def stuttgart(make_district):
    return make_district("08111", "Stuttgart", kind="Stadtkreis", municipalities=[("08111000", "Stuttgart, Landeshauptstadt")])


def text_of(response):
    return response.get_data(as_text=True)


def test_anonymous_visitor_is_sent_to_login(client, two_districts):
    for path in ("/districts", "/d/08115/"):
        response = client.get(path)
        assert response.status_code == 302
        assert response.headers["Location"].startswith("/login")


def test_coordinator_with_one_district_goes_straight_to_its_dashboard(client, two_districts, make_user, sign_in):
    sign_in(make_user())
    response = client.get("/districts")
    assert response.status_code == 302
    assert response.headers["Location"] == "/d/08115/"


def test_dashboard_shows_district_coordinators_and_municipalities(client, two_districts, make_user, sign_in):
    coordinator = make_user()
    make_user("kollegin@lrabb.de", role="coordinator", districts=("08115",))
    make_user("es@lra-es.de", role="coordinator", districts=("08116",))
    make_user("viewer@lrabb.de", role="viewer", districts=("08115",))
    sign_in(coordinator)
    page = text_of(client.get("/d/08115/"))
    assert "<h1>Böblingen</h1>" in page
    assert "Landkreis" in page
    assert "08115003" in page and "Sindelfingen, Stadt" in page
    assert "koordination@lrabb.de" in page and "kollegin@lrabb.de" in page
    assert "es@lra-es.de" not in page and "viewer@lrabb.de" not in page  # other district, other role
    assert "Esslingen" not in page
    figures = re.search(r'<dl class="figures">(.*?)</dl>', page, re.S).group(1)
    assert re.search(r"<dt>Gemeinden</dt>\s*<dd>2</dd>", figures)
    # The navigation links the own district directly, not the overview.
    nav = re.search(r'<nav class="site-nav".*?</nav>', page, re.S).group(0)
    assert 'href="/d/08115/" aria-current="page"' in nav
    assert 'href="/districts"' not in nav


def test_coordinator_gets_404_for_another_district(client, two_districts, make_user, sign_in):
    sign_in(make_user())
    response = client.get("/d/08116/")
    assert response.status_code == 404
    assert "Seite nicht gefunden" in text_of(response)
    assert client.get("/d/99999/").status_code == 404


def test_coordinator_of_two_districts_sees_both_in_list_and_nav(client, two_districts, stuttgart, make_user, sign_in):
    sign_in(make_user(districts=("08115", "08116")))
    response = client.get("/districts")
    assert response.status_code == 200
    page = text_of(response)
    rows = re.findall(r'<th scope="row"><a href="/d/(\d+)/">', page)
    assert rows == ["08115", "08116"]
    assert "Stuttgart" not in page
    nav = re.search(r'<nav class="site-nav".*?</nav>', page, re.S).group(0)
    assert 'href="/d/08115/"' in nav and 'href="/d/08116/"' in nav


def test_admin_sees_every_district_with_counts(client, two_districts, stuttgart, make_user, sign_in):
    sign_in(make_user("admin@lrabb.de", role="admin", districts=()))
    response = client.get("/districts")
    assert response.status_code == 200
    page = text_of(response)
    assert '<th scope="col">Kreis</th>' in page
    rows = re.findall(r'<th scope="row"><a href="/d/(\d+)/">([^<]+)</a></th>\s*<td>(\w+)</td>\s*<td>\d+</td>\s*<td class="numeric">(\d+)</td>', page)
    assert rows == [
        ("08115", "Böblingen", "Landkreis", "2"),
        ("08116", "Esslingen", "Landkreis", "2"),
        ("08111", "Stuttgart", "Stadtkreis", "1"),
    ]
    nav = re.search(r'<nav class="site-nav".*?</nav>', page, re.S).group(0)
    assert 'href="/districts" aria-current="page"' in nav
    assert "/d/08115/" not in nav
    assert client.get("/d/08116/").status_code == 200


def test_admin_navigation_has_admin_links(app, client, two_districts, make_user, sign_in):
    sign_in(make_user("admin@lrabb.de", role="admin", districts=()))
    nav = re.search(r'<nav class="site-nav".*?</nav>', text_of(client.get("/districts")), re.S).group(0)
    assert 'href="/admin/outbox"' in nav
    assert ">Benutzer<" in nav


def test_coordinator_navigation_has_no_admin_links(app, client, two_districts, make_user, sign_in):
    sign_in(make_user())
    nav = re.search(r'<nav class="site-nav".*?</nav>', text_of(client.get("/d/08115/")), re.S).group(0)
    assert "Benutzer" not in nav and "/admin/users" not in nav
    # The outbox (their districts' mails only) while no mail server is set, as here.
    assert '<a href="/admin/outbox">Postausgang</a>' in nav
    assert "koordination@lrabb.de" in nav


def test_logout_is_a_post_form(app, client, two_districts, make_user, sign_in):
    sign_in(make_user())
    page = text_of(client.get("/d/08115/"))
    form = re.search(r'<form method="post" action="/logout".*?</form>', page, re.S)
    assert form and 'name="csrf_token"' in form.group(0)


def test_navigation_tells_districts_of_the_same_name_apart(client, make_district, make_user, sign_in):
    make_district("08121", "Heilbronn", kind="Stadtkreis")
    make_district("08125", "Heilbronn", kind="Landkreis")
    sign_in(make_user(districts=("08121", "08125")))
    nav = re.search(r'<nav class="site-nav".*?</nav>', text_of(client.get("/districts")), re.S).group(0)
    assert '<a href="/d/08121/">Stadtkreis Heilbronn</a>' in nav
    assert '<a href="/d/08125/">Landkreis Heilbronn</a>' in nav


def test_statewide_viewer_sees_all_districts(client, two_districts, stuttgart, make_user, sign_in):
    sign_in(make_user("ministerium@im.bwl.de", role="viewer", districts=()))
    page = text_of(client.get("/districts"))
    assert re.findall(r'<th scope="row"><a href="/d/(\d+)/">', page) == ["08115", "08116", "08111"]
    assert client.get("/d/08111/").status_code == 200
    assert "/admin/outbox" not in page


def test_district_viewer_is_scoped_like_a_coordinator(client, two_districts, make_user, sign_in):
    sign_in(make_user("viewer@lra-es.de", role="viewer", districts=("08116",)))
    assert client.get("/districts").headers["Location"] == "/d/08116/"
    assert client.get("/d/08115/").status_code == 404


def test_admin_without_districts_gets_a_hint(client, make_user, sign_in):
    sign_in(make_user("admin@lrabb.de", role="admin", districts=()))
    page = text_of(client.get("/districts"))
    assert "flask directory import" in page


def test_frame_has_lang_skip_link_and_stylesheet(client, two_districts, make_user, sign_in):
    sign_in(make_user())
    page = text_of(client.get("/d/08115/"))
    assert '<html lang="de">' in page
    assert '<a class="skip-link" href="#main">Zum Inhalt springen</a>' in page
    assert '<main id="main"' in page
    assert '<label for="lang">' in page
    css = client.get("/static/style.css")
    assert css.status_code == 200 and b".skip-link:focus" in css.data


def test_language_switch_sets_english(client, two_districts, make_user, sign_in):
    sign_in(make_user())
    response = client.post("/language", data={"lang": "en", "next": "/d/08115/"})
    assert response.status_code == 302 and response.headers["Location"] == "/d/08115/"
    assert '<html lang="en">' in text_of(client.get("/d/08115/"))
    client.post("/language", data={"lang": "de", "next": "/d/08115/"})
    assert '<html lang="de">' in text_of(client.get("/d/08115/"))


def test_language_switch_ignores_unknown_languages(client):
    client.post("/language", data={"lang": "fr", "next": "/login"})
    assert '<html lang="de">' in text_of(client.get("/nowhere"))


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "evil", ""])
def test_language_switch_redirects_only_to_own_paths(client, target):
    response = client.post("/language", data={"lang": "en", "next": target})
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith("/") and not location.startswith("//")
    assert "evil" not in location


def test_error_page_is_german_and_accessible(client):
    response = client.get("/does-not-exist")
    assert response.status_code == 404
    page = text_of(response)
    assert '<html lang="de">' in page
    assert "<h1>Seite nicht gefunden</h1>" in page
    assert "Fehler 404" in page
    assert "<title>Seite nicht gefunden – E-Government-Koordination</title>" in page


def test_error_page_for_wrong_method(client):
    response = client.post("/districts")
    assert response.status_code == 405
    assert "<h1>Methode nicht erlaubt</h1>" in text_of(response)


@pytest.mark.parametrize(
    "code, title",
    [
        (400, "Ungültige Anfrage"),
        (401, "Anmeldung erforderlich"),
        (403, "Keine Berechtigung"),
        (413, "Datei oder Anfrage zu groß"),
        (429, "Zu viele Anfragen"),
        (500, "Interner Fehler"),
        (503, "Dienst nicht verfügbar"),
    ],
)
def test_error_page_titles(app, code, title):
    from flask import render_template
    from werkzeug.exceptions import default_exceptions

    with app.test_request_context("/"):
        app.preprocess_request()
        page = render_template("core/error.html", error=default_exceptions[code]())
    assert f"<h1>{title}</h1>" in page
    if code == 429:
        assert "Zu viele Anfragen – bitte warten Sie einen Moment." in page
    if code >= 500:
        assert 'class="site-nav"' not in page  # no database needed for a server error page


def test_custom_error_description_is_shown(app):
    from flask import render_template
    from werkzeug.exceptions import BadRequest

    with app.test_request_context("/"):
        app.preprocess_request()
        page = render_template("core/error.html", error=BadRequest("Die Datei ist keine CSV-Datei."))
    assert "Die Datei ist keine CSV-Datei." in page


def test_pages_carry_security_headers(client):
    response = client.get("/login")
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "frame-ancestors 'self'" in policy
    assert response.headers["X-Content-Type-Options"] == "nosniff"


WARNING = "Links in E-Mails führen aber auf"


def test_admins_are_warned_on_every_page_when_reached_under_another_address(client, two_districts, make_user,
                                                                            sign_in):
    sign_in(make_user("admin@lrabb.de", role="admin", districts=()))
    for path in ("/districts", "/d/08115/", "/admin/outbox"):
        page = text_of(client.get(path, base_url="http://localhost:5791"))
        assert WARNING in page and "http://localhost:5791" in page and "(BASE_URL)" in page, path
    # Under BASE_URL itself (default port spelled out or not) there is nothing to warn about.
    assert WARNING not in text_of(client.get("/districts"))
    assert WARNING not in text_of(client.get("/districts", base_url="http://LOCALHOST:80"))


def test_only_admins_see_the_address_warning(client, two_districts, make_user, sign_in):
    sign_in(make_user())
    assert WARNING not in text_of(client.get("/d/08115/", base_url="http://localhost:5791"))
    assert WARNING not in text_of(client.get("/d/08115/subscribe", base_url="http://localhost:5791"))


def test_every_district_page_has_the_district_navigation(client, two_districts, make_user, sign_in):
    sign_in(make_user())
    sections = ["/d/08115/", "/d/08115/subscribers", "/d/08115/newsletters/manage", "/d/08115/events",
                "/d/08115/reichweite", "/d/08115/kontakte"]
    for path in sections + ["/d/08115/topics", "/d/08115/subscribers/municipalities", "/d/08115/events/new"]:
        response = client.get(path)
        assert response.status_code == 200, path
        nav = re.search(r'<nav class="district-nav".*?</nav>', text_of(response), re.S)
        assert nav, path
        links = re.findall(r'<a href="([^"]+)"', nav.group(0))
        assert links == sections, (path, links)
    nav = re.search(r'<nav class="district-nav".*?</nav>', text_of(client.get("/d/08115/events")), re.S).group(0)
    assert 'href="/d/08115/events" aria-current="page"' in nav and nav.count("aria-current") == 1
    nav = re.search(r'<nav class="district-nav".*?</nav>', text_of(client.get("/d/08115/topics")), re.S).group(0)
    assert 'href="/d/08115/subscribers" aria-current="true"' in nav  # the section, not the page
    # Not on pages outside a district, nor on the public pages of one.
    assert 'class="district-nav"' not in text_of(client.get("/districts"))
    assert 'class="district-nav"' not in text_of(client.get("/d/08115/subscribe"))


def test_viewers_get_the_district_navigation_without_personal_data(client, two_districts, make_user, sign_in):
    sign_in(make_user("ministerium@im.bwl.de", role="viewer", districts=()))
    nav = re.search(r'<nav class="district-nav".*?</nav>', text_of(client.get("/d/08115/")), re.S).group(0)
    links = re.findall(r'<a href="([^"]+)"', nav)
    assert "/d/08115/subscribers/municipalities" in links and "/d/08115/subscribers" not in links
    assert "/d/08115/kontakte" not in links


def test_every_table_scrolls_in_a_focusable_named_region():
    from pathlib import Path

    for template in (Path(__file__).resolve().parents[1] / "templates").rglob("*.html"):
        text = template.read_text(encoding="utf-8")
        before_tables = [text[:match.start()] for match in re.finditer(r"<table", text)]
        for before in before_tables:
            opening = before.rstrip().rsplit("\n", 1)[-1]
            assert 'class="table-scroll" role="region" tabindex="0" aria-label=' in opening, template
