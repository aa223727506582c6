"""No input answers 5xx: ids and page numbers beyond the database's integer
range, files where text is expected, a blank filter, a row deleted while a
request works on it; API errors are JSON with a message; a cancelled draft
stays invisible on every public route.

The id sweep takes its routes from the URL map, so a route added later is
checked without anyone remembering to add it here.
"""
import io

import pytest
from sqlalchemy import select
from werkzeug.datastructures import FileStorage
from werkzeug.routing import AnyConverter, IntegerConverter

from core.extensions import db
from core.paging import MAX_INT
from events.models import Registration

BAD_IDS = ("0", "-1", str(2**31), str(2**63), str(2**64))
OUT_OF_RANGE = (str(MAX_INT + 1), str(2**63), str(2**64))
METHODS = ("GET", "POST", "PATCH", "PUT", "DELETE")
API_PREFIX = "/api/v1/"


@pytest.fixture
def world(two_districts, make_subscriber, make_topic, make_event):
    topic = make_topic("OZG", "08115")
    subscriber = make_subscriber("hauptamt@boeblingen.de", "08115", topics=[topic])
    event = make_event("08115")
    return {"topic": topic, "subscriber": subscriber, "event": event}


def int_rules(app):
    """Every rule with an `<int:…>` argument."""
    for rule in app.url_map.iter_rules():
        if any(isinstance(c, IntegerConverter) for c in rule._converters.values()):
            yield rule


def path_with(rule, number):
    """The rule's path with `number` in every int argument (as text: the converter must refuse it)."""
    parts = []
    for is_dynamic, piece in rule._trace:
        if not is_dynamic:
            parts.append(piece)
        elif isinstance(rule._converters[piece], IntegerConverter):
            parts.append(number)
        elif isinstance(rule._converters[piece], AnyConverter):
            parts.append(sorted(rule._converters[piece].items)[0])
        elif piece == "key":
            parts.append("08115")
        else:
            parts.append("x")
    return "".join(parts).split("|", 1)[1]


def sweep(app, client, headers=None):
    """(method, path, status) of every int route with every bad id."""
    answers = []
    for rule in int_rules(app):
        for number in BAD_IDS:
            path = path_with(rule, number)
            api = path.startswith(API_PREFIX)
            for method in sorted(set(METHODS) & rule.methods):
                response = client.open(path, method=method, headers=headers if api else None,
                                       json={} if api else None,
                                       data=None if api else {"name": "X", "email": "x@example.org"})
                answers.append((method, path, response.status_code, number))
    return answers


def check(answers):
    assert len(answers) > 100  # every route with an id, each with five ids
    for method, path, status, number in answers:
        assert status < 500, (method, path, status)
        if number in OUT_OF_RANGE or number == "-1":
            # No rule matches such a number; Werkzeug answers 405 where a rule for
            # another method has the same shape (it checks the method first).
            assert status in (404, 405), (method, path, status)
        else:
            assert status in (302, 400, 401, 403, 404, 405, 422), (method, path, status)


def test_every_route_with_an_id_refuses_ids_out_of_range(app, client, world, make_user, make_token, sign_in):
    admin = make_user("admin@lrabb.de", role="admin", districts=())
    coordinator = make_user("koordination@lrabb.de", districts=("08115",))
    check(sweep(app, app.test_client()))  # anonymous
    sign_in(admin)
    check(sweep(app, client, make_token(admin)))
    sign_in(coordinator)
    check(sweep(app, client, make_token(coordinator)))


def test_the_converter_still_takes_the_largest_id_and_index_zero(app):
    adapter = app.url_map.bind("localhost")
    assert adapter.match(f"/api/v1/subscribers/{MAX_INT}")[1] == {"id": MAX_INT}
    assert adapter.match("/admin/outbox/x/attachments/0")[1]["index"] == 0


def test_openapi_documents_the_id_range(client):
    spec = client.get("/api/openapi.json").get_json()
    (parameter,) = spec["paths"]["/api/v1/subscribers/{id}"]["parameters"]
    assert parameter["schema"] == {"type": "integer", "minimum": 1, "maximum": MAX_INT}
    page = next(p for p in spec["paths"]["/api/v1/districts/{key}/subscribers"]["get"]["parameters"]
                if p["name"] == "page")
    assert page["schema"]["maximum"] == MAX_INT and page["schema"]["minimum"] == 1


@pytest.mark.parametrize("page", ["0", "-1", str(2**31), str(2**63), str(2**64), "x", "1e9"])
def test_api_page_out_of_range_is_422(client, world, make_user, make_token, page):
    headers = make_token(make_user("admin@lrabb.de", role="admin", districts=()))
    event = world["event"]
    for path in ("/api/v1/districts/08115/subscribers", f"/api/v1/events/{event.id}/registrations",
                 "/api/v1/districts/08115/contacts", "/api/v1/districts/08115/events"):
        response = client.get(path, query_string={"page": page}, headers=headers)
        assert response.status_code == 422, (path, response.status_code)
        assert response.is_json and response.get_json()["message"]


