"""The coordinator pages for newsletters: compose with errors that name the line,
preview, audience, test send, send now, schedule, pause/resume/cancel, progress,
district isolation and roles; and `flask newsletter send --wait`."""
import re
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from core.extensions import db
from directory.models import District
from newsletter import services
from newsletter.models import Delivery, Newsletter
from subscribers.models import utcnow
from tests.signin import sign_in_client

MJML_OK = """<mj-section>
  <mj-column>
    <mj-text>Hallo {{ name }} aus {{ municipality }}</mj-text>
  </mj-column>
</mj-section>"""

MJML_UNCLOSED = """<mj-section>
  <mj-column>
    <mj-text>Hallo</mj-text>
  </mj-column>
"""


@pytest.fixture
def world(two_districts, make_subscriber, make_topic):
    """Böblingen with three active subscribers (one with the topic) and one unsubscribed; one in Esslingen."""
    topic = make_topic("service-bw")
    anna = make_subscriber("anna@boeblingen.de", ags="08115003", topics=[topic])
    bert = make_subscriber("bert@sindelfingen.de", ags="08115045", name="Bert Muster")
    carla = make_subscriber("carla@boeblingen.de", ags="08115003", name="Carla")
    make_subscriber("dora@boeblingen.de", status="unsubscribed")
    make_subscriber("emil@esslingen.de", district_key="08116")
    return {"topic": topic, "active": (anna, bert, carla)}


@pytest.fixture
def coordinator(make_user, sign_in):
    sign_in(make_user())


def newsletters():
    return db.session.execute(select(func.count()).select_from(Newsletter)).scalar_one()


def make_newsletter(district_key="08115", subject="Neues aus dem Kreis", body="Hallo {{ name }}!", **fields):
    district = db.session.get(District, district_key)
    newsletter = services.create_newsletter(district, subject, body, **fields)
    db.session.commit()
    return newsletter


def reload(newsletter_id):
    db.session.expire_all()
    return db.session.get(Newsletter, newsletter_id)


def form(subject="Neues aus dem Kreis", body="Hallo {{ name }}!", body_format="markdown", **extra):
    data = {"subject": subject, "body": body, "body_format": body_format, "tracking": "y"}
    data.update(extra)
    return data


def url(newsletter, action="manage"):
    return f"/d/{newsletter.district_key}/newsletters/{newsletter.id}/{action}"


def field_error(html, field):
    match = re.search(rf'<p class="field-error" id="{field}-error">(.*?)</p>', html, re.DOTALL)
    return match and match.group(1)


# --- compose -------------------------------------------------------------------------


def test_new_form_lists_the_placeholders(world, coordinator, client):
    page = client.get("/d/08115/newsletters/new").get_data(as_text=True)
    assert "{{ name }}" in page and "Name der Empfängerin oder des Empfängers" in page
    assert "{{ unsubscribe_url }}" in page
    assert 'type="radio"' in page and 'value="mjml"' in page
    assert "service-bw" in page and "Sindelfingen, Stadt" in page


def test_create_a_newsletter_with_audience(world, coordinator, client):
    response = client.post("/d/08115/newsletters/new", data=form(
        body=MJML_OK, body_format="mjml", topics=[str(world["topic"].id)], municipalities=["08115003"],
    ))
    assert response.status_code == 302
    newsletter = db.session.execute(select(Newsletter)).scalar_one()
    assert response.headers["Location"].endswith(f"/d/08115/newsletters/{newsletter.id}/manage")
    assert newsletter.status == "draft" and newsletter.body_format == "mjml"
    assert [t.name for t in newsletter.topics] == ["service-bw"]
    assert [m.ags for m in newsletter.municipalities] == ["08115003"]
    assert "{{ name }}" in newsletter.compiled_html


@pytest.mark.parametrize("body, body_format, expected", [
    (MJML_UNCLOSED, "mjml", r"MJML-Fehler in Zeile \d+"),
    ("Hallo\n\n{{ name ", "markdown", r"Vorlagenfehler in Zeile 3"),
    ("Hallo {{ vorname }}", "markdown", r"Unbekannter Platzhalter: vorname"),
])
def test_content_errors_are_shown_at_the_body_and_nothing_is_saved(world, coordinator, client, body, body_format,
                                                                      expected):
    response = client.post("/d/08115/newsletters/new", data=form(body=body, body_format=body_format))
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert re.search(expected, field_error(page, "body"))
    assert 'class="error-summary"' in page
    assert newsletters() == 0


