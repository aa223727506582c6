"""Links as an attacker would use them.

- One check of redirect targets from a request (core.urls.safe_redirect_target)
  serves the login's and the language switch's `next`; both are tried with
  the same list of nasty values.
- Every route whose URL carries a personal token answers with `no-store`
  (and `no-referrer`): the test enumerates the app's token routes, so a new
  one without the headers (or without an entry here) fails.
"""
import pytest
from sqlalchemy import select

from core.extensions import db
from core.tokens import make_token
from core.urls import safe_redirect_target

# Each of these must never become a redirect off this site.
NASTY = [
    "https://evil.example/",
    "http://evil.example",
    "HTTPS://evil.example/x",
    "//evil.example/",
    "///evil.example",
    "////evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "\\/evil.example",
    "/\\/evil.example",
    "/\t/evil.example",
    "/\n/evil.example",
    "/\r\n/evil.example",
    "/\x00/evil.example",
    "/\x7f/evil.example",
    " //evil.example",
    "/ /evil.example",
    "/%5Cevil.example",
    "/%5cevil.example",
    "%2F%2Fevil.example",
    "/%2F/evil.example",
    "/%2f%2fevil.example",
    "/%252F/evil.example",
    "/%255Cevil.example",
    "/%09/evil.example",
    "/%0d%0aSet-Cookie:%20x=1",
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "http:/evil.example",
    "http:evil.example",
    "https://localhost.evil.example/",
    "https://localhost@evil.example/",
    "https://evil.example@localhost:80@evil.example/",
    "ftp://localhost/x",
    "http://localhost\\@evil.example/",
    "//localhost/x",
    "evil.example",
    "evil",
    "",
    "/" + "a" * 3000,
]

# Same-site targets pass, as paths.
FINE = [
    ("/", "/"),
    ("/d/08115/", "/d/08115/"),
    ("/admin/users?page=2", "/admin/users?page=2"),
    ("/d/08115/subscribers?q=anna%20beispiel&status=active", "/d/08115/subscribers?q=anna%20beispiel&status=active"),
    ("/d/08115/veranstaltungen#termine", "/d/08115/veranstaltungen#termine"),
    ("http://localhost/d/08115/", "/d/08115/"),  # our own host (the test BASE_URL and request host)
    ("http://localhost", "/"),
]


@pytest.mark.parametrize("target", NASTY)
def test_the_check_refuses_nasty_targets(app, target):
    with app.test_request_context("/"):
        assert safe_redirect_target(target) is None


@pytest.mark.parametrize("target, path", FINE)
def test_the_check_keeps_own_paths(app, target, path):
    with app.test_request_context("/"):
        assert safe_redirect_target(target) == path


def test_the_check_refuses_what_is_not_a_string(app):
    with app.test_request_context("/"):
        for value in (None, b"/d/08115/", ["/"], 1):
            assert safe_redirect_target(value) is None


@pytest.fixture
def web(make_app):
    return make_app()


@pytest.fixture
def coordinator(make_user, two_districts):
    return make_user("koordination@lrabb.de", role="coordinator", districts=("08115",))


def test_login_next_takes_only_own_paths(web, coordinator):
    # The login form posts back to itself with the checked `next`; the page
    # shows what a POST would do, without an Argon2 check per value.
    for target in NASTY:
        response = web.test_client().get("/login", query_string={"next": target})
        if "\x00" in target:
            # A NUL anywhere in a request is refused before any view (core/errors.py).
            assert response.status_code == 400, repr(target)
            continue
        assert 'action="/login"' in response.get_data(as_text=True), repr(target)
    browser = web.test_client()
    credentials = {"email": coordinator.email, "password": coordinator.plain_password}
    for target in NASTY[:8] + ["/%5Cevil.example", "/%2F/evil.example"]:
        response = browser.post("/login", query_string={"next": target}, data=credentials)
        assert response.status_code == 302 and response.headers["Location"] == "/", repr(target)
        browser.post("/logout")
    for target, path in FINE:
        response = browser.post("/login", query_string={"next": target}, data=credentials)
        assert response.headers["Location"] == path, repr(target)
        browser.post("/logout")


def test_language_switch_next_takes_only_own_paths(web):
    browser = web.test_client()
    for target in NASTY:
        response = browser.post("/language", data={"lang": "en", "next": target})
        if "\x00" in target:
            assert response.status_code == 400, repr(target)  # refused before any view
            continue
        assert response.status_code == 302, repr(target)
        assert response.headers["Location"] == "/", repr(target)
    for target, path in FINE:
        response = browser.post("/language", data={"lang": "de", "next": target})
        assert response.headers["Location"] == path, repr(target)


