"""The main journeys in a real browser, in German and English, at 1280 px and 375 px.

Each journey is a plain function of a `Browser` (conftest.py) and the rows it
needs; every page it reaches goes through `ui.check_page(name)` (axe-core WCAG
2.1 A/AA, tables in scroll regions, no horizontal overflow at 375 px). To cover
a new page: visit it in a journey and call `ui.check_page("a name")`.
Links that people follow from mails are taken from the mails the suite's SMTP
server received, so they also show that the mails point at the live server.
"""
from datetime import timedelta

import pytest

from core.extensions import db

PASSWORD = "Browser-Test-Passwort-2026"
CSV = "email,name,ags\ncsv.eins@boeblingen.de,Carla CSV,08115003\ncsv.zwei@sindelfingen.de,Chris CSV,08115045\n"


@pytest.fixture
def world(two_districts, make_user, make_topic, make_subscriber):
    """Böblingen with a topic, two active subscribers and its coordinator."""
    topic = make_topic("service-bw")
    anna = make_subscriber("anna@boeblingen.de", ags="08115003", topics=[topic])
    make_subscriber("bert@sindelfingen.de", ags="08115045", name="Bert Muster")
    coordinator = make_user("koordination@lrabb.de", password=PASSWORD)
    return {"topic": topic, "anna": anna, "coordinator": coordinator}


# --- steps ------------------------------------------------------------------------------------------


def button(ui, german, english):
    return ui.page.get_by_role("button", name=ui.t(german, english), exact=True)


def link(ui, german, english):
    return ui.page.get_by_role("link", name=ui.t(german, english), exact=True)


def log_in(ui, user):
    """The login form, after choosing the language in the footer."""
    ui.goto("/login")
    ui.switch_language()
    ui.check_page("login")
    ui.page.fill("#email", user.email)
    ui.page.fill("#password", PASSWORD)
    ui.page.locator("main form button[type=submit]").click()
    ui.page.wait_for_load_state()
    assert ui.page.get_by_role("button", name=ui.t("Abmelden", "Log out")).count() == 1, ui.page.url


def run_jobs_now(run_jobs):
    """The queued jobs (mails), in this process, as the rest of the suite runs them."""
    run_jobs()
    db.session.remove()


# --- coordinator journeys -------------------------------------------------------------------------


def subscribers_journey(ui, tmp_path):
    page = ui.page
    ui.goto("/d/08115/", "district overview")
    page.locator(".district-nav").get_by_role("link", name=ui.t("Abonnenten", "Subscribers")).click()
    ui.check_page("subscriber list")

    link(ui, "Abonnent hinzufügen", "Add subscriber").click()
    ui.check_page("add subscriber")
    page.fill("#email", "neu@boeblingen.de")
    page.fill("#name", "Nora Neu")
    page.select_option("#municipality", "08115045")
    page.locator("main form button[type=submit]").click()
    page.wait_for_load_state()
    assert "neu@boeblingen.de" in page.locator("h1").inner_text()
    ui.check_page("subscriber")
    page.get_by_role("link", name=ui.t("Daten löschen …", "Delete data …")).click()
    ui.check_page("subscriber: erase (confirmation)")

    ui.goto("/d/08115/subscribers")
    link(ui, "CSV importieren", "Import CSV").click()
    ui.check_page("import: upload")
    upload = tmp_path / "liste.csv"
    upload.write_text(CSV, encoding="utf-8")
    page.set_input_files("#file", str(upload))
    button(ui, "Datei prüfen", "Check file").click()
    page.wait_for_load_state()
    ui.check_page("import: preview")
    page.locator("main form button[type=submit]").first.click()
    page.wait_for_load_state()
    ui.check_page("import: done")
    ui.goto("/d/08115/subscribers?q=csv", "subscriber list: search")
    assert page.locator("main table tbody tr").count() == 2
    for path, name in (("/d/08115/topics", "topics"), ("/d/08115/subscribers/municipalities", "subscribers per municipality"),
                       ("/d/08115/subscribers/embed", "embed form")):
        ui.goto(path, name)


