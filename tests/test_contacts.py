"""Logged contacts (Kontakte): the services' rules, the coordinator pages, the CSV
import (bad rows, Windows-1252, `;`, names and AGS, wrong header, dates in the
future) with its preview and confirmation, the export and its round trip, the
CLI, viewers (403), other districts (404) and ids beyond the database (404)."""
import csv
import io
import re
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from core.extensions import db
from directory.models import Municipality
from reach import contacts, contacts_csv
from reach.contacts import ContactError, ContactFilter
from reach.models import Contact

YESTERDAY = contacts.today() - timedelta(days=1)
HEADER = "datum,gemeinden,art,themen,notiz\n"


@pytest.fixture
def district(two_districts, make_topic):
    """Böblingen with two topics, and a topic of Esslingen that Böblingen must not use."""
    make_topic("E-Rechnung")
    make_topic("OZG")
    make_topic("DMS", "08116")
    return two_districts[0]


def topic(name, district_key="08115"):
    from subscribers.models import Topic

    return db.session.execute(select(Topic).filter_by(name=name, district_key=district_key)).scalar_one()


def count():
    return db.session.execute(select(func.count()).select_from(Contact)).scalar_one()


def all_contacts():
    db.session.expire_all()
    return db.session.execute(select(Contact).order_by(Contact.id)).scalars().all()


def make_contact(day=YESTERDAY, kind="telefon", ags=("08115003",), topics=(), note="", key="08115"):
    contact = contacts.create_contact(key, {"date": day, "kind": kind, "municipalities": list(ags),
                                            "topics": [t.id for t in topics], "note": note})
    db.session.commit()
    return contact


def valid(**changes):
    data = {"date": YESTERDAY, "kind": "vor_ort", "municipalities": ["08115003"], "topics": [], "note": ""}
    data.update(changes)
    return data


@pytest.fixture
def coordinator(make_user, sign_in):
    user = make_user()
    sign_in(user)
    return user


def field_error(html, field):
    match = re.search(rf'<p class="field-error" id="{field}-error">(.*?)</p>', html, re.DOTALL)
    return match and match.group(1).strip()


# --- services -------------------------------------------------------------------------


def test_create_contact_stores_date_kind_municipalities_topics_and_note(district, make_user):
    user = make_user()
    contact = contacts.create_contact("08115", valid(
        date="21.11.2026", municipalities=["08115045", "08115003", "08115045"], topics=[str(topic("OZG").id)],
        note="  Besprechung zur E-Akte\r\nFolgetermin im Januar  "), created_by=user)
    db.session.commit()

    stored = all_contacts()[0]
    assert stored.id == contact.id and stored.district_key == "08115"
    assert (stored.date, stored.kind, stored.created_by_id) == (date(2026, 11, 21), "vor_ort", user.id)
    assert [m.ags for m in stored.municipalities] == ["08115003", "08115045"]  # once each, by name
    assert [t.name for t in stored.topics] == ["OZG"]
    assert stored.note == "Besprechung zur E-Akte\nFolgetermin im Januar"
    assert contacts.create_contact("08115", valid(date="2026-11-20")).date == date(2026, 11, 20)


@pytest.mark.parametrize("changes, field, words", [
    ({"date": None}, "date", "Datum"),
    ({"date": ""}, "date", "Datum"),
    ({"date": "31.02.2026"}, "date", "gültiges Datum"),
    ({"date": "gestern"}, "date", "gültiges Datum"),
    ({"date": contacts.today() + timedelta(days=1)}, "date", "Zukunft"),
    ({"date": (contacts.today() + timedelta(days=1)).isoformat()}, "date", "Zukunft"),
    ({"date": date(1999, 12, 31)}, "date", "2000"),
    ({"municipalities": []}, "municipalities", "mindestens eine Gemeinde"),
    ({"municipalities": ["08116019"]}, "municipalities", "08116019"),
    ({"municipalities": ["08115003", "99999999"]}, "municipalities", "99999999"),
    ({"kind": "brief"}, "kind", "Art"),
    ({"kind": ""}, "kind", "Art"),
    ({"topics": ["12345"]}, "topics", "Unbekanntes Thema"),
    ({"topics": ["DMS"]}, "topics", "Unbekanntes Thema"),
    ({"note": "x" * 501}, "note", "500"),
])
def test_bad_input_is_refused_naming_the_field_and_writes_nothing(district, changes, field, words):
    with pytest.raises(ContactError) as error:
        contacts.create_contact("08115", valid(**changes))
    assert error.value.field == field
    assert words in str(error.value)
    db.session.rollback()
    assert count() == 0