def test_a_template_error_in_the_subject_is_shown_at_the_subject(world, coordinator, client):
    response = client.post("/d/08115/newsletters/new", data=form(subject="Hallo {{ name"))
    assert response.status_code == 400
    assert "Vorlagenfehler in Zeile 1" in field_error(response.get_data(as_text=True), "subject")
    assert newsletters() == 0


def test_an_invalid_edit_leaves_the_stored_newsletter_as_it_was(world, coordinator, client):
    newsletter = make_newsletter(body=MJML_OK, body_format="mjml")
    before = newsletter.compiled_html
    response = client.post(url(newsletter, "edit"), data=form(subject="Neu", body=MJML_UNCLOSED, body_format="mjml"))
    assert response.status_code == 400
    assert "MJML-Fehler in Zeile" in field_error(response.get_data(as_text=True), "body")
    newsletter = reload(newsletter.id)
    assert newsletter.subject == "Neues aus dem Kreis" and newsletter.body == MJML_OK
    assert newsletter.compiled_html == before


def test_edit_prefills_and_saves(world, coordinator, client):
    newsletter = make_newsletter(topic_ids=[world["topic"].id])
    page = client.get(url(newsletter, "edit")).get_data(as_text=True)
    assert 'value="Neues aus dem Kreis"' in page
    assert re.search(rf'value="{world["topic"].id}"\s+checked', page)
    response = client.post(url(newsletter, "edit"), data=form(subject="Geändert", body="Neu, {{ name }}", tracking=""))
    assert response.status_code == 302
    newsletter = reload(newsletter.id)
    assert newsletter.subject == "Geändert" and newsletter.tracking is False and newsletter.topics == []


def test_a_newsletter_under_way_can_not_be_edited(world, coordinator, client):
    newsletter = make_newsletter()
    services.send_now(newsletter)
    db.session.commit()
    response = client.post(url(newsletter, "edit"), data=form(subject="Zu spät"))
    assert response.status_code == 302 and response.headers["Location"].endswith(url(newsletter))
    assert reload(newsletter.id).subject == "Neues aus dem Kreis"
    assert "kann nicht mehr geändert werden" in client.get(url(newsletter)).get_data(as_text=True)


# --- detail, preview, audience --------------------------------------------------------------


def test_detail_shows_audience_size_and_sandboxed_previews(world, coordinator, client):
    newsletter = make_newsletter(body="Hallo {{ name }} aus {{ municipality }}")
    response = client.get(url(newsletter))
    page = response.get_data(as_text=True)
    # Three active subscribers; the unsubscribed one and Esslingen's are not counted.
    assert "geht an 3 Empfängerinnen und Empfänger" in page
    frames = re.findall(r"<iframe[^>]*>", page)
    assert len(frames) == 2
    for frame in frames:
        assert 'sandbox=""' in frame and f'src="{url(newsletter, "preview.html")}"' in frame
    assert "preview-frame-desktop" in frames[0] and "preview-frame-mobile" in frames[1]
    # The page's own policy stays strict and it has no inline script.
    assert "script-src" not in response.headers["Content-Security-Policy"]
    assert "'unsafe-inline'" not in response.headers["Content-Security-Policy"]
    assert not re.search(r"<script(?![^>]*\bsrc=)", page) and " style=" not in page
    assert "Hallo Erika Mustermann aus Musterstadt" in page  # the text version


def test_audience_size_follows_topics_and_municipalities(world, coordinator, client):
    newsletter = make_newsletter(topic_ids=[world["topic"].id])
    assert "geht an 1 Empfängerin oder Empfänger" in client.get(url(newsletter)).get_data(as_text=True)
    other = make_newsletter(municipality_ags=["08115045"])
    assert "geht an 1 Empfängerin oder Empfänger" in client.get(url(other)).get_data(as_text=True)


def test_preview_is_its_own_locked_down_document(world, coordinator, client):
    newsletter = make_newsletter(body="Hallo {{ name }}, [Service-BW](https://www.service-bw.de)")
    response = client.get(url(newsletter, "preview.html"))
    assert response.status_code == 200 and response.mimetype == "text/html"
    policy = response.headers["Content-Security-Policy"]
    for part in ("default-src 'none'", "style-src 'unsafe-inline'", "img-src https: data:", "sandbox"):
        assert part in policy
    assert "script-src" not in policy
    html = response.get_data(as_text=True)
    assert "Hallo Erika Mustermann" in html
    # Links as written: the preview counts no clicks and has no pixel.
    assert 'href="https://www.service-bw.de"' in html and "/t/o/" not in html


# --- test send ---------------------------------------------------------------------------