def newsletter_journey(ui, run_jobs):
    page = ui.page
    ui.goto("/d/08115/newsletters/manage", "newsletter list")
    link(ui, "Neuer Newsletter", "New newsletter").click()
    ui.check_page("compose")
    page.fill("#subject", "Neues aus dem Kreis")
    page.fill("#preheader", "Termine und Neuigkeiten")
    page.fill("#body", "Guten Tag {{ name }},\n\n**service-bw** hat neue Funktionen.\n\n[Mehr dazu](https://www.service-bw.de/)")
    page.locator("main form button[type=submit]").first.click()
    page.wait_for_load_state()
    assert page.locator("h1").inner_text() == "Neues aus dem Kreis"
    ui.check_page("newsletter: preview and sending")
    preview = page.locator("iframe.preview-frame-desktop").get_attribute("src")
    ui.goto(preview)  # the mail as it will look; a mail document, not a page of the service

    ui.page.go_back()
    page.fill("#addresses", "test-leser@lrabb.de")
    button(ui, "Testmail senden", "Send test email").click()
    page.wait_for_load_state()
    ui.check_page("newsletter: test sent")
    run_jobs_now(run_jobs)
    assert "[TEST]" in ui.mail_to("test-leser@lrabb.de")["Subject"]

    page.check("#confirm")
    page.locator("form[action$='/send'] button[type=submit]").click()
    page.wait_for_load_state()
    assert page.locator("[data-progress-url]").count() == 1, "no live progress while sending"
    ui.check_page("newsletter: sending")
    run_jobs_now(run_jobs)
    # progress.js polls and reloads the page when the send has finished.
    page.get_by_text(ui.t("Der Versand ist abgeschlossen.", "Sending is complete."), exact=True).wait_for(timeout=20000)
    assert page.locator("progress").get_attribute("value") == page.locator("progress").get_attribute("max")
    ui.check_page("newsletter: sent")
    ui.mail_to("anna@boeblingen.de")
    return page.url.rsplit("/", 2)[-2]


def workshop_journey(ui, run_jobs, kind="workshop"):
    """Create, publish and invite; returns the invitation mail of Anna."""
    page = ui.page
    office = kind == "office_hours"
    ui.goto("/d/08115/events", "event list")
    link(ui, *(("Neue Sprechstunde", "New office hours") if office else ("Neuer Workshop", "New workshop"))).click()
    ui.check_page("new office hours" if office else "new workshop")
    day = _next_week()
    page.fill("#title", "Sprechstunde OZG" if office else "Workshop E-Akte")
    page.fill("#location", "Landratsamt Böblingen, Parkstraße 16, 71034 Böblingen")
    page.fill("#date", day.isoformat())
    page.fill("#starts_at", "09:00")
    page.fill("#ends_at", "11:00")
    if office:
        page.fill("#rrule", "FREQ=WEEKLY;COUNT=2")
        page.fill("#slot_minutes", "60")
    else:
        page.fill("#capacity", "10")
    page.locator("main form button[type=submit]").first.click()
    page.wait_for_load_state()
    ui.check_page("office hours" if office else "workshop")
    publish = button(ui, "Veröffentlichen", "Publish")
    if publish.count():
        publish.click()
        page.wait_for_load_state()
        ui.check_page("office hours: published" if office else "workshop: published")
    button(ui, "Einladungen senden", "Send invitations").click()
    page.wait_for_load_state()
    ui.check_page("office hours: invited" if office else "workshop: invited")
    run_jobs_now(run_jobs)
    return ui.mail_to("anna@boeblingen.de")


def _next_week():
    from datetime import date

    return date.today() + timedelta(days=8)


# --- attendee journeys ------------------------------------------------------------------------------


def rsvp_journey(ui, invitation):
    page = ui.page
    ui.goto(ui.link_in(invitation, r"^/rsvp/.+/accept$"))
    ui.switch_language()
    ui.check_page("rsvp")
    button(ui, "Zusagen", "Accept").click()
    page.wait_for_load_state()
    ui.check_page("rsvp: answered")