def test_a_topic_of_another_district_is_unknown(district):
    with pytest.raises(ContactError) as error:
        contacts.create_contact("08115", valid(topics=[topic("DMS", "08116").id]))
    assert error.value.field == "topics"


def test_today_is_allowed_and_a_note_of_500_characters(district):
    contact = contacts.create_contact("08115", valid(date=contacts.today(), note="x" * 500))
    assert contact.date == contacts.today() and len(contact.note) == 500


def test_update_changes_only_what_is_given_and_nothing_when_refused(district):
    contact = make_contact(topics=[topic("OZG")], note="vorher")
    contacts.update_contact(contact, {"kind": "video", "municipalities": ["08115045"]})
    db.session.commit()
    stored = all_contacts()[0]
    assert (stored.kind, [m.ags for m in stored.municipalities], stored.note) == ("video", ["08115045"], "vorher")
    assert [t.name for t in stored.topics] == ["OZG"]

    with pytest.raises(ContactError):
        contacts.update_contact(stored, {"note": "neu", "date": contacts.today() + timedelta(days=3)})
    db.session.rollback()
    stored = all_contacts()[0]
    assert (stored.note, stored.date) == ("vorher", YESTERDAY)


def test_delete_removes_the_contact_and_its_links(district):
    contact = make_contact(topics=[topic("OZG")])
    contacts.delete_contact(contact)
    db.session.commit()
    assert count() == 0
    from reach.models import contact_municipalities, contact_topics

    for table in (contact_municipalities, contact_topics):
        assert db.session.execute(select(func.count()).select_from(table)).scalar_one() == 0


def test_query_filters_and_orders_newest_first(district):
    old = make_contact(day=date(2025, 3, 1), kind="vor_ort", ags=["08115003"])
    new = make_contact(day=date(2026, 6, 1), kind="telefon", ags=["08115045"], topics=[topic("OZG")])
    middle = make_contact(day=date(2025, 9, 1), kind="telefon", ags=["08115003", "08115045"])
    make_contact(day=date(2026, 1, 1), ags=["08116019"], key="08116")

    def ids(**filters):
        query = contacts.contact_query("08115", ContactFilter(**filters))
        return [c.id for c in db.session.execute(query).scalars()]

    assert ids() == [new.id, middle.id, old.id]
    assert ids(date_from=date(2025, 9, 1)) == [new.id, middle.id]
    assert ids(date_to=date(2025, 9, 1)) == [middle.id, old.id]
    assert ids(municipality="08115003") == [middle.id, old.id]
    assert ids(kind="telefon", municipality="08115045") == [new.id, middle.id]
    assert ids(topic=topic("OZG").id) == [new.id]


@pytest.mark.parametrize("text, code", [
    ("vor_ort", "vor_ort"), ("Vor-Ort-Termin", "vor_ort"), ("vor-ort", "vor_ort"), ("VOR-ORT", "vor_ort"),
    ("Telefon", "telefon"), (" telefon ", "telefon"), ("Videokonferenz", "video"), ("Video", "video"),
    ("E-Mail", "email"), ("email", "email"), ("Veranstaltung extern", "veranstaltung_extern"),
    ("veranstaltung  EXTERN", "veranstaltung_extern"), ("Sonstiges", "sonstiges"), ("Brief", None), ("", None),
    (None, None),
])
def test_kind_from_label(app, text, code):
    assert contacts.kind_from_label(text) == code


