"""Every public form and token route, fed whatever an attacker or a broken
client sends, answers below 500.

Hypothesis picks a route (subscribe, confirm, preferences and their
sub-pages, unsubscribe, event registration, RSVP, booking, the archive, the
tracking pixel and redirect, the calendar feed and list, login and the
language switch), a method (GET or POST), a path argument (a genuine token
or id, or garbage: forged, truncated, huge, invalid UTF-8), a query string
and a body: a form with random text or huge values, a multipart body with
files in text fields, raw bytes (invalid UTF-8) under any content type, or
JSON of any shape. Rate limits are off, so the requests reach the views.

Bounded: EXAMPLES requests (about 20 s on SQLite).
"""
import io
import json
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from core.extensions import db

EXAMPLES = 400

FIELD_NAMES = ["name", "email", "municipality", "consent", "topics", "department", "slot", "privacy", "website",
               "csrf_token", "next", "language", "password", "answer", "submit", "confirm", "delete"]
CONTENT_TYPES = ["application/json", "text/plain", "multipart/form-data", "multipart/form-data; boundary=x",
                 "application/x-www-form-urlencoded", "application/x-www-form-urlencoded; charset=latin-1",
                 "application/xml", "image/gif", ""]
GARBAGE = ["", "x", "0", "-1", str(2**31), str(2**63), str(2**64), "%FF%FE%00", "%C3%28", "..%2F..%2Fetc",
           "a" * 5000, "eyJ9.e30.AAAA", "null", "ä", "%E2%82"]

texts = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["", " ", "\x00", "\ud7ff", "08115003", "anna@example.org", "1", "on", "true", "accept"]),
    st.integers(min_value=1, max_value=200_000).map(lambda n: "x" * n),  # huge values
)
form = st.dictionaries(st.sampled_from(FIELD_NAMES) | st.text(max_size=8), texts | st.lists(texts, max_size=3),
                       max_size=8)
json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                        max_size=4),
                           max_leaves=12)


@st.composite
def bodies(draw):
    """(keyword arguments of the test client for the body)."""
    kind = draw(st.sampled_from(["none", "form", "multipart", "raw", "json"]))
    if kind == "form":
        return {"data": draw(form)}
    if kind == "multipart":
        data = draw(form)
        for name in draw(st.lists(st.sampled_from(FIELD_NAMES), min_size=1, max_size=3)):
            data[name] = (io.BytesIO(draw(st.binary(max_size=300))), draw(st.sampled_from(["x.bin", "", "ä.csv"])))
        return {"data": data, "content_type": "multipart/form-data"}
    if kind == "raw":
        raw = draw(st.binary(max_size=500) | st.just(b"name=\xff\xfe&email=\xc3\x28"))
        return {"data": raw, "content_type": draw(st.sampled_from(CONTENT_TYPES))}
    if kind == "json":
        return {"data": json.dumps(draw(json_values)), "content_type": "application/json"}
    return {}