def smtp_client(app, user):
    return sign_in_client(app.test_client(), user)


def test_test_send_reaches_the_smtp_server_marked_as_test(world, make_user, smtp_app, smtp_server):
    newsletter = make_newsletter(subject="Neues für {{ name }}")
    client = smtp_client(smtp_app, make_user())
    response = client.post(url(newsletter, "test"), data={"addresses": "test1@lrabb.de,\n test2@lrabb.de"})
    assert response.status_code == 302
    messages = smtp_server.wait_for(2)
    assert sorted(m["To"] for m in messages) == ["test1@lrabb.de", "test2@lrabb.de"]
    assert all(m["Subject"] == "[TEST] Neues für Erika Mustermann" for m in messages)
    # Not counted: no delivery rows, the newsletter is still a draft.
    assert db.session.execute(select(func.count()).select_from(Delivery)).scalar_one() == 0
    assert reload(newsletter.id).status == "draft"


def test_test_send_refuses_bad_and_too_many_addresses(world, coordinator, client):
    newsletter = make_newsletter()
    response = client.post(url(newsletter, "test"), data={"addresses": "kein-adresse"})
    assert response.status_code == 400
    assert "Ungültige E-Mail-Adresse" in field_error(response.get_data(as_text=True), "addresses")
    many = ", ".join(f"t{i}@lrabb.de" for i in range(11))
    response = client.post(url(newsletter, "test"), data={"addresses": many})
    assert "1 bis 10 Adressen" in field_error(response.get_data(as_text=True), "addresses")


# --- send now, schedule, pause, resume, cancel -------------------------------------------------


def test_send_now_from_the_page_reaches_every_subscriber_once(world, make_user, smtp_app, smtp_server, run_jobs):
    newsletter = make_newsletter(body="Hallo {{ name }}")
    client = smtp_client(smtp_app, make_user())
    response = client.post(url(newsletter, "send"), data={"confirm": "y"})
    assert response.status_code == 302
    assert reload(newsletter.id).status == "sending"
    run_jobs()
    messages = smtp_server.wait_for(3)
    assert sorted(m["To"] for m in messages) == ["anna@boeblingen.de", "bert@sindelfingen.de", "carla@boeblingen.de"]
    run_jobs()  # a rerun sends nothing twice
    assert len(smtp_server.messages) == 3
    newsletter = reload(newsletter.id)
    assert newsletter.status == "sent"
    page = client.get(url(newsletter)).get_data(as_text=True)
    assert re.search(r'<progress id="progress-bar" aria-labelledby="progress-heading" max="3" value="3">', page)
    assert "2 von 2" in page  # both municipalities reached
    assert "progress.js" not in page  # nothing left to follow
    assert client.get(url(newsletter, "progress.json")).json["sent"] == 3


def test_send_now_needs_the_confirmation(world, coordinator, client):
    newsletter = make_newsletter()
    response = client.post(url(newsletter, "send"), data={})
    assert response.status_code == 400
    assert "Bitte bestätigen Sie den Versand." in response.get_data(as_text=True)
    assert reload(newsletter.id).status == "draft"
    assert db.session.execute(select(func.count()).select_from(Delivery)).scalar_one() == 0


def test_scheduling_in_the_past_is_refused(world, coordinator, client):
    newsletter = make_newsletter()
    yesterday = (datetime.now(timezone.utc) - timedelta(days=1)).date()
    response = client.post(url(newsletter, "schedule"), data={"date": yesterday.isoformat(), "time": "09:00"})
    assert response.status_code == 400
    assert "in der Zukunft" in field_error(response.get_data(as_text=True), "date")
    newsletter = reload(newsletter.id)
    assert newsletter.status == "draft" and newsletter.scheduled_at is None


# Next year: in the future, and before 2037, where pytz (Babel's display) stops knowing summer time.
NEXT_YEAR = datetime.now(timezone.utc).year + 1


@pytest.mark.parametrize("day, utc_hour", [(f"{NEXT_YEAR}-07-01", 8), (f"{NEXT_YEAR}-01-15", 9)])
def test_scheduling_reads_berlin_time_and_stores_utc(world, coordinator, client, day, utc_hour):
    newsletter = make_newsletter()
    response = client.post(url(newsletter, "schedule"), data={"date": day, "time": "10:30"})
    assert response.status_code == 302
    newsletter = reload(newsletter.id)
    assert newsletter.status == "scheduled"
    expected = datetime.fromisoformat(day).replace(hour=utc_hour, minute=30, tzinfo=timezone.utc)
    assert newsletter.scheduled_at == expected
    page = client.get(url(newsletter)).get_data(as_text=True)
    assert f"{day[8:10]}.{day[5:7]}.{day[:4]} 10:30" in page  # shown in Berlin time again
    assert 'value="10:30"' in page