# --- pages ------------------------------------------------------------------------------


def test_new_contact_through_the_form(district, client, coordinator):
    page = client.get("/d/08115/kontakte/neu").get_data(as_text=True)
    assert 'type="date"' in page and f'max="{contacts.today().isoformat()}"' in page
    assert f'value="{contacts.today().isoformat()}"' in page  # today as the default
    assert "<legend>Art des Kontakts</legend>" in page and "<legend>Gemeinden</legend>" in page
    assert "Vor-Ort-Termin" in page and "Videokonferenz" in page and "Veranstaltung extern" in page
    assert 'maxlength="500"' in page and "keine personenbezogenen Daten" in page

    response = client.post("/d/08115/kontakte/neu", data={
        "date": YESTERDAY.isoformat(), "kind": "video", "municipalities": ["08115003", "08115045"],
        "topics": [str(topic("E-Rechnung").id)], "note": "Videokonferenz zur E-Rechnung",
    })

    assert response.status_code == 302 and response.headers["Location"].endswith("/d/08115/kontakte")
    stored = all_contacts()[0]
    assert (stored.date, stored.kind, stored.created_by_id) == (YESTERDAY, "video", coordinator.id)
    assert [m.ags for m in stored.municipalities] == ["08115003", "08115045"]
    listing = client.get("/d/08115/kontakte").get_data(as_text=True)
    assert "Der Kontakt ist erfasst." in listing
    assert YESTERDAY.strftime("%d.%m.%Y") in listing and "Böblingen, Stadt, Sindelfingen, Stadt" in listing
    assert "Videokonferenz" in listing and "E-Rechnung" in listing and "Videokonferenz zur E-Rechnung" in listing


def test_the_form_shows_the_services_error_at_its_field(district, client, coordinator):
    future = (contacts.today() + timedelta(days=2)).isoformat()
    response = client.post("/d/08115/kontakte/neu", data={"date": future, "kind": "telefon",
                                                          "municipalities": ["08115003"]})
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Zukunft" in field_error(page, "date")
    assert re.search(r'<input[^>]*aria-describedby="date-hint date-error"[^>]*aria-invalid="true"', page) \
        or re.search(r'<input[^>]*aria-invalid="true"[^>]*aria-describedby="date-hint date-error"', page)
    assert 'href="#date"' in page  # the summary links to the field
    assert count() == 0

    response = client.post("/d/08115/kontakte/neu", data={"date": YESTERDAY.isoformat(), "kind": "telefon",
                                                          "municipalities": ["08116019"]})
    assert response.status_code == 422 and "08116019" in field_error(response.get_data(as_text=True),
                                                                    "municipalities")
    response = client.post("/d/08115/kontakte/neu", data={"date": YESTERDAY.isoformat(), "kind": "telefon"})
    page = response.get_data(as_text=True)
    assert response.status_code == 422 and "mindestens eine Gemeinde" in field_error(page, "municipalities")
    assert 'aria-describedby="municipalities-hint municipalities-error"' in page
    assert count() == 0


