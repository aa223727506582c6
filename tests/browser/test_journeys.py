"""The main journeys in a real browser, in German and English, at 1280 px and 375 px.

Each journey is a plain function of a `Browser` (conftest.py) and the rows it
needs; every page it reaches goes through `ui.check_page(name)` (axe-core WCAG
2.1 A/AA, tables in scroll regions, no horizontal overflow at 375 px). To cover
a new page: visit it in a journey and call `ui.check_page("a name")`.
Links that people follow from mails are taken from the mails the suite's SMTP
server received, so they also show that the mails point at the live server.
"""
from datetime import timedelta
from types import SimpleNamespace

import pytest

from core.extensions import db

PASSWORD = "Browser-Test-Passwort-2026"
CSV = "email,name,ags\ncsv.eins@boeblingen.de,Carla CSV,08115003\ncsv.zwei@sindelfingen.de,Chris CSV,08115045\n"
# Headers the import does not recognise, municipality names instead of AGS, a topic the district lacks.
CSV_UNMAPPED = (
    "Kontakt;Kommunalverwaltung;Wer;Schwerpunkt\n"
    "map.eins@boeblingen.de;Böblingen, Stadt;Mara Map;service-bw\n"
    "map.zwei@sindelfingen.de;Sindelfingen, Stadt;Moritz Map;E-Akte\n"
)
CSV_TYPE, XLSX_TYPE = "text/csv", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


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


def downloads(ui, *links):
    """Each (German, English) link of the page starts a download of its type: CSV or XLSX."""
    for german, english in links:
        href = link(ui, german, english).get_attribute("href")
        response = ui.page.request.get(ui.url(href))
        assert response.ok, f"{href}: HTTP {response.status}"
        expected = XLSX_TYPE if "xlsx" in href.lower() or "excel" in german.lower() else CSV_TYPE
        assert response.headers["content-type"].split(";")[0] == expected, (href, response.headers["content-type"])
        assert response.headers.get("content-disposition", "").startswith("attachment"), href
        assert len(response.body()) > 0, href


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
    downloads(ui, ("Liste als CSV exportieren", "Export list as CSV"),
              ("Liste als Excel-Datei (XLSX) exportieren", "Export the list as Excel file (XLSX)"))
    mapping_import_journey(ui, tmp_path)
    for path, name in (("/d/08115/topics", "topics"), ("/d/08115/subscribers/municipalities", "subscribers per municipality"),
                       ("/d/08115/subscribers/embed", "embed form")):
        ui.goto(path, name)


def mapping_import_journey(ui, tmp_path):
    """A file whose columns are not recognised: map them by hand, preview again, create the new topic."""
    page = ui.page
    ui.goto("/d/08115/subscribers/import")
    upload = tmp_path / "unbekannt.csv"
    upload.write_text(CSV_UNMAPPED, encoding="utf-8")
    page.set_input_files("#file", str(upload))
    button(ui, "Datei prüfen", "Check file").click()
    page.wait_for_load_state()
    ui.check_page("import: preview, columns not recognised")
    for field, column in (("email", "0"), ("municipality", "1"), ("name", "2"), ("topics", "3")):
        page.select_option(f"#column-{field}", column)
    button(ui, "Vorschau mit dieser Zuordnung aktualisieren", "Update the preview with this mapping").click()
    page.wait_for_load_state()
    ui.check_page("import: preview, columns mapped")
    assert page.locator("#import-count").inner_text() == "2", page.locator("main").inner_text()
    assert "E-Akte" in page.locator("#unknown-topics").inner_text()
    page.check("#unknown-topics-create")
    page.locator("main form:not(#mapping) button[type=submit]").first.click()
    page.wait_for_load_state()
    ui.check_page("import: done (mapped, topic created)")
    ui.goto("/d/08115/subscribers?q=map", "subscriber list: search (mapped import)")
    assert page.locator("main table tbody tr").count() == 2


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


def archive_journey(ui, newsletter_id):
    """The switch on the sent newsletter's page, then the public archive: search, web version, feed."""
    page = ui.page
    publish = button(ui, "Im Archiv veröffentlichen", "Publish in the archive")
    if publish.count():
        publish.click()
        page.wait_for_load_state()
    ui.check_page("newsletter: published in the archive")
    assert button(ui, "Aus dem Archiv nehmen", "Remove from the archive").count() == 1
    ui.goto("/d/08115/newsletters", "public archive")
    assert page.locator(".archive-list li").count() == 1
    ui.goto("/d/08115/newsletters?q=service-bw", "public archive: search")
    assert page.locator(".archive-list li").count() == 1
    ui.goto("/d/08115/newsletters?q=Gibtesnicht", "public archive: search without result")
    assert page.locator(".archive-list li").count() == 0 and page.get_by_role("status").count() >= 1
    # The page is in the reader's language; the newsletter in it is German, whatever the reader chose.
    ui.goto(f"/d/08115/newsletters/{newsletter_id}", "archive: web version")
    assert page.locator("article.web-version").get_attribute("lang") == "de"
    feed = page.request.get(ui.url("/d/08115/newsletters.atom"))  # not a page: no axe
    assert feed.ok and feed.headers["content-type"].startswith("application/atom+xml")
    assert "Neues aus dem Kreis" in feed.text()


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
    archive_journey(ui, newsletter_id)
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
    downloads(ui, ("Anmeldungen als CSV", "Registrations as CSV"),
              ("Anmeldungen als Excel-Datei (XLSX)", "Registrations as Excel file (XLSX)"))
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
    downloads(ui, ("Tabelle als CSV", "Table as CSV"), ("Tabelle als Excel-Datei", "Table as Excel file"))
    ui.goto("/d/08115/reichweite" + period, "reach: district")
    assert ui.page.locator("main table").count() >= 3 and ui.page.locator("main svg").count() >= 1
    downloads(ui, ("Tabelle als CSV", "Table as CSV"), ("Tabelle als Excel-Datei", "Table as Excel file"))
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


