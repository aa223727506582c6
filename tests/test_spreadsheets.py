"""Issue 12, item 5: municipality names in the subscriber import, column mapping, unknown topics, the exports."""
import io
import re
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select

from core.extensions import db
from core.spreadsheet import Share, csv_cell, guard_formula, to_csv, to_xlsx
from directory import matching
from directory.models import District
from subscribers import csvio
from subscribers.models import Subscriber, Topic
from tests.spreadsheets import csv_rows, same_table, xlsx_rows


def m(ags, name):
    return SimpleNamespace(ags=ags, name=name)


BOEBLINGEN = [m("08115003", "Böblingen, Stadt"), m("08115045", "Sindelfingen, Stadt"),
              m("08115050", "Weil der Stadt, Stadt"), m("08115021", "Herrenberg, Stadt"), m("08115001", "Aidlingen"),
              m("08115028", "Leonberg, Stadt")]


def fresh():
    db.session.rollback()


def subscriber(email):
    fresh()
    return db.session.execute(select(Subscriber).where(Subscriber.email_key == email.lower())).scalar_one_or_none()


def topic_names(district_key="08115"):
    fresh()
    return sorted(db.session.execute(select(Topic.name).where(Topic.district_key == district_key)).scalars())


# --- the matching rule -------------------------------------------------------------------


@pytest.mark.parametrize("typed, ags", [
    ("sindelfingen", "08115045"),
    ("Sindelfingen, Stadt", "08115045"),
    ("  SINDELFINGEN ,  stadt ", "08115045"),
    ("Sindelfingen Stadt", "08115045"),
    ("Boeblingen", "08115003"),
    ("böblingen", "08115003"),
    ("BOEBLINGEN, STADT", "08115003"),
    ("Weil der Stadt", "08115050"),
    ("weil  der stadt", "08115050"),
    ("aidlingen", "08115001"),
    ("08115045", "08115045"),
    ("8115045", "08115045"),  # a spreadsheet dropped the leading zero
    ("0811 5045", "08115045"),
])
def test_names_match_ignoring_case_stadt_umlauts_and_whitespace(typed, ags):
    found = matching.match_municipality(typed, BOEBLINGEN)
    assert found.found and found.municipality.ags == ags


def test_normalize():
    assert matching.normalize("Sindelfingen, Stadt") == "sindelfingen"
    assert matching.normalize("Leinfelden-Echterdingen, Stadt") == "leinfelden echterdingen"
    assert matching.normalize("Straßberg") == matching.normalize("Strassberg") == "strassberg"
    assert matching.normalize("Tübingen, Universitätsstadt") == "tuebingen"


def test_unknown_name_comes_with_the_closest_candidates_of_the_district():
    found = matching.match_municipality("Sindelfngen", BOEBLINGEN)
    assert found.status == matching.UNKNOWN and found.municipality is None
    assert [c.ags for c in found.candidates][:1] == ["08115045"]
    assert matching.match_municipality("Leonbreg", BOEBLINGEN).candidates[0].name == "Leonberg, Stadt"
    nothing = matching.match_municipality("Hamburg", BOEBLINGEN)
    assert nothing.status == matching.UNKNOWN and nothing.candidates == []


def test_ambiguous_name_lists_every_match():
    places = BOEBLINGEN + [m("08115099", "Böblingen")]  # two municipalities that differ only in ", Stadt"
    found = matching.match_municipality("Boeblingen", places)
    assert found.status == matching.AMBIGUOUS and found.municipality is None
    assert sorted(c.ags for c in found.candidates) == ["08115003", "08115099"]
    # The full official name is unique again.
    assert matching.match_municipality("Böblingen, Stadt", places).municipality.ags == "08115003"


def test_only_the_municipalities_given_are_searched():
    assert matching.match_municipality("08116019", BOEBLINGEN).status == matching.UNKNOWN
    assert matching.match_municipality("Esslingen am Neckar", BOEBLINGEN).status == matching.UNKNOWN
    assert matching.match_municipality("", BOEBLINGEN).status == matching.EMPTY


# --- the import with the real directory ----------------------------------------------------


@pytest.fixture
def directory_bw(app, runner, shared_data, make_topic):
    result = runner.invoke(args=["directory", "import", "--districts", str(shared_data / "bw_districts.csv"),
                                 "--municipalities", str(shared_data / "bw_municipalities.csv")])
    assert result.exit_code == 0, result.output
    make_topic("DMS")
    return db.session.get(District, "08115")


