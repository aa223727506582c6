"""The subscribers API: list with filters and paging, create with and without
double opt-in, correct, unsubscribe, erase; roles and district scoping."""
import json
import re
from datetime import datetime

import pytest
from sqlalchemy import func, select

from core.extensions import db
from subscribers.models import Subscriber, Suppression

LIST = "/api/v1/districts/08115/subscribers"


@pytest.fixture
def district(two_districts, make_topic):
    make_topic("service-bw")
    make_topic("E-Rechnung")
    make_topic("DMS", "08116")
    return two_districts[0]


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


def new(email="lena.schmid@sindelfingen.de", **fields):
    body = {"email": email, "name": "Lena Schmid", "municipality": "08115045", "consent_source": "import"}
    body.update(fields)
    return body


def run_jobs_of(app, run_jobs):
    # Fixtures built on `app` push its context after smtp_app's: the jobs must
    # run in smtp_app, whose mail goes to the test SMTP server.
    with app.app_context():
        run_jobs()


def count(model=Subscriber):
    return db.session.execute(select(func.count()).select_from(model)).scalar_one()


def reload(subscriber_id):
    db.session.expire_all()
    return db.session.get(Subscriber, subscriber_id)


def emails(response):
    return [s["email"] for s in response.json]


# --- reading -----------------------------------------------------------------------


def test_every_route_needs_a_token(client, district, make_subscriber):
    subscriber = make_subscriber()
    for method, path in [("get", LIST), ("post", LIST), ("get", f"/api/v1/subscribers/{subscriber.id}"),
                         ("patch", f"/api/v1/subscribers/{subscriber.id}"),
                         ("delete", f"/api/v1/subscribers/{subscriber.id}")]:
        response = getattr(client, method)(path, json={})
        assert response.status_code == 401, (method, path)
        assert response.json["message"]
    assert count() == 1


def test_representation(client, district, make_subscriber, headers):
    from subscribers.services import topics_by_name

    subscriber = make_subscriber(
        "Anna.Beispiel@Boeblingen.de", ags="08115045", topics=topics_by_name("08115", ["service-bw"]),
        department="Hauptamt", source="import",
    )
    response = client.get(f"/api/v1/subscribers/{subscriber.id}", headers=headers)
    assert response.status_code == 200
    body = response.json
    assert set(body) == {"id", "email", "name", "department", "district_key", "municipality", "topics", "status",
                         "status_changed_at", "created_at", "consent"}
    assert body["id"] == subscriber.id
    assert body["email"] == "Anna.Beispiel@boeblingen.de"  # as written; the domain is normalised
    assert body["name"] == "Anna Beispiel" and body["department"] == "Hauptamt"
    assert body["district_key"] == "08115"
    assert body["municipality"] == {"ags": "08115045", "name": "Sindelfingen, Stadt"}
    assert body["topics"] == ["service-bw"] and body["status"] == "active"
    assert body["consent"]["source"] == "import" and body["consent"]["text_version"] == "2026-11-de"
    for stamp in (body["created_at"], body["status_changed_at"], body["consent"]["requested_at"],
                  body["consent"]["confirmed_at"]):
        assert datetime.fromisoformat(stamp).utcoffset() is not None, stamp