def booking_journey(ui, invitation):
    page = ui.page
    ui.goto(ui.link_in(invitation, r"^/book/"))
    ui.switch_language()
    ui.check_page("book a slot")
    page.locator("input[name=slot]").first.check()
    button(ui, "Termin buchen", "Book a time slot").click()
    page.wait_for_load_state()
    ui.check_page("booked")


def subscription_journey(ui, run_jobs):
    page = ui.page
    ui.goto("/d/08115/subscribe")
    ui.switch_language()
    ui.check_page("subscribe")
    page.fill("#email", "paula@sindelfingen.de")
    page.fill("#name", "Paula Public")
    page.select_option("#municipality", "08115045")
    page.check("#consent")
    button(ui, "Abonnieren", "Subscribe").click()
    page.wait_for_load_state()
    ui.check_page("subscribe: check your inbox")
    run_jobs_now(run_jobs)
    confirmation = ui.mail_to("paula@sindelfingen.de")

    ui.goto(ui.link_in(confirmation, r"^/confirm/"), "confirm")
    button(ui, "Anmeldung bestätigen", "Confirm subscription").click()
    page.wait_for_load_state()
    ui.check_page("confirmed")
    run_jobs_now(run_jobs)

    ui.goto(ui.link_in(confirmation, r"^/preferences/"), "preferences")
    page.fill("#department", "Hauptamt")
    page.locator("main form button[type=submit]").first.click()
    page.wait_for_load_state()
    ui.check_page("preferences: saved")
    assert page.locator("#department").input_value() == "Hauptamt"

    button(ui, "Vom Newsletter abmelden", "Unsubscribe from the newsletter").click()
    page.wait_for_load_state()
    ui.check_page("unsubscribed")

    ui.goto(ui.link_in(confirmation, r"^/unsubscribe/"), "unsubscribe (from the mail)")
    ui.goto(ui.link_in(confirmation, r"^/preferences/") + "/delete", "delete my data")


def public_pages_journey(ui, workshop_title):
    page = ui.page
    ui.goto("/d/08115/veranstaltungen")
    ui.switch_language()
    ui.check_page("public events")
    register = page.get_by_role("link", name=ui.t(f"Anmelden: {workshop_title}", f"Register: {workshop_title}"))
    assert register.inner_text() == ui.t("Anmelden", "Register")
    register.click()
    ui.check_page("public registration")
    page.fill("#name", "Rita Rathaus")
    page.fill("#email", "rita@sindelfingen.de")
    page.select_option("#municipality", "08115045")
    page.check("#privacy")
    button(ui, "Einladung anfordern", "Request an invitation").click()
    page.wait_for_load_state()
    ui.check_page("public registration: check your inbox")
    ui.goto("/d/08115/newsletters", "public archive")


# --- the tests ------------------------------------------------------------------------------------------


def test_log_in_and_manage_subscribers(ui, world, tmp_path):
    log_in(ui, world["coordinator"])
    ui.check_page("start")
    subscribers_journey(ui, tmp_path)
    ui.assert_clean()


def test_compose_test_send_and_send_a_newsletter(ui, world, run_jobs):
    log_in(ui, world["coordinator"])
    newsletter_id = newsletter_journey(ui, run_jobs)
    ui.goto("/d/08115/newsletters", "public archive")
    # The newsletter is German, whatever the reader chose.
    ui.goto(f"/d/08115/newsletters/{newsletter_id}")
    ui.check_page("archive: web version", lang="de")
    ui.assert_clean()


def test_workshop_invitation_and_rsvp(ui, world, run_jobs):
    log_in(ui, world["coordinator"])
    invitation = workshop_journey(ui, run_jobs)
    # The attendee, in a browser of her own.
    attendee = ui.fresh()
    rsvp_journey(attendee, invitation)
    attendee.assert_clean()
    ui.assert_clean()


def test_office_hours_invitation_and_booking(ui, world, run_jobs):
    log_in(ui, world["coordinator"])
    invitation = workshop_journey(ui, run_jobs, kind="office_hours")
    attendee = ui.fresh()
    booking_journey(attendee, invitation)
    attendee.assert_clean()
    ui.assert_clean()