NAMED_FILE = (
    "E-Mail;Name;Gemeinde;Themen\n"
    "a@b.de;Anna;sindelfingen;DMS\n"
    "b@b.de;Bernd;Boeblingen;\n"
    "c@b.de;Cem;WEIL DER STADT, Stadt;\n"
    "d@b.de;Dora;Sindelfngen;\n"
    "e@b.de;Emil;Esslingen am Neckar;\n"
    "f@b.de;Fritz;08116019;\n"
    "g@b.de;Gina;8115003;\n"
    "h@b.de;Hans;Herrenberg;\n"
)


def test_municipality_names_import_within_the_district_and_report_the_rest(directory_bw):
    plan = csvio.read_import(directory_bw, NAMED_FILE.encode())

    assert plan.readable, plan.error
    assert {row.email: row.ags for row in plan.rows} == {
        "a@b.de": "08115045", "b@b.de": "08115003", "c@b.de": "08115050", "g@b.de": "08115003",
        "h@b.de": "08115021",
    }
    problems = {problem.line: problem for problem in plan.problems}
    assert sorted(problems) == [5, 6, 7]
    assert "Sindelfingen, Stadt (08115045)" in problems[5].reason and "ähnlich" in problems[5].reason
    assert problems[6].value == "Esslingen am Neckar" and "Unbekannte Gemeinde" in problems[6].reason
    assert "Esslingen" not in problems[6].reason  # no candidates from another district
    assert "kein Gemeindeschlüssel (AGS) des Kreises Böblingen" in problems[7].reason


def test_cli_import_of_names_writes_the_matched_rows(directory_bw, app, tmp_path):
    path = tmp_path / "namen.csv"
    path.write_bytes(NAMED_FILE.encode("cp1252"))

    result = app.test_cli_runner().invoke(args=["subscribers", "import", "08115", str(path)])

    assert result.exit_code == 0, result.output + result.stderr
    assert "5 Adressen importiert, 3 Zeilen übersprungen." in result.stdout
    assert "Zeile 5: Sindelfngen: Unbekannte Gemeinde im Kreis Böblingen; ähnlich: Sindelfingen, Stadt" in result.stderr
    assert (subscriber("a@b.de").municipality_ags, subscriber("a@b.de").topic_names) == ("08115045", ["DMS"])
    assert subscriber("b@b.de").municipality_ags == "08115003"
    assert subscriber("d@b.de") is None and subscriber("e@b.de") is None and subscriber("f@b.de") is None


# --- column mapping and unknown topics on the pages --------------------------------------------


@pytest.fixture
def district(two_districts, make_topic):
    make_topic("DMS")
    make_topic("OZG", "08116")
    return db.session.get(District, "08115")


@pytest.fixture
def coordinator_client(make_user, client, sign_in):
    sign_in(make_user())
    return client


def upload(client, text, key="08115"):
    data = text.encode() if isinstance(text, str) else text
    return client.post(f"/d/{key}/subscribers/import", data={"file": (io.BytesIO(data), "liste.csv")},
                       content_type="multipart/form-data")


def upload_id(page):
    return re.search(r'action="/d/\d+/subscribers/import/([A-Za-z0-9_-]+)/mapping"', page).group(1)


def selected(page, field):
    select_html = re.search(rf'<select id="column-{field}".*?</select>', page, re.S).group(0)
    match = re.search(r'<option value="(\d*)" selected>', select_html)
    return match and match.group(1)


def test_shuffled_german_and_english_headers_are_guessed(district, coordinator_client):
    page = upload(coordinator_client, "Themen;Gemeinde;Name;E-Mail-Adresse\nDMS;Sindelfingen;Anna;a@b.de\n"
                  ).get_data(as_text=True)
    assert re.search(r'id="import-count">1<', page)
    assert [selected(page, f) for f in ("email", "name", "municipality", "topics", "department")] == [
        "3", "2", "1", "0", ""]
    english = csvio.guess_mapping(["Department", "municipality", "e-mail", "Full name", "topics"])
    assert english == {"email": 2, "name": 3, "municipality": 1, "topics": 4, "department": 0}
    # A file from the export has AGS and Gemeinde: the AGS is read.
    assert csvio.guess_mapping(list(csvio.EXPORT_COLUMNS))["municipality"] == 2