def test_list_filters(client, district, make_subscriber, headers):
    from subscribers.services import topics_by_name

    service_bw, e_rechnung = topics_by_name("08115", ["service-bw", "E-Rechnung"])
    make_subscriber("anna@boeblingen.de", ags="08115003", name="Anna Acker", topics=[service_bw])
    make_subscriber("bernd@sindelfingen.de", ags="08115045", name="Bernd Berg", topics=[service_bw, e_rechnung])
    make_subscriber("carla@sindelfingen.de", ags="08115045", name="Carla Clausen", status="pending")
    make_subscriber("dora@boeblingen.de", ags="08115003", name="Dora Dach", status="unsubscribed", topics=[e_rechnung])
    make_subscriber("erik@esslingen.de", "08116", name="Erik Esslinger")

    def listed(**query):
        response = client.get(LIST, query_string=query, headers=headers)
        assert response.status_code == 200, response.json
        return emails(response)

    assert listed() == ["anna@boeblingen.de", "bernd@sindelfingen.de", "carla@sindelfingen.de", "dora@boeblingen.de"]
    assert listed(status="active") == ["anna@boeblingen.de", "bernd@sindelfingen.de"]
    assert listed(status="pending") == ["carla@sindelfingen.de"]
    assert listed(municipality="08115045") == ["bernd@sindelfingen.de", "carla@sindelfingen.de"]
    assert listed(topic="E-Rechnung") == ["bernd@sindelfingen.de", "dora@boeblingen.de"]
    assert listed(topic="SERVICE-BW") == ["anna@boeblingen.de", "bernd@sindelfingen.de"]
    assert listed(q="berg") == ["bernd@sindelfingen.de"]  # in the name
    assert listed(q="SINDELFINGEN") == ["bernd@sindelfingen.de", "carla@sindelfingen.de"]  # in the address
    assert listed(q="%") == []  # a wildcard is a plain character
    assert listed(status="active", municipality="08115003", topic="service-bw") == ["anna@boeblingen.de"]
    assert listed(status="bounced") == []
    bernd = client.get(LIST, query_string={"q": "bernd"}, headers=headers).json[0]
    assert bernd["topics"] == ["E-Rechnung", "service-bw"]


def test_list_paging(client, district, make_subscriber, headers):
    for n in range(12):
        make_subscriber(f"person{n:02d}@boeblingen.de")
    response = client.get(LIST, query_string={"page": 3, "page_size": 5}, headers=headers)
    assert response.status_code == 200
    assert emails(response) == ["person10@boeblingen.de", "person11@boeblingen.de"]
    paging = json.loads(response.headers["X-Pagination"])
    assert paging["total"] == 12 and paging["total_pages"] == 3 and paging["page"] == 3
    assert paging["previous_page"] == 2 and "next_page" not in paging

    first = client.get(LIST, headers=headers)
    assert len(first.json) == 10 and first.json[0]["email"] == "person00@boeblingen.de"
    assert json.loads(first.headers["X-Pagination"])["next_page"] == 2
    filtered = client.get(LIST, query_string={"q": "person1", "page_size": 2}, headers=headers)
    assert json.loads(filtered.headers["X-Pagination"])["total"] == 2
    assert client.get(LIST, query_string={"page_size": 101}, headers=headers).status_code == 422


@pytest.mark.parametrize("query, location", [
    ({"status": "erased"}, "status"),
    ({"municipality": "08116019"}, "municipality"),  # a municipality of another district
    ({"municipality": "nonsense"}, "municipality"),
    ({"topic": "DMS"}, "topic"),  # a topic of another district
    ({"topic": "Astrologie"}, "topic"),
    ({"page": 0}, "page"),
])
def test_invalid_filter_values_answer_422(client, district, headers, query, location):
    response = client.get(LIST, query_string=query, headers=headers)
    assert response.status_code == 422
    assert response.json["message"]
    assert location in response.json["errors"]["query"]


# --- creating ----------------------------------------------------------------------


def test_create_active_with_consent_source(smtp_app, district, headers, smtp_server, run_jobs):
    client = smtp_app.test_client()
    response = client.post(LIST, json=new(topics=["service-bw", "e-rechnung"], department="Bürgeramt"),
                           headers=headers)
    assert response.status_code == 201, response.json
    body = response.json
    assert body["status"] == "active"
    assert body["topics"] == ["E-Rechnung", "service-bw"]
    assert body["municipality"]["ags"] == "08115045" and body["department"] == "Bürgeramt"
    assert body["consent"]["source"] == "import"
    assert body["consent"]["requested_at"] and body["consent"]["confirmed_at"]
    assert response.headers["Location"].endswith(f"/api/v1/subscribers/{body['id']}")
    subscriber = reload(body["id"])
    assert subscriber.status == "active" and subscriber.email_key == "lena.schmid@sindelfingen.de"
    run_jobs_of(smtp_app, run_jobs)
    assert smtp_server.messages == []  # no confirmation mail without double opt-in