def test_legal_pages(ui, world, make_user):
    """The banner while Impressum and Datenschutz are missing, the settings (an error, then saved),
    the public pages, the footer links and the privacy note beside consent."""
    page = ui.page
    admin = make_user("admin@lrabb.de", role="admin", districts=(), password=PASSWORD)
    log_in(ui, admin)
    ui.check_page("start: legal pages missing (banner)")
    page.get_by_role("link", name=ui.t("Rechtliche Angaben hinterlegen", "Provide the legal information")).click()
    ui.check_page("legal settings")
    page.fill("#imprint_url", "javascript:alert(1)")
    page.locator("main form button[type=submit]").first.click()
    page.wait_for_load_state()
    assert page.locator("#imprint_url").get_attribute("aria-invalid") == "true"
    ui.check_page("legal settings: error")
    page.fill("#imprint_url", "")
    page.fill("#imprint_text", "Landratsamt Böblingen\nParkstraße 16\n71034 Böblingen")
    page.fill("#privacy_text", "## Verantwortliche Stelle\n\nLandratsamt Böblingen")
    page.locator("main form button[type=submit]").first.click()
    page.wait_for_load_state()
    ui.check_page("legal settings: saved")
    assert page.locator(".flash-warning").count() == 0
    for path, name in (("/impressum", "imprint"), ("/datenschutz", "privacy statement"),
                       ("/barrierefreiheit", "accessibility statement (default)")):
        ui.goto(path, name)
        assert page.locator("footer").get_by_role("link").filter(has_text=ui.t("Impressum", "Imprint")).count() == 1
    ui.goto("/d/08115/subscribe", "subscribe: with privacy note")
    assert page.locator("#privacy-statement a[href$='/datenschutz']").count() == 1
    ui.assert_clean()


def test_outbox_search_and_message(ui, app, world, run_jobs, make_user):
    """Mail to the file outbox (no MAIL_SERVER): a test send and a confirmation, listed and filtered."""
    from directory.models import District
    from newsletter import services as newsletters
    from subscribers import services as subscribers
    from subscribers.jobs import enqueue_subscription_mail
    from subscribers.consent import current_consent_version

    coordinator = SimpleNamespace(email=world["coordinator"].email)
    admin = SimpleNamespace(email=make_user("admin@lrabb.de", role="admin", districts=(), password=PASSWORD).email)
    app.config["MAIL_SERVER"] = None  # core.mail reads it per message: from now on the outbox
    district = db.session.get(District, "08115")
    newsletter = newsletters.create_newsletter(district, "Neues aus dem Kreis", "Guten Tag,\n\n**service-bw**.")
    db.session.commit()
    newsletters.send_test(newsletter, ["test-leser@lrabb.de"])
    paula = subscribers.request_subscription(district, "paula@sindelfingen.de", "Paula", "08115045", [],
                                             current_consent_version())
    db.session.commit()
    enqueue_subscription_mail(paula)
    run_jobs_now(run_jobs)
    page = ui.page
    log_in(ui, coordinator)  # a coordinator first; an admin below, in a browser of their own
    page.locator("nav").get_by_role("link", name=ui.t("Postausgang", "Outbox")).first.click()
    ui.check_page("outbox (coordinator)")
    assert page.locator("main table tbody tr").count() == 2
    page.fill("#recipient", "paula")
    page.locator("main form[role=search] button[type=submit]").first.click()
    page.wait_for_load_state()
    ui.check_page("outbox: by recipient")
    assert page.locator("main table tbody tr").count() == 1
    ui.goto("/admin/outbox?kind=test&subject=Kreis", "outbox: by kind and subject")
    assert page.locator("main table tbody tr").count() == 1
    page.locator("main table tbody a").first.click()
    ui.check_page("outbox: message")
    ui.goto("/admin/outbox?kind=nonsense", "outbox: unknown kind")

    other = ui.fresh()
    log_in(other, admin)
    other.goto("/admin/outbox?recipient=lrabb&kind=test", "outbox (admin): filtered")
    assert other.page.locator("main table tbody tr").count() == 1
    other.assert_clean()
    ui.assert_clean()


# --- the checks themselves ------------------------------------------------------------------------------

BAD_PAGE = """<!doctype html><html lang="{lang}"><head><title>Kaputt</title></head><body>
<main><h1>Kaputt</h1>
<p style="color:#aaa">Zu wenig Kontrast</p>
<input type="text">
<p><a href="/x" aria-label="Anmelden: Workshop">Log in</a></p>
<table><tr><th>A</th></tr><tr><td>1</td></tr></table>
<div class="table-scroll" role="region" tabindex="0" aria-label="Tabelle"><table id="generic-label"><caption>B</caption><tr><th>B</th></tr></table></div>
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
                     "tables outside a focusable .table-scroll region labelled after the table", "px wide at 375 px"):
        assert expected in found, f"{expected!r} not reported:\n{found}"
    assert "'generic-label'" in found, f"a region named just 'Tabelle' not reported:\n{found}"