def test_pause_resume_and_cancel(world, coordinator, client):
    newsletter = make_newsletter()
    response = client.post(url(newsletter, "pause"))
    assert response.status_code == 302 and reload(newsletter.id).status == "draft"
    assert "Nur ein laufender Versand kann angehalten werden." in client.get(url(newsletter)).get_data(as_text=True)

    client.post(url(newsletter, "send"), data={"confirm": "y"})
    assert reload(newsletter.id).status == "sending"
    page = client.get(url(newsletter)).get_data(as_text=True)
    assert "Anhalten" in page and "progress.js" in page and "data-progress-url" in page
    client.post(url(newsletter, "pause"))
    assert reload(newsletter.id).status == "paused"
    assert "Fortsetzen" in client.get(url(newsletter)).get_data(as_text=True)
    client.post(url(newsletter, "resume"))
    assert reload(newsletter.id).status == "sending"
    client.post(url(newsletter, "cancel"))
    newsletter = reload(newsletter.id)
    assert newsletter.status == "cancelled" and newsletter.finished_at is not None
    # Queued rows are gone: nothing is sent after a cancel.
    assert db.session.execute(select(func.count()).select_from(Delivery)).scalar_one() == 0
    client.post(url(newsletter, "resume"))
    assert reload(newsletter.id).status == "cancelled"


def test_a_second_send_or_a_late_schedule_is_refused_on_the_page(world, coordinator, client):
    newsletter = make_newsletter()
    assert client.post(url(newsletter, "send"), data={"confirm": "y"}).status_code == 302
    response = client.post(url(newsletter, "send"), data={"confirm": "y"})
    assert response.status_code == 302 and response.headers["Location"].endswith(url(newsletter))
    response = client.post(url(newsletter, "schedule"), data={"date": f"{NEXT_YEAR}-01-15", "time": "10:00"})
    assert response.status_code == 302
    page = client.get(url(newsletter)).get_data(as_text=True)
    assert "wird bereits versendet oder ist abgeschlossen" in page
    assert db.session.execute(select(func.count()).select_from(Delivery)).scalar_one() == 3
    assert reload(newsletter.id).status == "sending"


def test_progress_json(world, coordinator, client):
    newsletter = make_newsletter()
    client.post(url(newsletter, "send"), data={"confirm": "y"})
    data = client.get(url(newsletter, "progress.json")).json
    assert data["status"] == "sending" and data["finished"] is False
    assert data["total"] == 3 and data["counts"]["queued"] == 3 and data["sent"] == 0 and data["percent"] == 0


def test_list_shows_status_time_and_progress(world, coordinator, client):
    draft = make_newsletter(subject="Entwurf A")
    scheduled = make_newsletter(subject="Geplant B")
    services.schedule(scheduled, datetime(2099, 3, 2, 8, 0, tzinfo=timezone.utc))
    sending = make_newsletter(subject="Läuft C")
    services.send_now(sending)
    db.session.commit()
    page = client.get("/d/08115/newsletters/manage").get_data(as_text=True)
    assert "Entwurf A" in page and "Entwurf" in page
    assert "geplant für 02.03.2099 09:00" in page  # UTC 08:00 is 09:00 in Berlin in March
    assert "wird versendet" in page and "0 von 3 gesendet" in page
    assert f'/d/08115/newsletters/{draft.id}/manage' in page


# --- isolation and roles -----------------------------------------------------------------------


def test_another_districts_newsletter_is_404(world, make_user, sign_in, client):
    esslingen = make_newsletter("08116", subject="Esslingen intern")
    sign_in(make_user())  # Böblingen only
    for action in ("manage", "edit", "preview.html", "progress.json"):
        assert client.get(url(esslingen, action)).status_code == 404, action
    for action in ("send", "test", "schedule", "pause", "resume", "cancel", "edit"):
        assert client.post(url(esslingen, action), data={"confirm": "y"}).status_code == 404, action
    # Nor through the URL of a district one may see.
    assert client.get(f"/d/08115/newsletters/{esslingen.id}/manage").status_code == 404
    assert client.get("/d/08116/newsletters/manage").status_code == 404
    assert reload(esslingen.id).status == "draft"