def test_unrecognised_headers_are_mapped_on_the_preview_and_the_mapping_reaches_the_import(
        district, coordinator_client):
    text = "Wer;Kontakt;Wohnort;Schwerpunkte;Notiz\nAnna;a@b.de;Sindelfingen;DMS;x\nBernd;b@b.de;08115003;;y\n"

    first = upload(coordinator_client, text)

    page = first.get_data(as_text=True)
    assert first.status_code == 200
    assert "nicht gefunden: E-Mail-Adresse, Gemeinde (AGS oder Name)" in page
    assert 'id="import-count"' in page and "Adressen importieren" not in page  # nothing to confirm yet
    assert '<label for="column-email">' in page and "Spalte 2: Kontakt" in page
    ident = upload_id(page)
    mapping = {"column-email": "1", "column-name": "0", "column-municipality": "2", "column-topics": "3",
               "column-department": ""}

    second = coordinator_client.post(f"/d/08115/subscribers/import/{ident}/mapping", data=mapping)

    page = second.get_data(as_text=True)
    assert second.status_code == 200 and re.search(r'id="import-count">2<', page)
    assert selected(page, "email") == "1" and selected(page, "department") == ""
    assert "2 Adressen importieren" in page
    assert subscriber("a@b.de") is None  # a preview writes nothing

    done = coordinator_client.post(f"/d/08115/subscribers/import/{ident}")

    assert done.status_code == 302
    anna = subscriber("a@b.de")
    assert (anna.name, anna.municipality_ags, anna.topic_names, anna.department) == (
        "Anna", "08115045", ["DMS"], "")
    assert subscriber("b@b.de").municipality_ags == "08115003"


def test_bad_mappings_are_refused_and_change_nothing(district, coordinator_client, make_user, sign_in):
    page = upload(coordinator_client, "email;ags\na@b.de;08115003\n").get_data(as_text=True)
    ident = upload_id(page)
    url = f"/d/08115/subscribers/import/{ident}/mapping"

    twice = coordinator_client.post(url, data={"column-email": "0", "column-municipality": "0"})
    assert twice.status_code == 422 and "mehreren Feldern zugeordnet" in twice.get_data(as_text=True)
    beyond = coordinator_client.post(url, data={"column-email": "7", "column-municipality": "1"})
    assert beyond.status_code == 422 and "passt nicht zur Datei" in beyond.get_data(as_text=True)
    assert coordinator_client.post(url, data={"column-email": "x", "column-municipality": "1"}).status_code == 400
    # The import uses the last mapping shown; an impossible one imports nothing.
    coordinator_client.post(f"/d/08115/subscribers/import/{ident}")
    assert subscriber("a@b.de") is None
    # Another coordinator, or another district, cannot use the upload.
    page = upload(coordinator_client, "email;ags\na@b.de;08115003\n").get_data(as_text=True)
    ident = upload_id(page)
    sign_in(make_user("esslingen@lrabb.de", districts=("08116",)))
    assert coordinator_client.post(f"/d/08115/subscribers/import/{ident}/mapping",
                                   data={"column-email": "0", "column-municipality": "1"}).status_code == 404
    assert coordinator_client.post(f"/d/08116/subscribers/import/{ident}/mapping",
                                   data={"column-email": "0", "column-municipality": "1"}).status_code == 404


def test_names_and_ags_of_another_district_are_refused(district, coordinator_client):
    page = upload(coordinator_client, "email;Gemeinde\na@b.de;Esslingen am Neckar\nb@b.de;08116019\n"
                                      "c@b.de;Nürtingen\n").get_data(as_text=True)
    assert re.search(r'id="import-count">0<', page) and re.search(r'id="problem-count">3<', page)
    assert "Adressen importieren" not in page


TOPIC_FILE = "email;ags;topics\na@b.de;08115003;DMS;Neu\nb@b.de;08115045;neu\nc@b.de;08115045;OZG\n"


