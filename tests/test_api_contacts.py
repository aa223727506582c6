"""The contacts API: create, list with filters and paging, read, change, delete;
invalid bodies (422 naming the field), another district (404 before the body is
looked at), ids beyond the database (404), viewers (403), no token (401), and
the OpenAPI document."""
import json
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from core.extensions import db
from reach import contacts
from reach.models import Contact

LIST = "/api/v1/districts/08115/contacts"
YESTERDAY = contacts.today() - timedelta(days=1)


@pytest.fixture
def world(two_districts, make_topic):
    make_topic("OZG")
    make_topic("E-Rechnung")
    make_topic("DMS", "08116")


@pytest.fixture
def headers(make_user, make_token):
    """A coordinator of Böblingen (08115)."""
    return make_token(make_user())


@pytest.fixture
def esslingen(make_user, make_token):
    return make_token(make_user("koordination@lra-es.de", districts=("08116",)))


@pytest.fixture
def viewer(make_user, make_token):
    return make_token(make_user("lesen@lrabb.de", role="viewer", districts=("08115",)))


def body(**fields):
    data = {"date": YESTERDAY.isoformat(), "kind": "vor_ort", "municipalities": ["08115003"],
            "topics": ["ozg"], "note": "Besuch im Rathaus"}
    data.update(fields)
    return data