def test_create_without_consent_source_or_double_opt_in_is_refused(client, district, headers):
    body = new()
    del body["consent_source"]
    response = client.post(LIST, json=body, headers=headers)
    assert response.status_code == 422
    assert response.json["message"]
    assert "consent_source" in response.json["errors"]["json"]
    assert client.post(LIST, json=new(consent_source="hearsay"), headers=headers).status_code == 422
    assert count() == 0


def test_create_with_double_opt_in_sends_one_confirmation(smtp_app, district, headers, smtp_server, run_jobs):
    client = smtp_app.test_client()
    body = new(double_opt_in=True)
    del body["consent_source"]
    response = client.post(LIST, json=body, headers=headers)
    assert response.status_code == 201, response.json
    assert response.json["status"] == "pending"
    consent = response.json["consent"]
    assert consent["source"] == "api" and consent["text_version"] == "2026-11-de"
    assert consent["requested_at"] and consent["confirmed_at"] is None

    run_jobs_of(smtp_app, run_jobs)
    messages = smtp_server.wait_for(1)
    assert len(messages) == 1
    assert messages[0]["To"] == "lena.schmid@sindelfingen.de"
    text = messages[0].get_body(("plain",)).get_content()
    links = [url for url in re.findall(r"https?://\S+", text) if "/confirm/" in url]
    assert len(links) == 1
    run_jobs_of(smtp_app, run_jobs)
    assert len(smtp_server.messages) == 1

    # The link works: a GET changes nothing, the POST confirms.
    path = re.sub(r"^https?://[^/]+", "", links[0])
    assert client.get(path).status_code == 200
    assert reload(response.json["id"]).status == "pending"
    assert client.post(path).status_code == 200
    confirmed = client.get(f"/api/v1/subscribers/{response.json['id']}", headers=headers).json
    assert confirmed["status"] == "active" and confirmed["consent"]["confirmed_at"]


def test_confirmation_mails_per_address_are_capped_for_the_api_too(smtp_app, district, headers, smtp_server,
                                                                    run_jobs):
    # Adding and erasing over and over must not flood an inbox.
    client = smtp_app.test_client()
    for _ in range(4):
        response = client.post(LIST, json=new(double_opt_in=True), headers=headers)
        assert response.status_code == 201
        run_jobs_of(smtp_app, run_jobs)
        assert client.delete(f"/api/v1/subscribers/{response.json['id']}", headers=headers).status_code == 204
    assert len(smtp_server.messages) == 3  # CONFIRMATION_MAIL_LIMIT "3 per day"


def test_duplicate_address_is_a_conflict_whatever_its_case(client, district, make_subscriber, headers):
    make_subscriber("anna@x.de")
    response = client.post(LIST, json=new("Anna@X.de"), headers=headers)
    assert response.status_code == 409
    assert response.json["message"] and "email" in response.json["errors"]["json"]
    assert client.post(LIST, json=new("ANNA@x.de", double_opt_in=True), headers=headers).status_code == 409
    assert count() == 1


def test_suppressed_address_only_through_double_opt_in(client, district, make_subscriber, headers):
    make_subscriber("gone@x.de", status="erased")
    assert count() == 0 and count(Suppression) == 1
    response = client.post(LIST, json=new("Gone@x.de"), headers=headers)
    assert response.status_code == 409
    assert "Sperrliste" in response.json["message"]
    assert count() == 0

    response = client.post(LIST, json=new("gone@x.de", double_opt_in=True), headers=headers)
    assert response.status_code == 201
    assert response.json["status"] == "pending"
    assert count(Suppression) == 1  # lifted only by the person's confirmation


@pytest.mark.parametrize("fields, field", [
    ({"email": "not-an-address"}, "email"),
    ({"email": ""}, "email"),
    ({"municipality": "08116019"}, "municipality"),  # AGS of another district
    ({"topics": ["service-bw", "Astrologie"]}, "topics"),
    ({"topics": ["DMS"]}, "topics"),  # a topic of another district
    ({"name": "x" * 201}, "name"),
])
def test_invalid_values_answer_422_and_write_nothing(client, district, headers, fields, field):
    response = client.post(LIST, json=new(**fields), headers=headers)
    assert response.status_code == 422
    assert response.json["message"]
    assert field in response.json["errors"]["json"]
    assert count() == 0


