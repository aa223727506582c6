"""The newsletter API: create and change with content errors naming the line,
send now or at a time, pause/resume/cancel with their conflicts, test send,
figures in GET; roles and district scoping."""
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from core.extensions import db
from newsletter.models import Delivery, Newsletter, TrackingEvent

LIST = "/api/v1/districts/08115/newsletters"
MJML_UNCLOSED = "<mj-section>\n  <mj-column>\n    <mj-text>Hallo</mj-text>\n  </mj-column>\n"


@pytest.fixture
def world(two_districts, make_subscriber, make_topic):
    topic = make_topic("service-bw")
    make_subscriber("anna@boeblingen.de", ags="08115003", topics=[topic])
    make_subscriber("bert@sindelfingen.de", ags="08115045", name="Bert")
    make_subscriber("emil@esslingen.de", district_key="08116")
    return topic


@pytest.fixture
def headers(make_user, make_token):
    return make_token(make_user())


@pytest.fixture
def esslingen(make_user, make_token):
    return make_token(make_user("koordination@lra-es.de", districts=("08116",)))


@pytest.fixture
def viewer(make_user, make_token):
    return make_token(make_user("lesen@lrabb.de", role="viewer", districts=("08115",)))


def body(**fields):
    data = {"subject": "Neues aus dem Kreis", "body": "Hallo {{ name }}!"}
    data.update(fields)
    return data