def test_api_id_in_a_query_out_of_range_is_422(client, world, make_user, make_token):
    headers = make_token(make_user("admin@lrabb.de", role="admin", districts=()))
    path = f"/api/v1/events/{world['event'].id}/registrations"
    for slot_id in (str(2**31), str(2**63), "-1"):
        response = client.get(path, query_string={"slot_id": slot_id}, headers=headers)
        assert response.status_code == 422
        assert "slot_id" in response.get_json()["errors"]["query"]
    assert client.get(path, query_string={"slot_id": MAX_INT}, headers=headers).get_json() == []


@pytest.mark.parametrize("page", [str(2**31), str(2**63), str(2**64), "-5", "x"])
def test_html_lists_clamp_any_page_number(client, world, make_user, sign_in, page):
    sign_in(make_user("admin@lrabb.de", role="admin", districts=()))
    for path in ("/d/08115/subscribers", "/d/08115/kontakte", "/admin/outbox"):
        response = client.get(path, query_string={"page": page})
        assert response.status_code in (200, 404), (path, response.status_code)


def test_blank_topic_filter_is_no_filter(client, world, make_user, make_token):
    headers = make_token(make_user("admin@lrabb.de", role="admin", districts=()))
    for topic in (" ", "%20", "\t"):
        response = client.get("/api/v1/districts/08115/subscribers", query_string={"topic": topic}, headers=headers)
        if topic == "%20":
            assert response.status_code == 422  # a literal "%20" is an unknown topic
            continue
        assert response.status_code == 200
        assert [s["email"] for s in response.get_json()] == ["hauptamt@boeblingen.de"]
    response = client.get("/api/v1/districts/08115/subscribers?topic=%20", headers=headers)
    assert response.status_code == 200


def test_patch_racing_a_delete_answers_404(app, client, world, make_user, make_token, monkeypatch):
    """The DELETE commits (its own request, session and connection) after the PATCH loaded the row."""
    from subscribers import api as subscribers_api
    from subscribers.models import Subscriber

    headers = make_token(make_user("admin@lrabb.de", role="admin", districts=()))
    subscriber_id = world["subscriber"].id
    original = subscribers_api.services.change_subscriber
    deleted = []

    def delete_first(subscriber, **changes):
        # A fresh app context: the DELETE runs in its own session on its own connection.
        with app.app_context():
            response = app.test_client().delete(f"/api/v1/subscribers/{subscriber_id}", headers=headers)
        deleted.append(response.status_code)
        return original(subscriber, **changes)

    monkeypatch.setattr(subscribers_api.services, "change_subscriber", delete_first)
    response = client.patch(f"/api/v1/subscribers/{subscriber_id}", json={"name": "Neu"}, headers=headers)
    assert deleted == [204]
    assert response.status_code == 404
    assert response.is_json and response.get_json()["message"]
    db.session.rollback()
    assert db.session.get(Subscriber, subscriber_id) is None


# --- files and other content where text is expected ------------------------------------------


def a_file():
    return FileStorage(stream=io.BytesIO(b"\x00\xff" * 100), filename="x.bin",
                       content_type="application/octet-stream")


def test_a_file_in_a_text_field_of_the_event_registration_is_a_form_error(client, world):
    event = world["event"]
    path = f"/d/08115/events/{event.id}/anmelden"
    response = client.post(path, data={"name": a_file(), "email": a_file(), "municipality": "08115003",
                                       "privacy": "1"}, content_type="multipart/form-data")
    assert response.status_code == 400
    assert db.session.execute(select(Registration)).first() is None


def test_a_file_in_a_text_field_of_the_subscribe_form_is_a_form_error(client, world):
    response = client.post("/d/08115/subscribe", data={"name": a_file(), "email": a_file(), "consent": "1",
                                                       "municipality": "08115003"},
                           content_type="multipart/form-data")
    assert response.status_code in (200, 400)


@pytest.mark.parametrize("body", ['{"name": 5, "email": ["x"]}', "[1, 2]", '"text"', "null", "{"])
def test_json_posted_to_a_form_is_not_form_input(client, world, body):
    event = world["event"]
    for path in (f"/d/08115/events/{event.id}/anmelden", "/d/08115/subscribe"):
        response = client.post(path, data=body, content_type="application/json")
        assert response.status_code in (200, 400), (path, response.status_code)


def test_file_fields_still_take_their_file(client, world, make_user, sign_in):
    sign_in(make_user("admin@lrabb.de", role="admin", districts=()))
    csv = "email;name;municipality\nneu@boeblingen.de;Neu;08115003\n".encode()
    response = client.post("/d/08115/subscribers/import", content_type="multipart/form-data",
                           data={"file": FileStorage(stream=io.BytesIO(csv), filename="liste.csv",
                                                     content_type="text/csv")})
    assert response.status_code in (200, 302)
    assert "Bitte eine Datei" not in response.get_data(as_text=True)