def test_edit_and_delete(district, client, coordinator):
    contact = make_contact(note="alt")
    page = client.get(f"/d/08115/kontakte/{contact.id}/bearbeiten").get_data(as_text=True)
    assert f'value="{YESTERDAY.isoformat()}"' in page and re.search(r">\s*alt</textarea>", page)
    assert re.search(r'value="telefon"[^>]*checked|checked[^>]*value="telefon"', page)

    response = client.post(f"/d/08115/kontakte/{contact.id}/bearbeiten", data={
        "date": "2026-01-15", "kind": "sonstiges", "municipalities": ["08115045"], "note": "neu"})
    assert response.status_code == 302
    stored = all_contacts()[0]
    assert (stored.date, stored.kind, stored.note) == (date(2026, 1, 15), "sonstiges", "neu")
    assert [m.ags for m in stored.municipalities] == ["08115045"]

    response = client.post(f"/d/08115/kontakte/{contact.id}/bearbeiten", data={
        "date": "", "kind": "sonstiges", "municipalities": ["08115045"], "note": "anders"})
    assert response.status_code == 422 and all_contacts()[0].note == "neu"

    confirm = client.get(f"/d/08115/kontakte/{contact.id}/loeschen")
    assert confirm.status_code == 200 and "Endgültig löschen" in confirm.get_data(as_text=True)
    assert count() == 1  # showing the question deletes nothing
    response = client.post(f"/d/08115/kontakte/{contact.id}/loeschen")
    assert response.status_code == 302 and count() == 0


def test_list_filters_stay_in_the_url_and_pages(district, client, coordinator):
    for day in range(55):
        contacts.create_contact("08115", valid(date=date(2025, 1, 1) + timedelta(days=day), kind="telefon"))
    contacts.create_contact("08115", valid(date=date(2024, 5, 5), kind="video", municipalities=["08115045"],
                                           note="Videokonferenz Sindelfingen"))
    db.session.commit()

    page = client.get("/d/08115/kontakte").get_data(as_text=True)
    assert "56 Kontakte" in page and "angezeigt 1 bis 50" in page and "Seite 1 von 2" in page
    assert "<caption" in page and 'scope="col"' in page and 'class="table-scroll"' in page
    second = client.get("/d/08115/kontakte?page=2").get_data(as_text=True)
    assert "Videokonferenz Sindelfingen" in second

    filtered = client.get("/d/08115/kontakte?kind=telefon&from=2025-02-01&to=2025-02-10")
    page = filtered.get_data(as_text=True)
    assert "10 Kontakte" in page and "Videokonferenz Sindelfingen" not in page
    assert 'href="/d/08115/kontakte.csv?' in page and "from=2025-02-01" in page  # the export keeps the filters
    page = client.get("/d/08115/kontakte?municipality=08115045").get_data(as_text=True)
    assert "1 Kontakt" in page and "Videokonferenz Sindelfingen" in page
    # Values that are no date or not of the district are ignored, never an error.
    page = client.get("/d/08115/kontakte?from=gestern&municipality=08116019&kind=x&topic=abc&page=99")
    assert page.status_code == 200 and "56 Kontakte" in page.get_data(as_text=True)


def test_the_dashboard_links_the_contacts_for_editors_only(district, client, make_user, sign_in):
    sign_in(make_user())
    assert 'href="/d/08115/kontakte"' in client.get("/d/08115/").get_data(as_text=True)
    sign_in(make_user("lesen@lrabb.de", role="viewer"))
    assert 'href="/d/08115/kontakte"' not in client.get("/d/08115/").get_data(as_text=True)


def contact_routes(contact_id, key="08115"):
    base = f"/d/{key}/kontakte"
    return [("GET", base), ("GET", f"{base}/neu"), ("POST", f"{base}/neu"), ("GET", f"{base}/{contact_id}/bearbeiten"),
            ("POST", f"{base}/{contact_id}/bearbeiten"), ("GET", f"{base}/{contact_id}/loeschen"),
            ("POST", f"{base}/{contact_id}/loeschen"), ("GET", f"{base}/import"), ("POST", f"{base}/import"),
            ("POST", f"{base}/import/{'a' * 32}"), ("GET", f"{base}.csv")]


def test_viewers_get_403_everywhere(district, client, make_user, sign_in):
    contact = make_contact()
    sign_in(make_user("lesen@lrabb.de", role="viewer"))
    for method, path in contact_routes(contact.id):
        response = client.open(path, method=method, data={"date": "2026-01-01", "kind": "telefon",
                                                          "municipalities": ["08115003"]})
        assert response.status_code == 403, (method, path)
    assert count() == 1 and all_contacts()[0].kind == "telefon"