@pytest.fixture
def targets(app, two_districts, make_subscriber, make_topic, make_event):
    """Path templates and genuine values for their arguments."""
    from events import services as event_services
    from events.mail import booking_url, rsvp_token
    from events.models import Registration
    from newsletter.models import Newsletter
    from newsletter.tracking import tracking_context, tracking_context_for_test_send
    from subscribers.mail import confirm_token, manage_token, unsubscribe_token

    topic = make_topic("OZG", "08115")
    active = make_subscriber("hauptamt@boeblingen.de", "08115", topics=[topic])
    pending = make_subscriber("neu@boeblingen.de", "08115", status="pending")
    workshop = make_event("08115")
    office = make_event("08115", kind="office_hours")
    event_services.invite(workshop)
    sent = Newsletter(district_key="08115", subject="Rundbrief", body="Hallo", status="sent")
    db.session.add(sent)
    db.session.commit()
    registration = db.session.execute(db.select(Registration).filter_by(event_id=workshop.id)).scalar_one()

    def tail(url):
        return url.split("/", 3)[3]

    test_tracking = tracking_context_for_test_send(sent.id)["open_url"].rsplit("/", 1)[1].removesuffix(".gif")
    delivery_tracking = tracking_context(987654)["open_url"].rsplit("/", 1)[1].removesuffix(".gif")
    tokens = [confirm_token(pending), manage_token(active), unsubscribe_token(active), rsvp_token(registration),
              tail(booking_url(office, active)).split("/", 1)[1], test_tracking, delivery_tracking]
    return {
        "templates": [
            "/d/{key}/subscribe", "/d/{key}/subscribe/check-inbox", "/confirm/{token}", "/preferences/{token}",
            "/preferences/{token}/delete", "/preferences/{token}/export", "/preferences/{token}/resubscribe",
            "/unsubscribe/{token}", "/d/{key}/events/{id}/anmelden", "/rsvp/{token}/{answer}", "/book/{token}",
            "/d/{key}/events.ics", "/d/{key}/veranstaltungen", "/d/{key}/newsletters", "/d/{key}/newsletters/{id}",
            "/t/o/{token}.gif", "/t/c/{token}/{id}", "/login", "/language",
        ],
        "key": ["08115", "08116"],
        "id": [str(workshop.id), str(office.id), str(sent.id), "1"],
        "token": tokens,
        "answer": ["accept", "tentative", "decline"],
    }


@st.composite
def requests(draw, targets):
    template = draw(st.sampled_from(targets["templates"]))
    values = {}
    for name in ("key", "id", "token", "answer"):
        genuine = st.sampled_from(targets[name])
        garbage = st.sampled_from(GARBAGE) | st.text(min_size=1, max_size=30).map(lambda t: quote(t, safe=""))
        values[name] = draw(st.one_of(genuine, genuine, garbage))  # genuine two times in three
    path = template.format(**values)
    query = draw(st.dictionaries(st.sampled_from(["page", "next", "lang", "u", "topic"]) | st.text(max_size=5),
                                 texts, max_size=3))
    method = draw(st.sampled_from(["GET", "POST"]))
    return method, path, query, draw(bodies()) if method == "POST" else {}


def hostile_bodies():
    """One of each kind, deterministic: every route gets every one of them."""
    files = {name: (io.BytesIO(b"\x00\xff" * 50), "x.bin") for name in FIELD_NAMES}
    yield {"data": files, "content_type": "multipart/form-data"}
    yield {"data": {name: "x" * 300_000 for name in ("name", "email")}}
    yield {"data": b"name=\xff\xfe&email=\xc3\x28&consent=1", "content_type": "application/x-www-form-urlencoded"}
    yield {"data": b"\xff\xfe\x00garbage", "content_type": "multipart/form-data; boundary=x"}
    for value in ([1, 2], "text", None, {"name": 5, "email": ["x"], "consent": {"a": 1}}):
        yield {"data": json.dumps(value), "content_type": "application/json"}
    yield {"data": "{", "content_type": "application/json"}


def test_every_public_route_takes_hostile_bodies(make_app, targets):
    client = make_app(RATELIMIT_ENABLED=False).test_client()
    genuine = {"key": "08115", "id": targets["id"][0], "answer": "accept"}
    checked = 0
    for template in targets["templates"]:
        for token in targets["token"] if "{token}" in template else [None]:
            path = template.format(token=token, **genuine)
            for body in hostile_bodies():
                response = client.post(path, **body)
                assert response.status_code < 500, (path, body.get("content_type"), response.status_code)
                checked += 1
    assert checked > 300


def test_no_public_request_answers_5xx(make_app, targets):
    client = make_app(RATELIMIT_ENABLED=False).test_client()

    @settings(max_examples=EXAMPLES, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(request=requests(targets))
    def run(request):
        method, path, query, body = request
        response = client.open(path, method=method, query_string=query, **body)
        assert response.status_code < 500, (method, path, query, response.status_code)

    run()