def test_missing_fields_answer_422(client, district, headers):
    response = client.post(LIST, json={"consent_source": "api"}, headers=headers)
    assert response.status_code == 422
    assert {"email", "name", "municipality"} <= set(response.json["errors"]["json"])
    assert count() == 0


# --- changing and erasing -----------------------------------------------------------


def test_patch_changes_only_the_fields_sent(client, district, make_subscriber, headers):
    subscriber = make_subscriber("anna@x.de", ags="08115003", department="Hauptamt")
    response = client.patch(f"/api/v1/subscribers/{subscriber.id}", headers=headers, json={
        "email": "Anna.Neu@X.de", "name": "Anna Neu", "municipality": "08115045", "topics": ["DMS"],
    })
    assert response.status_code == 422  # DMS is Esslingen's topic
    assert reload(subscriber.id).email == "anna@x.de"

    response = client.patch(f"/api/v1/subscribers/{subscriber.id}", headers=headers, json={
        "email": "Anna.Neu@X.de", "name": "Anna Neu", "municipality": "08115045", "topics": ["service-bw"],
    })
    assert response.status_code == 200, response.json
    assert response.json["email"] == "Anna.Neu@x.de" and response.json["topics"] == ["service-bw"]
    changed = reload(subscriber.id)
    assert (changed.email_key, changed.name, changed.municipality_ags, changed.department, changed.status) == (
        "anna.neu@x.de", "Anna Neu", "08115045", "Hauptamt", "active"
    )
    assert client.patch(f"/api/v1/subscribers/{subscriber.id}", headers=headers,
                        json={"topics": []}).json["topics"] == []


def test_patch_status_only_to_unsubscribed(client, district, make_subscriber, headers):
    pending = make_subscriber("carla@x.de", status="pending")
    response = client.patch(f"/api/v1/subscribers/{pending.id}", headers=headers, json={"status": "active"})
    assert response.status_code == 422
    assert "status" in response.json["errors"]["json"] and response.json["message"]
    assert reload(pending.id).status == "pending"
    assert client.patch(f"/api/v1/subscribers/{pending.id}", headers=headers,
                        json={"status": "erased"}).status_code == 422

    active = make_subscriber("anna@x.de")
    response = client.patch(f"/api/v1/subscribers/{active.id}", headers=headers, json={"status": "unsubscribed"})
    assert response.status_code == 200
    assert response.json["status"] == "unsubscribed"
    assert reload(active.id).status == "unsubscribed"
    assert db.session.execute(select(Suppression.reason)).scalars().all() == ["unsubscribed"]
    # Back to active takes the person's own confirmation.
    response = client.patch(f"/api/v1/subscribers/{active.id}", headers=headers, json={"status": "active"})
    assert response.status_code == 422
    assert reload(active.id).status == "unsubscribed"


def test_patch_address_conflicts_and_invalid_values(client, district, make_subscriber, headers):
    anna = make_subscriber("anna@x.de")
    make_subscriber("bernd@x.de")
    make_subscriber("gone@x.de", status="erased")
    path = f"/api/v1/subscribers/{anna.id}"
    assert client.patch(path, headers=headers, json={"email": "BERND@x.de"}).status_code == 409
    assert client.patch(path, headers=headers, json={"email": "gone@x.de", "name": "Gone"}).status_code == 409
    invalid = client.patch(path, headers=headers, json={"email": "anna(at)x.de"})
    assert invalid.status_code == 422 and "email" in invalid.json["errors"]["json"]
    assert client.patch(path, headers=headers, json={"municipality": "08116019"}).status_code == 422
    unchanged = reload(anna.id)
    assert (unchanged.email, unchanged.name, unchanged.municipality_ags) == ("anna@x.de", "Anna Beispiel", "08115003")
    assert client.patch(path, headers=headers, json={"email": "ANNA@x.de"}).status_code == 200  # own address