def test_anonymous_visitors_go_to_the_login(district, client):
    response = client.get("/d/08115/kontakte")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_a_coordinator_of_another_district_gets_404_everywhere(district, client, make_user, sign_in):
    contact = make_contact(note="Böblinger Notiz")
    sign_in(make_user("koordination@lra-es.de", districts=("08116",)))
    # The foreign district's routes, and the foreign contact under the own district's key.
    routes = contact_routes(contact.id) + [(m, p) for m, p in contact_routes(contact.id, "08116")
                                          if f"/{contact.id}/" in p]
    for method, path in routes:
        response = client.open(path, method=method, data={"date": "2026-01-01", "kind": "video",
                                                          "municipalities": ["08116019"]})
        assert response.status_code == 404, (method, path)
    stored = all_contacts()
    assert len(stored) == 1 and (stored[0].kind, stored[0].note) == ("telefon", "Böblinger Notiz")


@pytest.mark.parametrize("huge", [2**31, 2**63, 2**64 + 5, 10**30])
def test_ids_beyond_the_database_are_404(district, client, coordinator, huge):
    for method, path in contact_routes(huge):
        if f"/{huge}/" in path:
            assert client.open(path, method=method).status_code == 404, (method, path)


# --- CSV import ---------------------------------------------------------------------------


def read(text, encoding="utf-8"):
    return contacts_csv.read_import(district_row(), text if isinstance(text, bytes) else text.encode(encoding))


def district_row():
    from directory.models import District

    return db.session.get(District, "08115")


def problems_of(plan):
    return [(p.line, p.value, p.reason) for p in plan.problems]


def test_import_reads_names_ags_labels_and_reports_every_bad_row(district):
    future = (contacts.today() + timedelta(days=1)).strftime("%d.%m.%Y")
    text = (
        HEADER
        + "21.11.2026,08115003,Vor-Ort-Termin,OZG,Besuch im Rathaus\n"               # 2 valid
        + '2026-11-20,"Sindelfingen, Stadt|Böblingen",telefon,"OZG; E-Rechnung",\n'   # 3 valid: names
        + "20.11.2026,8115045,Video,,\n"                                               # 4 valid: 7-digit AGS
        + f"{future},08115003,Telefon,,\n"                                             # 5 future
        + "31.02.2026,08115003,Telefon,,\n"                                            # 6 no date
        + "01.10.2026,Esslingen am Neckar,Telefon,,\n"                                 # 7 other district
        + "01.10.2026,08115003,Brief,,\n"                                              # 8 unknown kind
        + "01.10.2026,08115003,Telefon,DMS,\n"                                         # 9 unknown topic
        + "01.10.2026,,Telefon,,\n"                                                    # 10 no municipality
        + "01.10.2026,08115003,Telefon\n"                                              # 11 columns
        + "\n"
        + f"01.10.2026,08115003,Telefon,,{'x' * 501}\n"                                # 13 note too long
        + "1999-12-31,08115003,Telefon,,\n"                                            # 14 before 2000
    )

    plan = read(text)

    assert plan.readable and plan.delimiter == ","
    assert [row.line for row in plan.rows] == [2, 3, 4]
    assert [[m.ags for m in row.municipalities] for row in plan.rows] == [
        ["08115003"], ["08115045", "08115003"], ["08115045"]]
    assert [row.kind for row in plan.rows] == ["vor_ort", "telefon", "video"]
    assert [[t.name for t in row.topics] for row in plan.rows] == [["OZG"], ["OZG", "E-Rechnung"], []]
    problems = {line: (value, reason) for line, value, reason in problems_of(plan)}
    assert sorted(problems) == [5, 6, 7, 8, 9, 10, 11, 13, 14]
    assert problems[5] == (future, problems[5][1]) and "Zukunft" in problems[5][1]
    assert problems[6][0] == "31.02.2026" and "gültiges Datum" in problems[6][1]
    assert problems[7][0] == "Esslingen am Neckar" and "Keine Gemeinde des Kreises Böblingen" in problems[7][1]
    assert problems[8][0] == "Brief" and "Vor-Ort-Termin" in problems[8][1]
    assert problems[9] == ("DMS", "Unbekanntes Thema")
    assert "mindestens eine Gemeinde" in problems[10][1]
    assert "3 Spalten statt 5" in problems[11][1]
    assert "500" in problems[13][1]
    assert "2000" in problems[14][1]
    assert count() == 0  # reading writes nothing