@pytest.mark.parametrize("choice", ["create", "skip"])
def test_unknown_topics_are_created_or_left_out(district, coordinator_client, choice):
    page = upload(coordinator_client, TOPIC_FILE.replace(";DMS;Neu", ';"DMS;Neu"')).get_data(as_text=True)
    assert re.search(r'id="import-count">3<', page)
    listed = re.search(r'<ul id="unknown-topics">(.*?)</ul>', page, re.S).group(1)
    # "Neu" and "neu" are one topic; "OZG" is another district's topic, so unknown here.
    assert re.findall(r"<li>(\w+) ", listed) == ["Neu", "OZG"]
    assert "2 Zeilen" in listed
    ident = re.search(r'action="/d/08115/subscribers/import/([A-Za-z0-9_-]+)"', page).group(1)

    response = coordinator_client.post(f"/d/08115/subscribers/import/{ident}", data={"unknown_topics": choice})

    assert response.status_code == 302
    if choice == "create":
        assert topic_names() == ["DMS", "Neu", "OZG"]
        assert subscriber("a@b.de").topic_names == ["DMS", "Neu"]
        assert subscriber("b@b.de").topic_names == ["Neu"] and subscriber("c@b.de").topic_names == ["OZG"]
        assert topic_names("08116") == ["OZG"]  # the other district's topic is untouched
    else:
        assert topic_names() == ["DMS"]
        assert subscriber("a@b.de").topic_names == ["DMS"] and subscriber("b@b.de").topic_names == []


def test_an_unknown_topic_choice_is_refused(district, coordinator_client):
    page = upload(coordinator_client, "email;ags;topics\na@b.de;08115003;Neu\n").get_data(as_text=True)
    ident = re.search(r'action="/d/08115/subscribers/import/([A-Za-z0-9_-]+)"', page).group(1)
    assert coordinator_client.post(f"/d/08115/subscribers/import/{ident}",
                                   data={"unknown_topics": "maybe"}).status_code == 400
    assert subscriber("a@b.de") is None and topic_names() == ["DMS"]