def test_delete_erases_and_keeps_the_suppression(client, district, make_subscriber, headers):
    from subscribers.services import address_hash

    subscriber = make_subscriber("anna@x.de", topics=())
    make_subscriber("bernd@x.de")
    response = client.delete(f"/api/v1/subscribers/{subscriber.id}", headers=headers)
    assert response.status_code == 204 and response.data == b""
    assert db.session.execute(select(Subscriber.email_key)).scalars().all() == ["bernd@x.de"]
    suppression = db.session.execute(select(Suppression)).scalar_one()
    assert (suppression.district_key, suppression.reason) == ("08115", "erased")
    assert suppression.address_hash == address_hash("anna@x.de")
    assert client.get(f"/api/v1/subscribers/{subscriber.id}", headers=headers).status_code == 404
    assert client.delete(f"/api/v1/subscribers/{subscriber.id}", headers=headers).status_code == 404


# --- roles and districts -------------------------------------------------------------


def test_coordinator_of_another_district_gets_404_everywhere(client, district, make_subscriber, esslingen):
    subscriber = make_subscriber("anna@x.de")
    path = f"/api/v1/subscribers/{subscriber.id}"
    for response in [
        client.get(LIST, headers=esslingen),
        client.post(LIST, json=new(), headers=esslingen),
        client.get(path, headers=esslingen),
        client.patch(path, json={"name": "Übernommen"}, headers=esslingen),
        client.patch(path, json={"status": "unsubscribed"}, headers=esslingen),
        client.delete(path, headers=esslingen),
    ]:
        assert response.status_code == 404
        assert response.is_json and response.json["message"]
    still = reload(subscriber.id)
    assert (still.name, still.status) == ("Anna Beispiel", "active")
    assert count() == 1 and count(Suppression) == 0
    # Their own list works and does not show Böblingen's subscribers.
    own = client.get("/api/v1/districts/08116/subscribers", headers=esslingen)
    assert own.status_code == 200 and own.json == []


def test_viewer_neither_reads_nor_writes_the_list(client, district, make_subscriber, viewer):
    subscriber = make_subscriber("anna@x.de")
    path = f"/api/v1/subscribers/{subscriber.id}"
    assert client.get("/api/v1/districts/08115/municipalities", headers=viewer).status_code == 200
    for response in [
        client.get(LIST, headers=viewer),  # names and addresses: aggregates only for viewers
        client.get(LIST + "?status=bogus", headers=viewer),  # refused before the query is looked at
        client.get(path, headers=viewer),
        client.post(LIST, json=new(), headers=viewer),
        client.post(LIST, json={}, headers=viewer),  # refused before the body is looked at
        client.patch(path, json={"name": "Geändert"}, headers=viewer),
        client.delete(path, headers=viewer),
    ]:
        assert response.status_code == 403
        assert response.is_json and response.json["message"]
    assert count() == 1 and reload(subscriber.id).name == "Anna Beispiel"


def test_admin_reaches_every_district(client, district, make_subscriber, make_user, make_token):
    admin = make_token(make_user("admin@lrabb.de", role="admin", districts=()))
    erik = make_subscriber("erik@esslingen.de", "08116")
    assert emails(client.get("/api/v1/districts/08116/subscribers", headers=admin)) == ["erik@esslingen.de"]
    response = client.post("/api/v1/districts/08116/subscribers", headers=admin,
                           json=new(municipality="08116050", topics=["DMS"], consent_source="admin"))
    assert response.status_code == 201 and response.json["district_key"] == "08116"
    assert client.patch(f"/api/v1/subscribers/{erik.id}", headers=admin, json={"name": "Erik"}).status_code == 200


def test_openapi_document_describes_the_subscriber_routes(client):
    from openapi_spec_validator import validate

    document = client.get("/api/openapi.json").json
    validate(document)
    assert set(document["paths"]["/api/v1/districts/{key}/subscribers"]) >= {"get", "post"}
    assert set(document["paths"]["/api/v1/subscribers/{id}"]) >= {"get", "patch", "delete"}
    listing = document["paths"]["/api/v1/districts/{key}/subscribers"]["get"]
    assert {p["name"] for p in listing["parameters"]} >= {"status", "municipality", "topic", "q", "page", "page_size"}
    assert "X-Pagination" in listing["responses"]["200"]["headers"]