def test_import_of_a_windows_1252_file_with_semicolons(district):
    text = ("Notiz;Art;Gemeinden;Datum\r\n"
            "Gespräch über Ausschreibungen;Telefon;Böblingen, Stadt;15.10.2026\r\n"
            "Straßenfest;Veranstaltung extern;\"Böblingen; Sindelfingen\";16.10.2026\r\n")
    plan = read(text, encoding="cp1252")
    assert plan.readable and (plan.encoding, plan.delimiter) == ("cp1252", ";")
    assert plan.problems == []
    assert [row.note for row in plan.rows] == ["Gespräch über Ausschreibungen", "Straßenfest"]
    assert [len(row.municipalities) for row in plan.rows] == [1, 2]

    bom = b"\xef\xbb\xbf" + "datum;gemeinden;art\n15.10.2026;Böblingen;vor-ort\n".encode()
    plan = read(bom)
    assert plan.readable and plan.encoding == "utf-8-sig" and plan.rows[0].kind == "vor_ort"


def test_an_ambiguous_short_name_is_reported(district):
    db.session.add_all([Municipality(ags="08115901", name="Au, Gemeinde", district_key="08115"),
                        Municipality(ags="08115902", name="Au, Stadt", district_key="08115")])
    db.session.commit()
    plan = read(HEADER + "01.10.2026,Au,Telefon,,\n01.10.2026,\"Au, Stadt\",Telefon,,\n")
    assert [row.line for row in plan.rows] == [3]
    [(line, value, reason)] = problems_of(plan)
    assert (line, value) == (2, "Au") and "Mehrdeutig" in reason and "08115901" in reason


@pytest.mark.parametrize("data, words", [
    (b"", "leer"),
    (b"   \n\n", "leer"),
    (b"datum,gemeinden,art\n", "nur die Kopfzeile"),
    (b"email,ags\na@b.de,08115003\n", "Spaltennamen"),
    (b"datum,gemeinden\n01.10.2026,08115003\n", "Spaltennamen"),
    (b"datum,gemeinden,art,art\n01.10.2026,08115003,Telefon,Telefon\n", "mehrfach"),
    (b"PK\x03\x04\x14\x00\x06\x00", "Excel"),
    (b"datum,gemeinden,art\n\x00\x01\x02", "keine Textdatei"),
    ("datum,gemeinden,art\n".encode("utf-16"), "UTF-16"),
])
def test_a_file_that_can_not_be_read_is_one_error_and_writes_nothing(district, data, words):
    plan = read(data)
    assert not plan.readable and words in plan.error
    result = contacts_csv.import_contacts(district_row(), data)
    assert result.imported == 0 and count() == 0


def upload(client, data, key="08115", name="kontakte.csv"):
    return client.post(f"/d/{key}/kontakte/import", data={"file": (io.BytesIO(data), name)},
                       content_type="multipart/form-data")


def upload_id_of(response):
    match = re.search(r'action="/d/\d+/kontakte/import/([A-Za-z0-9_-]+)"', response.get_data(as_text=True))
    return match and match.group(1)