# --- API errors are JSON ---------------------------------------------------------------


def test_api_errors_are_json_with_a_message(app, client, world, make_user, make_token):
    app.config["MAX_CONTENT_LENGTH"] = 1024
    headers = make_token(make_user("admin@lrabb.de", role="admin", districts=()))
    answers = {
        404: client.get("/api/v1/no-such-thing", headers=headers),
        405: client.put("/api/v1/districts", headers=headers),
        413: client.post("/api/v1/districts/08115/subscribers", data="x" * 4096,
                         content_type="application/json", headers=headers),
        401: client.get("/api/v1/districts"),
    }
    for code, response in answers.items():
        assert response.status_code == code
        assert response.is_json, code
        assert response.get_json()["message"], code


# --- drafts stay 404 -------------------------------------------------------------------


def test_a_cancelled_draft_answers_404_on_every_public_route(client, world, make_event):
    from events import services

    draft = make_event(status="draft", title="Geheimer Entwurf")
    services.cancel_event(draft)
    db.session.commit()
    for method in ("GET", "POST"):
        response = client.open(f"/d/08115/events/{draft.id}/anmelden", method=method,
                               data={"name": "X", "email": "x@example.org", "municipality": "08115003"})
        assert response.status_code == 404
        assert "Geheimer Entwurf" not in response.get_data(as_text=True)
    for path in ("/d/08115/events.ics", "/d/08115/veranstaltungen", "/d/08115/newsletters"):
        response = client.get(path)
        assert response.status_code == 200
        assert "Geheimer Entwurf" not in response.get_data(as_text=True)


def test_a_cancelled_published_event_still_says_so(client, world):
    from events import services

    services.cancel_event(world["event"])
    db.session.commit()
    assert client.get(f"/d/08115/events/{world['event'].id}/anmelden").status_code == 410


def test_newsletters_never_sent_are_not_in_the_archive(client, world, make_user):
    from newsletter.models import Newsletter

    rows = []
    for status in ("draft", "scheduled", "cancelled"):
        rows.append(Newsletter(district_key="08115", subject=f"Betreff {status}", status=status))
    db.session.add_all(rows)
    db.session.commit()
    index = client.get("/d/08115/newsletters").get_data(as_text=True)
    for row in rows:
        assert f"Betreff {row.status}" not in index
        assert client.get(f"/d/08115/newsletters/{row.id}").status_code == 404


def test_token_routes_of_a_draft_answer_404(client, world, make_event):
    from events.mail import booking_url, rsvp_token

    draft = make_event(status="draft", kind="office_hours", title="Entwurf Sprechstunde")
    path = "/" + booking_url(draft, world["subscriber"]).split("/", 3)[3]
    assert client.get(path).status_code == 404
    registration = Registration(event_id=draft.id, slot_id=draft.slots[0].id, district_key="08115",
                                municipality_ags="08115003", email="a@b.de", email_key="a@b.de", name="A",
                                status="invited")
    db.session.add(registration)
    db.session.commit()
    assert client.get(f"/rsvp/{rsvp_token(registration)}/accept").status_code == 404


# --- NUL characters (PostgreSQL cannot store or compare them) ----------------------------


def test_a_nul_character_anywhere_in_text_is_refused(client, world, make_user, make_token):
    headers = make_token(make_user("admin@lrabb.de", role="admin", districts=()))
    event = world["event"]
    assert client.get("/d/08115%00/subscribe").status_code == 404
    assert client.get("/confirm/abc%00def").status_code == 404
    assert client.get("/d/08115/veranstaltungen", query_string={"page": "1\x00"}).status_code == 400
    assert client.post("/d/08115/subscribe", data={"name": "A\x00", "email": "a@b.de"}).status_code == 400
    assert client.post(f"/d/08115/events/{event.id}/anmelden", content_type="multipart/form-data",
                       data={"name": "A", "email": "a\x00@b.de"}).status_code == 400
    response = client.post("/api/v1/districts/08115/subscribers", headers=headers,
                           json={"email": "a@b.de", "name": "A\x00", "municipality": "08115003"})
    assert response.status_code == 400 and response.get_json()["message"]
    response = client.get("/api/v1/districts/08115/subscribers", query_string={"q": "\x00"}, headers=headers)
    assert response.status_code == 400 and response.is_json
    # A file's bytes are not text: an upload with NUL bytes still reaches its view.
    response = client.post(f"/d/08115/events/{event.id}/anmelden", content_type="multipart/form-data",
                           data={"name": (io.BytesIO(b"\x00"), "x.bin")})
    assert response.status_code == 400
    assert "unzulässiges Zeichen" not in response.get_data(as_text=True)