def test_cli_creates_unknown_topics_on_request(district, app, tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("email,ags,topics\na@b.de,08115003,Neu\n")
    result = app.test_cli_runner().invoke(args=["subscribers", "import", "08115", str(path), "--create-topics"])
    assert result.exit_code == 0, result.output + result.stderr
    assert "Neue Themen: Neu" in result.stdout
    assert subscriber("a@b.de").topic_names == ["Neu"]


# --- the exports -----------------------------------------------------------------------------


def test_the_writer_guards_formats_and_matches_in_both_formats():
    from datetime import date, datetime, timezone

    header = ["Text", "Zahl", "Anteil", "Tag", "Zeit", "Leer", "Ja"]
    rows = [["=1+1", 3, Share(0.25), date(2026, 11, 21), datetime(2026, 11, 21, 13, 30, tzinfo=timezone.utc), None,
             True], ["@x", -2, Share(1.0), date(2026, 1, 2), datetime(2026, 7, 1, 10, 0, tzinfo=timezone.utc), "\tT",
                     False]]
    table = csv_rows(to_csv(header, rows))
    assert table[1] == ["'=1+1", "3", "25,0", "21.11.2026", "21.11.2026 14:30", "", "ja"]
    assert table[2][4] == "01.07.2026 12:00"  # summer time in Berlin
    assert table[2][5] == "'\tT"
    sheet = xlsx_rows(to_xlsx(header, rows, "Test"))
    assert sheet[1][0] == "=1+1" and sheet[1][3:5] == ["21.11.2026", "21.11.2026 14:30"]
    assert csv_cell("+49") == "'+49" and guard_formula("\r1") == "'\r1" and guard_formula(None) == ""


def test_subscriber_export_in_both_formats(district, make_subscriber, make_user, login):
    from subscribers.services import topics_by_name

    make_subscriber("anna@b.de", name="=HYPERLINK(\"http://x\")", ags="08115045",
                    topics=topics_by_name("08115", ["DMS"]), department="-Amt")
    make_subscriber("bernd@b.de", status="unsubscribed")
    client = login(make_user())

    as_csv = client.get("/d/08115/subscribers/export.csv")
    as_xlsx = client.get("/d/08115/subscribers/export.xlsx")

    assert as_xlsx.status_code == 200
    assert as_xlsx.headers["Content-Type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert re.fullmatch(r'attachment; filename="abonnenten-08115-\d{4}-\d\d-\d\d\.xlsx"',
                        as_xlsx.headers["Content-Disposition"])
    assert as_xlsx.headers["Cache-Control"] == "no-store"
    rows = same_table(as_csv.data, as_xlsx.data)
    assert rows[0][:6] == ["E-Mail", "Name", "AGS", "Gemeinde", "Themen", "Status"]
    by_email = {row[0]: row for row in rows[1:]}
    assert by_email["anna@b.de"][1] == "'=HYPERLINK(\"http://x\")" and by_email["anna@b.de"][6] == "'-Amt"
    assert by_email["anna@b.de"][5] == "aktiv" and by_email["bernd@b.de"][5] == "abgemeldet"
    page = client.get("/d/08115/subscribers").get_data(as_text=True)
    assert 'href="/d/08115/subscribers/export.csv"' in page and 'href="/d/08115/subscribers/export.xlsx"' in page


def test_english_pages_still_export_german(district, make_subscriber, make_user, login):
    make_subscriber("anna@b.de")
    client = login(make_user())
    client.post("/language", data={"lang": "en", "next": "/"})
    assert '<html lang="en">' in client.get("/d/08115/subscribers").get_data(as_text=True)
    rows = csv_rows(client.get("/d/08115/subscribers/export.csv").data)
    assert rows[0][0] == "E-Mail" and rows[1][5] == "aktiv"


def test_exported_file_imports_back_with_german_headers(district, make_subscriber, app, tmp_path):
    from subscribers.services import topics_by_name

    make_subscriber("anna@b.de", name="@Anna", ags="08115045", topics=topics_by_name("08115", ["DMS"]),
                    department="+Amt")
    data = csvio.export_csv(district)
    fresh()
    db.session.execute(Subscriber.__table__.delete())
    db.session.commit()

    plan = csvio.read_import(district, data)

    assert plan.readable and plan.problems == [] and plan.unknown_topics == {}
    row = plan.rows[0]
    assert (row.email, row.name, row.ags, [t.name for t in row.topics], row.department) == (
        "anna@b.de", "@Anna", "08115045", ["DMS"], "+Amt")


def test_another_districts_export_is_404_in_both_formats(district, make_user, client, sign_in):
    sign_in(make_user("esslingen@lrabb.de", districts=("08116",)))
    for extension in ("csv", "xlsx"):
        assert client.get(f"/d/08115/subscribers/export.{extension}").status_code == 404
        assert client.get(f"/d/08115/kontakte.{extension}").status_code == 404
    assert client.get("/d/08116/subscribers/export.xlsx").status_code == 200


def test_count_is_unchanged_by_previews(district, coordinator_client):
    upload(coordinator_client, "email;ags\na@b.de;08115003\n")
    fresh()
    assert db.session.execute(select(func.count()).select_from(Subscriber)).scalar_one() == 0


def test_event_registrations_export_in_both_formats(district, make_subscriber, make_event, make_user, login):
    from events import services as event_services
    from events.models import Registration

    make_subscriber("anna@b.de", ags="08115003", name="=Anna")
    make_subscriber("jo@b.de", ags="08115045", name="Jo")
    make_subscriber("eva@b.de", ags="08115045", name="Eva")
    event = make_event(title="-Workshop", capacity=1)
    event_services.invite(event)
    db.session.commit()
    by_email = {r.email: r for r in db.session.execute(select(Registration)).scalars()}
    event_services.respond(by_email["anna@b.de"], "accept")
    event_services.respond(by_email["jo@b.de"], "tentative")
    event_services.respond(by_email["eva@b.de"], "decline")
    db.session.commit()
    client = login(make_user())

    as_csv = client.get(f"/d/08115/events/{event.id}/registrations.csv")
    as_xlsx = client.get(f"/d/08115/events/{event.id}/registrations.xlsx")

    assert as_xlsx.status_code == 200 and f"anmeldungen-08115-{event.id}-" in as_xlsx.headers["Content-Disposition"]
    rows = same_table(as_csv.data, as_xlsx.data)
    assert rows[0][7:11] == ["Status", "Antwort", "Platz auf der Warteliste", "Teilnahme"]
    labels = {row[3]: (row[7], row[8]) for row in rows[1:]}
    assert labels == {"anna@b.de": ("angemeldet", "zugesagt"), "jo@b.de": ("Warteliste", "vorläufig zugesagt"),
                      "eva@b.de": ("abgesagt", "abgesagt")}
    text = as_csv.data.decode("utf-8-sig")
    for word in ("ACCEPTED", "NEEDS-ACTION", "TENTATIVE", "DECLINED", "confirmed", "waiting"):
        assert word not in text
    assert rows[1][0] == "'-Workshop"
    page = client.get(f"/d/08115/events/{event.id}").get_data(as_text=True)
    assert f"/d/08115/events/{event.id}/registrations.csv" in page
    assert f"/d/08115/events/{event.id}/registrations.xlsx" in page


def test_attendance_is_exported_in_german(district, make_subscriber, make_event, make_user, login):
    from events import services as event_services
    from events.models import Registration

    make_subscriber("anna@b.de", ags="08115003")
    make_subscriber("jo@b.de", ags="08115045")
    event = make_event(capacity=5)
    event_services.invite(event)
    db.session.commit()
    by_email = {r.email: r for r in db.session.execute(select(Registration)).scalars()}
    for registration in by_email.values():
        event_services.respond(registration, "accept")
    db.session.commit()
    # Attendance is recorded on the day; set it as the check-in would then.
    by_email["anna@b.de"].attendance = "attended"
    by_email["jo@b.de"].attendance = "no_show"
    db.session.commit()
    client = login(make_user())
    rows = csv_rows(client.get(f"/d/08115/events/{event.id}/registrations.csv").data)
    assert {row[3]: row[10] for row in rows[1:]} == {"anna@b.de": "teilgenommen", "jo@b.de": "nicht erschienen"}


def test_contacts_export_in_both_formats(district, make_user, login):
    from datetime import date

    from reach import contacts

    contacts.create_contact("08115", {"date": date(2026, 3, 4), "kind": "vor_ort",
                                      "municipalities": ["08115003", "08115045"], "topics": [], "note": "=SUMME(A1)"})
    db.session.commit()
    client = login(make_user())

    rows = same_table(client.get("/d/08115/kontakte.csv").data, client.get("/d/08115/kontakte.xlsx").data)

    assert rows[0] == ["Datum", "Gemeinden", "Gemeindenamen", "Art", "Themen", "Notiz", "Erfasst am"]
    assert rows[1][:6] == ["04.03.2026", "08115003; 08115045", "Böblingen, Stadt; Sindelfingen, Stadt",
                           "Vor-Ort-Termin", "", "'=SUMME(A1)"]
    page = client.get("/d/08115/kontakte").get_data(as_text=True)
    assert 'href="/d/08115/kontakte.xlsx' in page


def test_reach_exports_are_german_in_english_too(district, make_user, login):
    client = login(make_user())
    period = "?zeitraum=frei&von=2026-01-01&bis=2026-12-01"
    german = client.get("/d/08115/reichweite.csv" + period)
    client.post("/language", data={"lang": "en", "next": "/"})
    english = client.get("/d/08115/reichweite.csv" + period)
    assert german.status_code == english.status_code == 200
    assert german.data == english.data
    rows = same_table(german.data, client.get("/d/08115/reichweite.xlsx" + period).data)
    assert rows[0][:3] == ["AGS", "Gemeinde", "im Verteiler"]
    assert [row[1] for row in rows[1:]] == ["Böblingen, Stadt", "Sindelfingen, Stadt"]


def test_cli_export_writes_xlsx_when_asked(district, make_subscriber, app, tmp_path):
    make_subscriber("anna@b.de", name="+Anna")
    runner = app.test_cli_runner()
    runner.invoke(args=["subscribers", "export", "08115", "-o", str(tmp_path / "liste.csv")])
    result = runner.invoke(args=["subscribers", "export", "08115", "-o", str(tmp_path / "liste.xlsx")])
    assert result.exit_code == 0, result.output
    rows = same_table((tmp_path / "liste.csv").read_bytes(), (tmp_path / "liste.xlsx").read_bytes())
    assert rows[1][:2] == ["anna@b.de", "'+Anna"]


def test_a_header_only_file_says_so_after_mapping(district, coordinator_client):
    page = upload(coordinator_client, "foo;bar\n").get_data(as_text=True)
    assert "nicht gefunden" in page
    response = coordinator_client.post(f"/d/08115/subscribers/import/{upload_id(page)}/mapping",
                                       data={"column-email": "0", "column-municipality": "1"})
    assert response.status_code == 422 and "nur die Kopfzeile" in response.get_data(as_text=True)