def test_upload_preview_then_confirm(district, client, coordinator):
    assert "datum, gemeinden, art" in client.get("/d/08115/kontakte/import").get_data(as_text=True)
    data = (HEADER + "21.11.2026,08115003,Vor-Ort-Termin,OZG,Besuch\n"
                     "22.11.2026,Nirgendwo,Telefon,,\n"
                     "23.11.2026,Sindelfingen,Telefon,Unbekannt,\n"
                     "24.11.2026,Sindelfingen,Video,,=HYPERLINK()\n").encode("cp1252")

    preview = upload(client, data)

    page = preview.get_data(as_text=True)
    assert preview.status_code == 200
    assert re.search(r'id="import-count">2<', page) and re.search(r'id="problem-count">2<', page)
    for line, value, reason in [(3, "Nirgendwo", "Keine Gemeinde des Kreises"), (4, "Unbekannt", "Unbekanntes Thema")]:
        assert re.search(rf">{line}</th>\s*<td[^>]*>{re.escape(value)}</td>\s*<td>{reason}", page), line
    assert "21.11.2026" in page and "Besuch" in page and "=HYPERLINK()" in page
    assert count() == 0
    upload_id = upload_id_of(preview)

    response = client.post(f"/d/08115/kontakte/import/{upload_id}")

    assert response.status_code == 302 and response.headers["Location"].endswith("/d/08115/kontakte")
    stored = all_contacts()
    assert [(c.date, c.kind, c.created_by_id) for c in stored] == [
        (date(2026, 11, 21), "vor_ort", coordinator.id), (date(2026, 11, 24), "video", coordinator.id)]
    listing = client.get("/d/08115/kontakte").get_data(as_text=True)
    assert "2 Kontakte importiert." in listing and "2 Zeilen wurden wegen Problemen nicht importiert (Zeilen 3, 4)" \
        in listing
    # An upload is imported once.
    assert client.post(f"/d/08115/kontakte/import/{upload_id}").status_code == 404
    assert count() == 2


def test_an_upload_belongs_to_its_uploader_and_district(district, client, make_user, sign_in):
    sign_in(make_user(districts=("08115", "08116")))
    upload_id = upload_id_of(upload(client, (HEADER + "21.11.2026,08115003,Telefon,,\n").encode()))
    assert client.post(f"/d/08116/kontakte/import/{upload_id}").status_code == 404
    sign_in(make_user("kollegin@lrabb.de"))
    assert client.post(f"/d/08115/kontakte/import/{upload_id}").status_code == 404
    assert client.post("/d/08115/kontakte/import/..%2F..").status_code == 404
    assert count() == 0


def test_an_unreadable_upload_is_shown_at_the_file_field(district, client, coordinator):
    response = upload(client, b"name,email\nAnna,a@b.de\n")
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and "Spaltennamen" in field_error(page, "file")
    assert upload_id_of(response) is None and count() == 0
    page = upload(client, HEADER.encode() + b"01.10.2026,Nirgendwo,Telefon,,\n").get_data(as_text=True)
    assert "keine Zeile, die importiert werden kann" in page and "/kontakte/import/" not in page


def test_an_upload_larger_than_the_limit_is_refused(district, client, coordinator, monkeypatch):
    from subscribers import csvio

    monkeypatch.setattr(csvio, "MAX_UPLOAD_BYTES", 100)
    response = upload(client, HEADER.encode() + b"21.11.2026,08115003,Telefon,,\n" * 10)
    assert "größer als" in field_error(response.get_data(as_text=True), "file") and count() == 0


# --- CSV export ------------------------------------------------------------------------