def test_a_newsletter_is_only_reachable_under_its_own_district(world, make_user, sign_in, client):
    both = make_user("land@bw.de", districts=("08115", "08116"))
    sign_in(both)
    esslingen = make_newsletter("08116")
    assert client.get(url(esslingen)).status_code == 200
    assert client.get(f"/d/08115/newsletters/{esslingen.id}/manage").status_code == 404
    assert client.post(f"/d/08115/newsletters/{esslingen.id}/send", data={"confirm": "y"}).status_code == 404


def test_viewers_read_but_do_not_write(world, make_user, sign_in, client):
    newsletter = make_newsletter()
    sign_in(make_user("lesen@lrabb.de", role="viewer"))
    for action in ("manage", "preview.html", "progress.json"):
        assert client.get(url(newsletter, action)).status_code == 200, action
    page = client.get(url(newsletter)).get_data(as_text=True)
    assert "Jetzt senden" not in page and "Testversand" not in page
    listing = client.get("/d/08115/newsletters/manage")
    assert listing.status_code == 200 and 'href="/d/08115/subscribers"' not in listing.get_data(as_text=True)
    assert client.get("/d/08115/newsletters/new").status_code == 403
    assert client.post("/d/08115/newsletters/new", data=form()).status_code == 403
    for action in ("edit", "send", "test", "schedule", "pause", "resume", "cancel"):
        assert client.post(url(newsletter, action), data={"confirm": "y"}).status_code == 403, action
    assert reload(newsletter.id).status == "draft" and newsletters() == 1


def test_anonymous_visitors_are_sent_to_the_login(world, client):
    newsletter = make_newsletter()
    assert client.get(url(newsletter)).status_code == 302
    assert client.get(url(newsletter, "preview.html")).status_code == 302


# --- flask newsletter send -------------------------------------------------------------------


def cli(app, *args):
    return app.test_cli_runner().invoke(args=["newsletter", *args])


def test_cli_send_and_wait_reports_the_final_counts(world, smtp_app, smtp_server, run_jobs):
    newsletter = make_newsletter()
    result = cli(smtp_app, "send", str(newsletter.id))
    assert result.exit_code == 0, result.output
    assert "an 3 Empfänger begonnen" in result.output
    run_jobs()
    assert len(smtp_server.wait_for(3)) == 3
    result = cli(smtp_app, "send", str(newsletter.id), "--wait")
    assert result.exit_code == 0, result.output
    assert "3/3 gesendet, 0 zurückgestellt, 0 fehlgeschlagen" in result.output
    assert "Versand abgeschlossen." in result.output
    assert len(smtp_server.messages) == 3


def test_cli_wait_finishes_a_send_with_nothing_left(world, app):
    newsletter = make_newsletter()
    services.send_now(newsletter)
    db.session.commit()
    rows = db.session.execute(select(Delivery).where(Delivery.newsletter_id == newsletter.id)).scalars().all()
    rows[0].status = "failed"
    for row in rows[1:]:
        row.status, row.sent_at = "sent", utcnow()
    db.session.commit()
    result = cli(app, "send", str(newsletter.id), "--wait")
    assert result.exit_code == 0, result.output
    assert "wird bereits versendet" in result.output
    assert "2/3 gesendet, 0 zurückgestellt, 1 fehlgeschlagen" in result.output
    assert reload(newsletter.id).status == "sent"


def test_cli_schedule_pause_and_errors(world, app):
    newsletter = make_newsletter()
    result = cli(app, "send", str(newsletter.id), "--at", f"{NEXT_YEAR}-05-04T09:15:00+02:00")
    assert result.exit_code == 0, result.output
    assert f"geplant für 04.05.{NEXT_YEAR} 09:15" in result.output
    assert reload(newsletter.id).scheduled_at == datetime(NEXT_YEAR, 5, 4, 7, 15, tzinfo=timezone.utc)

    result = cli(app, "send", str(newsletter.id), "--at", f"{NEXT_YEAR}-05-04T09:15")
    assert result.exit_code == 2 and "Zeitzone" in result.output

    result = cli(app, "send", "99999")
    assert result.exit_code == 1 and "Newsletter 99999 gibt es nicht." in result.output

    result = cli(app, "pause", str(newsletter.id))
    assert result.exit_code == 1 and "Nur ein laufender Versand" in result.output
    assert cli(app, "cancel", str(newsletter.id)).exit_code == 0
    assert reload(newsletter.id).status == "cancelled"
    result = cli(app, "send", str(newsletter.id))
    assert result.exit_code == 1 and "abgeschlossen" in result.output
    result = cli(app, "send", str(newsletter.id), "--wait")
    assert result.exit_code == 0 and "Versand abgebrochen." in result.output