def create(client, headers, **fields):
    response = client.post(LIST, json=body(**fields), headers=headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def count(model=Newsletter):
    return db.session.execute(select(func.count()).select_from(model)).scalar_one()


def status_of(newsletter_id):
    db.session.expire_all()
    return db.session.get(Newsletter, newsletter_id).status


# --- create, read, change ------------------------------------------------------------


def test_create_returns_the_newsletter_with_audience(world, client, headers):
    response = client.post(LIST, json=body(topics=["SERVICE-BW"], municipalities=["08115003"], tracking=False),
                           headers=headers)
    assert response.status_code == 201
    data = response.get_json()
    assert response.headers["Location"].endswith(f"/api/v1/newsletters/{data['id']}")
    assert data["status"] == "draft" and data["district_key"] == "08115" and data["body_format"] == "markdown"
    assert data["topics"] == ["service-bw"] and data["municipalities"] == ["08115003"]
    assert data["tracking"] is False and data["audience_size"] == 1 and data["web_url"] is None
    assert data["stats"]["recipients"] == 0 and data["stats"]["district_municipalities"] == 2


@pytest.mark.parametrize("fields, field, expected", [
    ({"body": MJML_UNCLOSED, "body_format": "mjml"}, "body", "MJML-Fehler in Zeile"),
    ({"body": "Hallo\n{{ name "}, "body", "Vorlagenfehler in Zeile 2"),
    ({"body": "{{ vorname }}"}, "body", "Unbekannter Platzhalter: vorname"),
    ({"subject": "{% if %}"}, "subject", "Vorlagenfehler in Zeile 1"),
    ({"topics": ["gibt-es-nicht"]}, "topics", "Unbekanntes Thema: gibt-es-nicht"),
    ({"municipalities": ["08116019"]}, "municipalities", "Unbekannte Gemeinde: 08116019"),
    ({"subject": "  "}, "subject", "Betreff"),
])
def test_create_refuses_bad_content_with_422_naming_the_field(world, client, headers, fields, field, expected):
    response = client.post(LIST, json=body(**fields), headers=headers)
    assert response.status_code == 422
    data = response.get_json()
    assert expected in data["message"]
    assert expected in data["errors"]["json"][field][0]
    assert count() == 0


def test_get_and_patch(world, client, headers):
    created = create(client, headers)
    response = client.get(f"/api/v1/newsletters/{created['id']}", headers=headers)
    assert response.status_code == 200 and response.get_json()["audience_size"] == 2
    response = client.patch(f"/api/v1/newsletters/{created['id']}",
                            json={"subject": "Geändert", "topics": ["service-bw"]}, headers=headers)
    assert response.status_code == 200
    data = response.get_json()
    assert data["subject"] == "Geändert" and data["body"] == "Hallo {{ name }}!" and data["audience_size"] == 1

    response = client.patch(f"/api/v1/newsletters/{created['id']}", json={"body": MJML_UNCLOSED, "body_format": "mjml"},
                            headers=headers)
    assert response.status_code == 422 and "Zeile" in response.get_json()["errors"]["json"]["body"][0]
    db.session.expire_all()
    newsletter = db.session.get(Newsletter, created["id"])
    assert newsletter.body_format == "markdown" and newsletter.body == "Hallo {{ name }}!"


def test_a_sent_newsletter_can_not_be_changed(world, client, headers):
    created = create(client, headers)
    assert client.post(f"/api/v1/newsletters/{created['id']}/send", headers=headers, json={}).status_code == 202
    response = client.patch(f"/api/v1/newsletters/{created['id']}", json={"subject": "Zu spät"}, headers=headers)
    assert response.status_code == 409
    assert "kann nicht mehr geändert werden" in response.get_json()["message"]
    # Also when the change itself would be invalid: the state answers first.
    response = client.patch(f"/api/v1/newsletters/{created['id']}", json={"topics": ["nein"]}, headers=headers)
    assert response.status_code == 409
    # Content and archive together: the content refuses, and the archive switch does not change either.
    response = client.patch(f"/api/v1/newsletters/{created['id']}", json={"subject": "Zu spät",
                                                                         "published_in_archive": True}, headers=headers)
    assert response.status_code == 409
    assert client.get(f"/api/v1/newsletters/{created['id']}", headers=headers).get_json()["published_in_archive"] is False


def test_the_archive_switch_works_after_sending(world, client, headers, viewer):
    created = create(client, headers)
    assert created["published_in_archive"] is False and created["web_url"] is None
    assert client.post(f"/api/v1/newsletters/{created['id']}/send", headers=headers, json={}).status_code == 202
    assert client.get(f"/d/08115/newsletters/{created['id']}").status_code == 404
    path = f"/api/v1/newsletters/{created['id']}"
    assert client.patch(path, json={"published_in_archive": True}, headers=viewer).status_code == 403
    response = client.patch(path, json={"published_in_archive": True}, headers=headers)
    assert response.status_code == 200
    data = response.get_json()
    assert data["published_in_archive"] is True and data["web_url"].endswith(f"/d/08115/newsletters/{created['id']}")
    assert client.get(f"/d/08115/newsletters/{created['id']}").status_code == 200
    response = client.patch(path, json={"published_in_archive": "vielleicht"}, headers=headers)
    assert response.status_code == 422
    response = client.patch(path, json={"published_in_archive": False}, headers=headers)
    assert response.status_code == 200 and response.get_json()["web_url"] is None
    assert client.get(f"/d/08115/newsletters/{created['id']}").status_code == 404


# --- send, schedule, pause, resume, cancel ------------------------------------------------


def test_send_now_delivers_to_every_subscriber_once(world, make_user, make_token, smtp_app, smtp_server, run_jobs):
    client = smtp_app.test_client()
    headers = make_token(make_user())
    created = create(client, headers, published_in_archive=True)
    response = client.post(f"/api/v1/newsletters/{created['id']}/send", json={}, headers=headers)
    assert response.status_code == 202
    data = response.get_json()
    assert data["status"] == "sending" and data["stats"]["queued"] == 2 and data["audience_size"] is None
    run_jobs()
    messages = smtp_server.wait_for(2)
    assert sorted(m["To"] for m in messages) == ["anna@boeblingen.de", "bert@sindelfingen.de"]
    data = client.get(f"/api/v1/newsletters/{created['id']}", headers=headers).get_json()
    assert data["status"] == "sent" and data["web_url"].endswith(f"/d/08115/newsletters/{created['id']}")
    stats = data["stats"]
    assert stats["sent"] == 2 and stats["recipients"] == 2 and stats["queued"] == 0
    assert stats["municipalities_reached"] == 2 and stats["district_municipalities"] == 2
    assert stats["opens_human"] == 0 and stats["clicks"] == 0
    response = client.post(f"/api/v1/newsletters/{created['id']}/send", json={}, headers=headers)
    assert response.status_code == 409
    run_jobs()
    assert len(smtp_server.messages) == 2


def test_stats_count_opens_and_clicks(world, client, headers):
    created = create(client, headers)
    client.post(f"/api/v1/newsletters/{created['id']}/send", json={}, headers=headers)
    deliveries = db.session.execute(select(Delivery).order_by(Delivery.id)).scalars().all()
    for delivery in deliveries:
        delivery.status, delivery.sent_at = "sent", datetime.now(timezone.utc) - timedelta(hours=1)
    db.session.add(TrackingEvent(delivery_id=deliveries[0].id, district_key="08115", kind="open", machine=False))
    db.session.add(TrackingEvent(delivery_id=deliveries[1].id, district_key="08115", kind="open", machine=True))
    db.session.commit()
    stats = client.get(f"/api/v1/newsletters/{created['id']}", headers=headers).get_json()["stats"]
    assert stats["opens_human"] == 1 and stats["opens_machine"] == 1 and stats["municipalities_opened"] == 1


def test_send_at_schedules_in_utc(world, client, headers):
    created = create(client, headers)
    at = (datetime.now(timezone.utc) + timedelta(days=3)).replace(microsecond=0)
    local = at.astimezone(timezone(timedelta(hours=2)))
    response = client.post(f"/api/v1/newsletters/{created['id']}/send", json={"at": local.isoformat()},
                           headers=headers)
    assert response.status_code == 202
    data = response.get_json()
    assert data["status"] == "scheduled"
    assert datetime.fromisoformat(data["scheduled_at"]) == at
    db.session.expire_all()
    assert db.session.get(Newsletter, created["id"]).scheduled_at == at
    assert count(Delivery) == 0


@pytest.mark.parametrize("at, expected", [
    ("2020-01-01T09:00:00+01:00", "in der Zukunft"),
    ("2099-01-01T09:00:00", "Zeitzone"),
])
def test_send_at_refuses_the_past_and_naive_times(world, client, headers, at, expected):
    created = create(client, headers)
    response = client.post(f"/api/v1/newsletters/{created['id']}/send", json={"at": at}, headers=headers)
    assert response.status_code == 422
    assert expected in response.get_json()["errors"]["json"]["at"][0]
    assert status_of(created["id"]) == "draft"


def test_pause_resume_cancel_and_their_conflicts(world, client, headers):
    created = create(client, headers)
    base = f"/api/v1/newsletters/{created['id']}"
    for action in ("pause", "resume", "cancel"):
        response = client.post(f"{base}/{action}", headers=headers)
        assert response.status_code == 409, action
        assert response.get_json()["message"].startswith("Nur ")
    assert status_of(created["id"]) == "draft"

    client.post(f"{base}/send", json={}, headers=headers)
    assert client.post(f"{base}/resume", headers=headers).status_code == 409
    response = client.post(f"{base}/pause", headers=headers)
    assert response.status_code == 200 and response.get_json()["status"] == "paused"
    assert client.post(f"{base}/pause", headers=headers).status_code == 409
    response = client.post(f"{base}/resume", headers=headers)
    assert response.status_code == 200 and response.get_json()["status"] == "sending"
    response = client.post(f"{base}/cancel", headers=headers)
    assert response.status_code == 200 and response.get_json()["status"] == "cancelled"
    assert response.get_json()["stats"]["queued"] == 0
    for action in ("pause", "resume", "cancel"):
        assert client.post(f"{base}/{action}", headers=headers).status_code == 409
    assert client.post(f"{base}/send", json={}, headers=headers).status_code == 409


# --- test send ----------------------------------------------------------------------------


def test_test_send(world, make_user, make_token, smtp_app, smtp_server):
    client = smtp_app.test_client()
    headers = make_token(make_user())
    created = create(client, headers)
    response = client.post(f"/api/v1/newsletters/{created['id']}/test", json={"addresses": ["Test@LRABB.de"]},
                           headers=headers)
    assert response.status_code == 200 and response.get_json() == {"sent_to": ["Test@lrabb.de"]}
    message = smtp_server.wait_for(1)[0]
    assert message["Subject"] == "[TEST] Neues aus dem Kreis"
    assert count(Delivery) == 0

    response = client.post(f"/api/v1/newsletters/{created['id']}/test", json={"addresses": ["nein"]}, headers=headers)
    assert response.status_code == 422 and "addresses" in response.get_json()["errors"]["json"]
    response = client.post(f"/api/v1/newsletters/{created['id']}/test", json={"addresses": []}, headers=headers)
    assert response.status_code == 422


def test_test_send_with_the_mail_server_down_is_503(world, make_user, make_token, make_app):
    from tests.conftest import free_port

    app = make_app(MAIL_SERVER="127.0.0.1", MAIL_PORT=free_port())
    with app.app_context():
        client = app.test_client()
        headers = make_token(make_user())
        created = create(client, headers)
        response = client.post(f"/api/v1/newsletters/{created['id']}/test", json={"addresses": ["t@lrabb.de"]},
                               headers=headers)
        assert response.status_code == 503 and "Mailserver" in response.get_json()["message"]


# --- isolation and roles --------------------------------------------------------------------


def test_another_district_is_404(world, client, headers, esslingen):
    created = create(client, headers)
    base = f"/api/v1/newsletters/{created['id']}"
    assert client.get(base, headers=esslingen).status_code == 404
    assert client.patch(base, json={"subject": "x"}, headers=esslingen).status_code == 404
    for action in ("send", "pause", "resume", "cancel"):
        assert client.post(f"{base}/{action}", json={}, headers=esslingen).status_code == 404, action
    assert client.post(f"{base}/test", json={"addresses": ["a@b.de"]}, headers=esslingen).status_code == 404
    # The district and the row come first: an invalid body for a foreign district is still 404.
    assert client.post(f"{base}/test", json={}, headers=esslingen).status_code == 404
    assert client.patch(base, json={"body_format": "html"}, headers=esslingen).status_code == 404
    assert client.post(LIST, json={}, headers=esslingen).status_code == 404
    assert client.get(LIST, headers=esslingen).status_code == 404
    assert status_of(created["id"]) == "draft"


def test_viewers_read_only(world, client, headers, viewer):
    created = create(client, headers)
    base = f"/api/v1/newsletters/{created['id']}"
    assert client.get(base, headers=viewer).status_code == 200
    assert [n["id"] for n in client.get(LIST, headers=viewer).get_json()] == [created["id"]]
    assert client.post(LIST, json=body(), headers=viewer).status_code == 403
    assert client.patch(base, json={"subject": "x"}, headers=viewer).status_code == 403
    for action in ("send", "pause", "resume", "cancel"):
        assert client.post(f"{base}/{action}", json={}, headers=viewer).status_code == 403, action
    assert client.post(f"{base}/test", json={"addresses": ["a@b.de"]}, headers=viewer).status_code == 403
    assert status_of(created["id"]) == "draft" and count() == 1


def test_without_token_401(world, client):
    assert client.get(LIST).status_code == 401
    assert client.post(LIST, json=body()).status_code == 401


def test_openapi_documents_the_routes(world, client):
    paths = client.get("/api/openapi.json").get_json()["paths"]
    for path in ("/api/v1/districts/{key}/newsletters", "/api/v1/newsletters/{id}", "/api/v1/newsletters/{id}/send",
                 "/api/v1/newsletters/{id}/pause", "/api/v1/newsletters/{id}/resume",
                 "/api/v1/newsletters/{id}/cancel", "/api/v1/newsletters/{id}/test"):
        assert path in paths, path