def test_export_is_spreadsheet_safe_and_reads_back(district, client, coordinator):
    make_contact(day=date(2026, 3, 4), kind="vor_ort", ags=["08115003", "08115045"], topics=[topic("OZG")],
                 note="=SUMME(A1); Vorsicht")
    make_contact(day=date(2026, 5, 6), kind="veranstaltung_extern", note="-Messe-\nzweite Zeile")
    make_contact(day=date(2026, 5, 7), key="08116", ags=["08116019"], note="Esslingen")

    response = client.get("/d/08115/kontakte.csv")

    assert response.status_code == 200 and response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert re.fullmatch(r'attachment; filename="kontakte-08115-\d{4}-\d\d-\d\d\.csv"',
                        response.headers["Content-Disposition"])
    assert response.headers["Cache-Control"] == "no-store"
    data = response.data
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(data[3:].decode("utf-8"), newline=""), delimiter=";"))
    assert rows[0] == ["Datum", "Gemeinden", "Gemeindenamen", "Art", "Themen", "Notiz", "Erfasst am"]
    assert [row[:6] for row in rows[1:]] == [
        ["06.05.2026", "08115003", "Böblingen, Stadt", "Veranstaltung extern", "", "'-Messe-\nzweite Zeile"],
        ["04.03.2026", "08115003; 08115045", "Böblingen, Stadt; Sindelfingen, Stadt", "Vor-Ort-Termin", "OZG",
         "'=SUMME(A1); Vorsicht"],
    ]
    assert "Esslingen" not in data.decode("utf-8")

    plan = read(data)
    assert plan.readable and plan.problems == []
    assert [(r.date, r.kind, [m.ags for m in r.municipalities], [t.name for t in r.topics], r.note)
            for r in plan.rows] == [
        (date(2026, 5, 6), "veranstaltung_extern", ["08115003"], [], "-Messe-\nzweite Zeile"),
        (date(2026, 3, 4), "vor_ort", ["08115003", "08115045"], ["OZG"], "=SUMME(A1); Vorsicht"),
    ]


def test_export_keeps_the_lists_filters(district, client, coordinator):
    make_contact(day=date(2026, 3, 4), kind="vor_ort")
    make_contact(day=date(2026, 5, 6), kind="telefon")
    data = client.get("/d/08115/kontakte.csv?kind=telefon").data.decode("utf-8-sig")
    assert "06.05.2026" in data and "04.03.2026" not in data


# --- CLI ----------------------------------------------------------------------------------


def cli(app, tmp_path, text, *options, district_key="08115", encoding="utf-8"):
    path = tmp_path / "kontakte.csv"
    path.write_bytes(text.encode(encoding))
    return app.test_cli_runner().invoke(args=["contacts", "import", district_key, str(path), *options])


def test_cli_imports_valid_rows_and_lists_skipped_ones_on_stderr(district, app, tmp_path):
    text = HEADER + "21.11.2026,08115003,Telefon,,\n22.11.2026,Nirgendwo,Telefon,,\n23.11.2026,08115045,video,,\n"

    dry = cli(app, tmp_path, text, "--dry-run")
    assert dry.exit_code == 0, dry.output + dry.stderr
    assert "Probelauf: 2 Kontakte würden importiert, 1 Zeile übersprungen" in dry.stdout and count() == 0

    result = cli(app, tmp_path, text)
    assert result.exit_code == 0, result.output + result.stderr
    assert "Zeile 3: Nirgendwo: Keine Gemeinde des Kreises Böblingen" in result.stderr
    assert "2 Kontakte importiert, 1 Zeile übersprungen." in result.stdout
    assert [c.kind for c in all_contacts()] == ["telefon", "video"]
    assert all(c.created_by_id is None for c in all_contacts())


def test_cli_exits_1_for_an_unusable_file_or_district(district, app, tmp_path):
    result = cli(app, tmp_path, "name;email\nAnna;a@b.de\n")
    assert result.exit_code == 1 and "Spaltennamen" in result.stderr and "nichts importiert" in result.stderr
    result = cli(app, tmp_path, HEADER + "21.11.2026,08115003,Telefon,,\n", district_key="99999")
    assert result.exit_code == 1 and "Unbekannter Kreis: 99999" in result.stderr
    assert count() == 0