# --- pages reached by a personal token ------------------------------------------------


@pytest.fixture
def links(app, two_districts, make_subscriber, make_event):
    """A request (method, path) that succeeds for each token route, by endpoint."""
    from events import services as event_services
    from events.mail import rsvp_token
    from events.models import Registration
    from newsletter.models import Link, Newsletter
    from newsletter.tracking import TOKEN_PURPOSE
    from subscribers.mail import confirm_token, manage_token, unsubscribe_token

    pending = make_subscriber("neu@boeblingen.de", status="pending")
    active = make_subscriber("anna@boeblingen.de")
    workshop = make_event()
    event_services.invite(workshop)
    office = make_event(kind="office_hours")
    db.session.commit()
    registration = db.session.execute(select(Registration).where(Registration.event_id == workshop.id)).scalar_one()
    newsletter = Newsletter(district_key="08115", subject="Test", body="Hallo", status="draft", tracking=True)
    db.session.add(newsletter)
    db.session.flush()
    link = Link(newsletter_id=newsletter.id, district_key="08115", url="https://www.service-bw.de/")
    db.session.add(link)
    db.session.commit()
    test_send = make_token(TOKEN_PURPOSE, {"test": newsletter.id})
    manage = manage_token(active)
    return {
        "public.confirm": ("GET", f"/confirm/{confirm_token(pending)}"),
        "public.unsubscribe": ("GET", f"/unsubscribe/{unsubscribe_token(active)}"),
        "public.preferences": ("GET", f"/preferences/{manage}"),
        "public.resubscribe": ("POST", f"/preferences/{manage}/resubscribe"),
        "public.export": ("POST", f"/preferences/{manage}/export"),
        "public.delete": ("GET", f"/preferences/{manage}/delete"),
        "events_public.rsvp": ("GET", f"/rsvp/{rsvp_token(registration)}/accept"),
        "events_public.book": ("GET", f"/book/{make_token('event-booking', {'e': office.id, 's': active.public_id})}"),
        "tracking.open_pixel": ("GET", f"/t/o/{test_send}.gif"),
        "tracking.click": ("GET", f"/t/c/{test_send}/{link.id}"),
    }


def token_endpoints(app):
    return {rule.endpoint for rule in app.url_map.iter_rules() if "token" in rule.arguments}


def test_every_token_route_answers_no_store(app, client, links):
    assert token_endpoints(app) == set(links), "a token route without an entry here, or one that went away"
    for endpoint, (method, path) in links.items():
        response = client.open(path, method=method)
        assert response.status_code < 400, (endpoint, response.status_code)
        assert response.headers["Cache-Control"] == "no-store", endpoint
        if response.mimetype != "image/gif":  # an image leads nowhere: no Referer to keep back
            assert response.headers["Referrer-Policy"] == "no-referrer", endpoint


SUBSCRIBER_TOKEN_ROUTES = [
    ("GET", "/confirm/{}"), ("POST", "/confirm/{}"), ("GET", "/unsubscribe/{}"), ("POST", "/unsubscribe/{}"),
    ("GET", "/preferences/{}"), ("POST", "/preferences/{}"), ("POST", "/preferences/{}/resubscribe"),
    ("POST", "/preferences/{}/export"), ("GET", "/preferences/{}/delete"), ("POST", "/preferences/{}/delete"),
    # The event links (RSVP, office-hours booking).
    ("GET", "/rsvp/{}/accept"), ("POST", "/rsvp/{}/decline"), ("GET", "/book/{}"), ("POST", "/book/{}"),
]


@pytest.mark.parametrize("method, pattern", SUBSCRIBER_TOKEN_ROUTES)
def test_error_pages_of_token_routes_are_no_store_too(client, two_districts, method, pattern):
    # A broken or expired link answers 404/410; the URL still holds a token.
    response = client.open(pattern.format("not-a-token"), method=method)
    assert response.status_code == 404
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Referrer-Policy"] == "no-referrer"


def test_other_pages_keep_the_site_wide_referrer_policy(client, two_districts):
    response = client.get("/d/08115/subscribe")
    assert response.status_code == 200
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert "no-store" not in response.headers.get("Cache-Control", "")