def test_check_in(ui, world, make_event):
    from events import services
    from events.models import Registration
    from subscribers.models import utcnow

    event = make_event(starts_at=utcnow() + timedelta(hours=2))
    services.invite(event)
    for registration in db.session.scalars(db.select(Registration).filter_by(event_id=event.id)):
        services.respond(registration, "accept")
    db.session.commit()
    log_in(ui, world["coordinator"])
    ui.goto(f"/d/08115/events/{event.id}", "event with registrations")
    ui.page.get_by_role("link", name=ui.t("Check-in-Liste", "Check-in list")).click()
    ui.check_page("check-in")
    ui.page.locator("input[type=radio][value=attended]").first.check()
    button(ui, "Teilnahme speichern", "Save attendance").click()
    ui.page.wait_for_load_state()
    ui.check_page("check-in: saved")
    assert ui.page.locator("input[type=radio][value=attended]").first.is_checked()
    ui.goto(f"/d/08115/events/{event.id}/cancel", "cancel event (confirmation)")
    ui.assert_clean()


def test_subscribe_confirm_preferences_unsubscribe(ui, world, run_jobs):
    subscription_journey(ui, run_jobs)
    ui.assert_clean()


def test_public_events_and_archive(ui, world, make_event):
    make_event(title="Workshop E-Rechnung")
    make_event(kind="office_hours")
    public_pages_journey(ui, "Workshop E-Rechnung")
    ui.assert_clean()


def test_reach_pages(ui, app, make_user):
    """The reach pages with the known history of the reach tests: figures, charts and tables."""
    from tests.reach_history import A, build_known_history

    build_known_history()
    log_in(ui, make_user(password=PASSWORD))
    period = "?zeitraum=frei&von=2026-01-01&bis=2026-12-01"
    ui.goto("/reichweite" + period, "reach: state")
    ui.goto("/d/08115/reichweite" + period, "reach: district")
    assert ui.page.locator("main table").count() >= 3 and ui.page.locator("main svg").count() >= 1
    ui.goto(f"/d/08115/reichweite/gemeinde/{A}" + period, "reach: municipality")
    ui.assert_clean()


def test_admin_pages(ui, world, make_user):
    admin = make_user("admin@lrabb.de", role="admin", districts=(), password=PASSWORD)
    log_in(ui, admin)
    ui.goto("/districts", "districts")
    ui.goto("/admin/users", "users")
    ui.goto("/admin/users/new", "new user")
    ui.goto(f"/admin/users/{world['coordinator'].id}", "edit user")
    ui.goto("/admin/outbox", "outbox")
    ui.goto("/account/password", "my account")
    ui.goto("/d/08115/kontakte", "contacts")
    ui.goto("/d/08115/kontakte/neu", "new contact")
    response = ui.page.goto(ui.url("/d/08115/subscribers/999999"))
    assert response.status == 404
    ui.check_page("not found")
    ui.assert_clean()


# --- the checks themselves ------------------------------------------------------------------------------

BAD_PAGE = """<!doctype html><html lang="{lang}"><head><title>Kaputt</title></head><body>
<main><h1>Kaputt</h1>
<p style="color:#aaa">Zu wenig Kontrast</p>
<input type="text">
<p><a href="/x" aria-label="Anmelden: Workshop">Log in</a></p>
<table><tr><th>A</th></tr><tr><td>1</td></tr></table>
<div style="width:900px">breit</div>
</main></body></html>"""


@pytest.mark.parametrize("viewport", ["narrow"], indirect=True)
@pytest.mark.parametrize("language", ["en"], indirect=True)
def test_the_checks_find_what_they_look_for(ui):
    """A page with one of each problem: every check must name it, or a clean journey proves nothing."""
    ui.page.route(ui.url("/kaputt"), lambda route: route.fulfill(
        body=BAD_PAGE.format(lang="en"), content_type="text/html; charset=utf-8"))
    ui.goto("/kaputt")
    ui.check_page("deliberately broken", record=False)
    found, ui.problems = "\n".join(ui.problems), []
    for expected in ("axe color-contrast", "axe label (critical)", "axe label-content-name-mismatch",
                     "tables outside a focusable, labelled .table-scroll region", "px wide at 375 px"):
        assert expected in found, f"{expected!r} not reported:\n{found}"