def create(client, headers, **fields):
    response = client.post(LIST, json=body(**fields), headers=headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def count():
    return db.session.execute(select(func.count()).select_from(Contact)).scalar_one()


def test_create_read_change_delete(world, client, headers):
    created = create(client, headers, municipalities=["08115045", "08115003"], topics=["OZG", "e-rechnung"])

    assert created["district"] == "08115" and created["date"] == YESTERDAY.isoformat()
    assert (created["kind"], created["kind_label"]) == ("vor_ort", "Vor-Ort-Termin")
    assert created["municipalities"] == [{"ags": "08115003", "name": "Böblingen, Stadt"},
                                         {"ags": "08115045", "name": "Sindelfingen, Stadt"}]
    assert created["topics"] == ["E-Rechnung", "OZG"] and created["note"] == "Besuch im Rathaus"
    assert created["created_at"] and created["updated_at"]
    url = f"/api/v1/contacts/{created['id']}"
    assert client.get(url, headers=headers).get_json() == created

    changed = client.patch(url, json={"kind": "telefon", "topics": []}, headers=headers)
    assert changed.status_code == 200, changed.get_json()
    data = changed.get_json()
    assert (data["kind"], data["kind_label"], data["topics"]) == ("telefon", "Telefon", [])
    assert data["date"] == created["date"] and len(data["municipalities"]) == 2  # unsent fields stay

    assert client.delete(url, headers=headers).status_code == 204
    assert client.get(url, headers=headers).status_code == 404
    assert count() == 0


def test_location_header_names_the_new_contact(world, client, headers):
    response = client.post(LIST, json=body(), headers=headers)
    assert response.headers["Location"].endswith(f"/api/v1/contacts/{response.get_json()['id']}")


@pytest.mark.parametrize("fields, field, words", [
    ({"date": (contacts.today() + timedelta(days=1)).isoformat()}, "date", "Zukunft"),
    ({"date": "1999-12-31"}, "date", "2000"),
    ({"municipalities": []}, "municipalities", "mindestens eine Gemeinde"),
    ({"municipalities": ["08116019"]}, "municipalities", "08116019"),
    ({"kind": "brief"}, "kind", "Art"),
    ({"topics": ["DMS"]}, "topics", "Unbekanntes Thema"),
    ({"note": "x" * 501}, "note", "500"),
])
def test_invalid_values_are_422_naming_the_field(world, client, headers, fields, field, words):
    response = client.post(LIST, json=body(**fields), headers=headers)
    assert response.status_code == 422, response.get_json()
    data = response.get_json()
    assert words in data["message"] and words in data["errors"]["json"][field][0]
    assert count() == 0


def test_a_body_of_the_wrong_shape_is_422(world, client, headers):
    response = client.post(LIST, json={"note": "ohne alles"}, headers=headers)
    assert response.status_code == 422
    assert {"date", "kind", "municipalities"} <= set(response.get_json()["errors"]["json"])
    response = client.post(LIST, json=body(date="gestern"), headers=headers)
    assert response.status_code == 422 and "date" in response.get_json()["errors"]["json"]
    response = client.post(LIST, data="kein JSON", headers={**headers, "Content-Type": "application/json"})
    assert response.status_code in (400, 422)
    assert count() == 0


def test_a_refused_change_changes_nothing(world, client, headers):
    created = create(client, headers)
    url = f"/api/v1/contacts/{created['id']}"
    response = client.patch(url, json={"note": "neu", "municipalities": ["08116019"]}, headers=headers)
    assert response.status_code == 422 and "municipalities" in response.get_json()["errors"]["json"]
    assert client.get(url, headers=headers).get_json()["note"] == "Besuch im Rathaus"


def test_list_filters_and_pages(world, client, headers):
    ids = {}
    for day, kind, ags, topics in [(date(2025, 3, 1), "vor_ort", ["08115003"], []),
                                   (date(2025, 9, 1), "telefon", ["08115003", "08115045"], ["OZG"]),
                                   (date(2026, 6, 1), "telefon", ["08115045"], [])]:
        ids[day] = create(client, headers, date=day.isoformat(), kind=kind, municipalities=ags, topics=topics)["id"]

    def listed(query=""):
        response = client.get(LIST + query, headers=headers)
        assert response.status_code == 200, response.get_json()
        return [item["id"] for item in response.get_json()]

    assert listed() == [ids[date(2026, 6, 1)], ids[date(2025, 9, 1)], ids[date(2025, 3, 1)]]
    assert listed("?from=2025-09-01") == [ids[date(2026, 6, 1)], ids[date(2025, 9, 1)]]
    assert listed("?to=2025-09-01&kind=telefon") == [ids[date(2025, 9, 1)]]
    assert listed("?municipality=08115003") == [ids[date(2025, 9, 1)], ids[date(2025, 3, 1)]]
    assert listed("?topic=ozg") == [ids[date(2025, 9, 1)]]

    page = client.get(LIST + "?page=2&page_size=2", headers=headers)
    assert [item["id"] for item in page.get_json()] == [ids[date(2025, 3, 1)]]
    assert json.loads(page.headers["X-Pagination"])["total"] == 3

    for query, field in [("?municipality=08116019", "municipality"), ("?kind=brief", "kind"),
                         ("?topic=DMS", "topic"), ("?from=gestern", "from")]:
        response = client.get(LIST + query, headers=headers)
        assert response.status_code == 422 and field in response.get_json()["errors"]["query"], query


def test_another_district_is_404_before_the_body_is_validated(world, client, headers, esslingen):
    created = create(client, headers)
    url = f"/api/v1/contacts/{created['id']}"
    assert client.get(LIST, headers=esslingen).status_code == 404
    assert client.post(LIST, json=body(), headers=esslingen).status_code == 404
    assert client.post(LIST, json={"kind": 7}, headers=esslingen).status_code == 404
    assert client.get(url, headers=esslingen).status_code == 404
    assert client.patch(url, json={"note": "übernommen"}, headers=esslingen).status_code == 404
    assert client.patch(url, json={"date": "gestern", "farbe": "rot"}, headers=esslingen).status_code == 404
    assert client.delete(url, headers=esslingen).status_code == 404
    assert client.get("/api/v1/districts/99999/contacts", headers=headers).status_code == 404
    assert count() == 1
    assert client.get(url, headers=headers).get_json()["note"] == "Besuch im Rathaus"


@pytest.mark.parametrize("huge", [0, 2**31, 2**63, 2**64 + 1, 10**30])
def test_ids_beyond_the_database_are_404(world, client, headers, huge):
    url = f"/api/v1/contacts/{huge}"
    assert client.get(url, headers=headers).status_code == 404
    assert client.patch(url, json={"note": "x"}, headers=headers).status_code == 404
    assert client.delete(url, headers=headers).status_code == 404


def test_viewers_get_403_and_anonymous_callers_401(world, client, headers, viewer):
    created = create(client, headers)
    url = f"/api/v1/contacts/{created['id']}"
    assert client.get(LIST, headers=viewer).status_code == 403
    assert client.post(LIST, json=body(), headers=viewer).status_code == 403
    assert client.post(LIST, json={}, headers=viewer).status_code == 403  # before the body is looked at
    assert client.get(url, headers=viewer).status_code == 403
    assert client.patch(url, json={"note": "x"}, headers=viewer).status_code == 403
    assert client.delete(url, headers=viewer).status_code == 403
    assert client.get(LIST).status_code == 401
    assert client.get(url, headers={"Authorization": "Bearer falsch"}).status_code == 401
    assert count() == 1


def test_openapi_document_describes_the_contact_routes(client):
    from openapi_spec_validator import validate

    document = client.get("/api/openapi.json").get_json()
    validate(document)
    assert set(document["paths"]["/api/v1/districts/{key}/contacts"]) >= {"get", "post"}
    assert set(document["paths"]["/api/v1/contacts/{id}"]) >= {"get", "patch", "delete"}
    assert "Kontakte" in document["info"]["description"]
    parameters = {p["name"] for p in document["paths"]["/api/v1/districts/{key}/contacts"]["get"]["parameters"]}
    assert {"from", "to", "municipality", "kind", "topic", "page", "page_size"} <= parameters
