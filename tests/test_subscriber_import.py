"""CSV import and export of a district's subscriber list: CLI, service and pages."""
import csv
import io
import re

import pytest
from sqlalchemy import func, select

from core.extensions import db
from core.spreadsheet import FORMULA_PREFIXES, guard_formula, stamp_text
from directory.models import District
from subscribers import csvio
from subscribers.models import Subscriber, Suppression

HEADER = "email,name,ags,topics\n"


def fresh():
    db.session.rollback()  # the CLI or request committed in its own session; look afresh


def count_subscribers(district_key="08115", status=None):
    fresh()
    query = select(func.count()).select_from(Subscriber).where(Subscriber.district_key == district_key)
    if status:
        query = query.where(Subscriber.status == status)
    return db.session.execute(query).scalar_one()


def subscriber(email):
    fresh()
    return db.session.execute(select(Subscriber).where(Subscriber.email_key == email.lower())).scalar_one_or_none()


def problem_lines(output):
    return [int(n) for n in re.findall(r"^Zeile (\d+): ", output, re.MULTILINE)]


@pytest.fixture
def write_csv(tmp_path):
    def write(text, name="list.csv", encoding="utf-8"):
        path = tmp_path / name
        path.write_bytes(text if isinstance(text, bytes) else text.encode(encoding))
        return str(path)

    return write


@pytest.fixture
def cli_import(app, write_csv):
    """`flask subscribers import` with a fresh runner; stdout and stderr apart."""

    def run(text, *options, district="08115", encoding="utf-8"):
        path = text if isinstance(text, str) and text.endswith(".csv") else write_csv(text, encoding=encoding)
        return app.test_cli_runner().invoke(args=["subscribers", "import", district, path, *options])

    return run


@pytest.fixture
def district(two_districts, make_topic):
    make_topic("service-bw")
    make_topic("DMS")
    make_topic("OZG", "08116")  # another district's topic is unknown in 08115
    return db.session.get(District, "08115")


# --- the 1,000-row file ------------------------------------------------------


def thousand_rows(make_subscriber):
    """1,000 data rows (lines 2–1001), 30 of them broken for every reason; returns (text, {line: kind})."""
    kinds = ("invalid", "municipality", "other_district", "topic", "in_list", "unsubscribed", "erased",
             "bounced", "twice", "columns", "long_name", "empty_ags", "no_at")
    broken = {}
    rows = []
    for n in range(1000):
        line = n + 2
        ags = "08115003" if n % 2 else "08115045"
        row = [f"person{n}@sindelfingen.de", f"Person {n}", ags, "service-bw;DMS" if n % 3 == 0 else ""]
        kind = None
        if n % 33 == 5 and len(broken) < 30:
            kind = kinds[len(broken) % len(kinds)]
            if kind == "invalid":
                row[0] = f"person{n}@@sindelfingen"
            elif kind == "no_at":
                row[0] = f"person{n}.sindelfingen.de"
            elif kind == "municipality":
                row[2] = "08115999"
            elif kind == "other_district":
                row[2] = "08116019"
            elif kind == "empty_ags":
                row[2] = ""
            elif kind == "topic":
                row[3] = "service-bw;Gibtsnicht"
            elif kind in ("in_list", "unsubscribed", "erased", "bounced"):
                # Already on the list (in that status), spelt differently in the file.
                make_subscriber(row[0], status="active" if kind == "in_list" else kind)
                row[0] = row[0].upper()
            elif kind == "twice":
                row[0] = "person1@sindelfingen.de"  # line 3 has it already
            elif kind == "columns":
                row.append("zu viel")
            elif kind == "long_name":
                row[1] = "x" * 201
            broken[line] = kind
        rows.append(row)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["email", "name", "ags", "topics"])
    writer.writerows(rows)
    return out.getvalue(), broken


def test_thousand_rows_with_thirty_broken_import_973_and_report_each_line(district, make_subscriber, cli_import):
    text, broken = thousand_rows(make_subscriber)
    assert len(broken) == 30 and len(set(broken.values())) == 13
    topic_lines = sorted(line for line, kind in broken.items() if kind == "topic")
    assert len(topic_lines) == 3
    before = count_subscribers()

    result = cli_import(text)

    assert result.exit_code == 0, result.output + result.stderr
    # An unknown topic no longer rejects its row: the row comes in without it.
    assert problem_lines(result.stderr) == sorted(set(broken) - set(topic_lines))
    assert "973 Adressen importiert, 27 Zeilen übersprungen." in result.stdout
    assert "Unbekannte Themen, ohne sie importiert (--create-topics legt sie an): Gibtsnicht" in result.stdout
    assert count_subscribers() == before + 973
    assert subscriber(f"person{topic_lines[0] - 2}@sindelfingen.de").topic_names == ["service-bw"]
    stderr = result.stderr.splitlines()

    def reported(kind):
        return [line for line in stderr if int(line.split(":")[0].split()[1]) in
                [n for n, k in broken.items() if k == kind]]

    assert all("Ungültige E-Mail-Adresse" in line for line in reported("invalid") + reported("no_at"))
    assert all("Unbekannte Gemeinde" in line for line in reported("municipality") + reported("other_district"))
    assert all("fehlt" in line for line in reported("empty_ags"))
    assert all("bereits in der Liste" in line for line in reported("in_list"))
    assert all("Gesperrt" in line for line in reported("unsubscribed") + reported("erased") + reported("bounced"))
    assert all("Doppelt in der Datei (zuerst in Zeile 3)" in line for line in reported("twice"))
    assert all("5 Spalten statt 4" in line for line in reported("columns"))
    assert all("länger als 200 Zeichen" in line for line in reported("long_name"))
    # A suppressed address is not re-added, whatever its spelling.
    for line, kind in broken.items():
        address = f"person{line - 2}@sindelfingen.de"
        if kind in ("unsubscribed", "bounced"):
            assert subscriber(address).status == kind
        elif kind == "erased":
            assert subscriber(address) is None

    imported = subscriber("person0@sindelfingen.de")
    assert (imported.status, imported.consent_source, imported.name) == ("active", "import", "Person 0")
    assert imported.consent_confirmed_at is not None and imported.municipality_ags == "08115045"
    assert imported.topic_names == ["DMS", "service-bw"]
    assert subscriber("person1@sindelfingen.de").topic_names == []

    again = cli_import(text)

    assert again.exit_code == 0
    assert "0 Adressen importiert, 1000 Zeilen übersprungen." in again.stdout
    assert count_subscribers() == before + 973
    assert "Zeile 2: person0@sindelfingen.de: Steht bereits in der Liste (aktiv)" in again.stderr


def test_import_service_reads_the_list_once_not_per_row(district, make_subscriber):
    """The list, suppressions, municipalities and topics are read once per file.

    (PostgreSQL also gets the INSERTs batched; SQLite, in process, row by row.)
    """
    from sqlalchemy import event

    text, _broken = thousand_rows(make_subscriber)
    statements = []

    def record(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        result = csvio.import_subscribers(district, text.encode())
        db.session.commit()
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    assert result.imported == 973 and result.plan.rejected_lines == 27
    assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) < 10
    if db.engine.dialect.name == "postgresql":
        assert len(statements) < 60


# --- encodings, delimiters and the header --------------------------------------


def test_windows_1252_file_with_umlauts(district, cli_import):
    text = "email;name;ags\r\njürgen.müller@böblingen.de;Jürgen Müller;08115003\r\nx@y.de;Grüße, Straße;08115045\r\n"

    result = cli_import(text, encoding="cp1252")

    assert result.exit_code == 0, result.output
    assert "2 Adressen importiert" in result.stdout
    assert subscriber("jürgen.müller@böblingen.de").name == "Jürgen Müller"
    assert subscriber("x@y.de").name == "Grüße, Straße"


def test_semicolon_delimiter_with_quoted_topics_and_any_header_case(district, cli_import):
    text = 'AGS;E-Mail-Adresse-Alt;EMAIL;Topics;Name\n8115003;alt;anna@b.de;"service-bw;dms";Anna\n'

    result = cli_import(text)

    assert result.exit_code == 0, result.output + result.stderr
    anna = subscriber("anna@b.de")
    assert anna.topic_names == ["DMS", "service-bw"]
    assert anna.municipality_ags == "08115003"  # the dropped leading zero is restored
    assert anna.name == "Anna"


def test_utf8_with_bom(district, cli_import):
    result = cli_import(b"\xef\xbb\xbfemail,ags\nb\xc3\xa4r@b.de,08115045\n")

    assert result.exit_code == 0, result.output
    assert subscriber("bär@b.de") is not None


@pytest.mark.parametrize("data, message", [
    (b"", "leer"),
    (b"\n \n", "leer"),
    (b"email,name,ags\n", "nur die Kopfzeile"),
    (b"anna@b.de,Anna,08115003\n", "Spaltennamen"),
    (b"email,name\nanna@b.de,Anna\n", "Spaltennamen"),
    (b"email,ags,EMAIL\na@b.de,08115003,c@d.de\n", "mehrfach"),
    (b"\xff\xfee\x00m\x00", "UTF-16"),
    (b"PK\x03\x04\x14\x00", "Excel"),
    (b"email,ags\n\x81\x8d@b.de,08115003\n", "Zeile 2 ist weder UTF-8 noch Windows-1252"),
    (b"\xef\xbb\xbfemail,ags\nb\xe4r@b.de,08115003\n", "als UTF-8 gekennzeichnet"),
])
def test_file_level_problems_import_nothing(district, make_subscriber, cli_import, data, message):
    make_subscriber()
    result = cli_import(data)

    assert result.exit_code == 1
    assert message in result.stderr
    assert "nichts importiert" in result.stderr
    assert count_subscribers() == 1


def test_unknown_district_exits_1(district, cli_import):
    result = cli_import(HEADER + "a@b.de,,08115003,\n", district="99999")

    assert result.exit_code == 1
    assert "Unbekannter Kreis: 99999" in result.stderr


def test_blank_lines_and_multiline_fields_keep_physical_line_numbers(district, cli_import):
    text = (
        "\n"                                     # line 1
        "email,name,ags\n"                       # line 2: the header
        "a@b.de,\"Anna\",08115003\n"             # line 3
        "\n"                                     # line 4
        "b@b.de,\"Bernd\nBerger\",08115003\n"    # lines 5–6: a line break inside quotes
        "kaputt,Carl,08115003\n"                 # line 7
        "c@b.de,\"Carla,08115003\n"              # line 8: the quote is never closed…
        "d@b.de,Dora,08115003\n"                 # …and swallows line 9
    )

    result = cli_import(text)

    assert problem_lines(result.stderr) == [5, 7, 8]
    assert "Zeilenumbruch in einem Feld (die Zeile reicht bis Zeile 6)" in result.stderr
    assert "Anführungszeichen" in result.stderr
    assert "1 Adresse importiert, 3 Zeilen übersprungen." in result.stdout


def test_dry_run_writes_nothing(district, cli_import):
    result = cli_import(HEADER + "a@b.de,Anna,08115003,\nb@b.de,Bernd,08116019,\n", "--dry-run")

    assert result.exit_code == 0
    assert "Zeile 3: 08116019: Unbekannte Gemeinde" in result.stderr
    assert "Probelauf: 1 Adresse würde importiert, 1 Zeile übersprungen." in result.stdout
    assert count_subscribers() == 0


def test_opt_in_creates_pending_rows_and_sends_confirmation_mails(two_districts, smtp_app, smtp_server, run_jobs,
                                                                  write_csv):
    path = write_csv(HEADER + "a@b.de,Anna,08115003,\nb@b.de,Bernd,08115045,\nkaputt,Carl,08115003,\n")
    runner = smtp_app.test_cli_runner()

    result = runner.invoke(args=["subscribers", "import", "08115", path, "--opt-in"])

    assert result.exit_code == 0, result.output
    assert "2 Adressen importiert (unbestätigt, Bestätigungsmails werden versandt)" in result.output
    anna = subscriber("a@b.de")
    assert (anna.status, anna.consent_source, anna.consent_confirmed_at) == ("pending", "import", None)
    assert anna.confirm_nonce and anna.consent_requested_at and anna.consent_text_version
    assert smtp_server.messages == []  # nothing before the worker runs

    run_jobs()

    messages = smtp_server.wait_for(2)
    assert sorted(m["To"] for m in messages) == ["a@b.de", "b@b.de"]
    assert all("bestätigen" in m["Subject"] for m in messages)
    run_jobs()
    assert len(smtp_server.wait_for(3, timeout=0.5)) == 2


def test_suppressed_address_is_refused_with_opt_in_too(district, make_subscriber, cli_import):
    make_subscriber("weg@b.de", status="erased")

    result = cli_import(HEADER + "weg@b.de,,08115003,\n", "--opt-in")

    assert "Zeile 2: weg@b.de: Gesperrt" in result.stderr
    assert count_subscribers() == 0
    fresh()
    assert db.session.execute(select(func.count()).select_from(Suppression)).scalar_one() == 1


# --- export ---------------------------------------------------------------------


def parse_export(data):
    assert data.startswith(b"\xef\xbb\xbf")
    return list(csv.reader(io.StringIO(data[3:].decode("utf-8"), newline=""), delimiter=";"))


def test_export_guards_cells_a_spreadsheet_would_execute(district, make_subscriber, app):
    make_subscriber("=cmd@b.de", name="=HYPERLINK(\"http://x\")", department="+1")
    make_subscriber("plain@b.de", name="-2", department="@x")
    make_subscriber("tab@b.de", name="\tTab")

    rows = parse_export(app.test_cli_runner().invoke(args=["subscribers", "export", "08115"]).stdout_bytes)

    assert rows[0] == list(csvio.EXPORT_COLUMNS)
    by_email = {row[0]: dict(zip(rows[0], row)) for row in rows[1:]}
    assert by_email["'=cmd@b.de"]["Name"] == "'=HYPERLINK(\"http://x\")"
    assert by_email["'=cmd@b.de"]["Dienststelle"] == "'+1"
    assert by_email["plain@b.de"]["Name"] == "'-2"
    assert by_email["plain@b.de"]["Dienststelle"] == "'@x"
    # Names are stored with whitespace collapsed, so the tab became nothing to guard.
    assert by_email["tab@b.de"]["Name"] == "Tab"
    assert guard_formula("\tTab") == "'\tTab" and guard_formula("\r1") == "'\r1"
    for row in rows[1:]:
        assert not any(cell.startswith(FORMULA_PREFIXES) for cell in row)


def test_export_columns_and_dates(district, make_subscriber, app, tmp_path):
    from subscribers.services import topics_by_name

    make_subscriber("anna@b.de", name="Anna", ags="08115045", topics=topics_by_name("08115", ["DMS", "service-bw"]),
                    department="Hauptamt")
    make_subscriber("bernd@b.de", status="pending")
    make_subscriber("eva@e.de", district_key="08116")
    target = tmp_path / "out.csv"

    result = app.test_cli_runner().invoke(args=["subscribers", "export", "08115", "-o", str(target)])

    assert result.exit_code == 0, result.output
    rows = parse_export(target.read_bytes())
    assert [row[0] for row in rows[1:]] == ["anna@b.de", "bernd@b.de"]  # only this district
    assert rows[0] == ["E-Mail", "Name", "AGS", "Gemeinde", "Themen", "Status", "Dienststelle", "Einwilligung über",
                       "Version des Einwilligungstexts", "Einwilligung angefragt am", "Einwilligung bestätigt am",
                       "Angelegt am"]
    anna = dict(zip(rows[0], rows[1]))
    assert anna["Themen"] == "DMS;service-bw"
    assert (anna["AGS"], anna["Gemeinde"], anna["Status"], anna["Dienststelle"]) == (
        "08115045", "Sindelfingen, Stadt", "aktiv", "Hauptamt")
    assert dict(zip(rows[0], rows[2]))["Status"] == "unbestätigt"
    assert anna["Einwilligung über"] == "Koordination" and anna["Version des Einwilligungstexts"] == "2026-11-de"
    fresh()
    created = subscriber("anna@b.de").created_at
    assert anna["Angelegt am"] == stamp_text(created)  # Berlin time
    for column in ("Einwilligung angefragt am", "Einwilligung bestätigt am", "Angelegt am"):
        assert re.fullmatch(r"\d\d\.\d\d\.\d{4} \d\d:\d\d", anna[column]), anna[column]
    assert dict(zip(rows[0], rows[2]))["Einwilligung bestätigt am"] == ""
    assert b'"DMS;service-bw"' in target.read_bytes()


def test_export_then_import_round_trip(two_districts, make_topic, make_subscriber, app, tmp_path, cli_import):
    from subscribers.services import topics_by_name

    make_topic("DMS")
    make_topic("service-bw")
    make_subscriber("+plus@b.de", name="=Summe", ags="08115045", topics=topics_by_name("08115", ["DMS", "service-bw"]),
                    department="-Amt")
    make_subscriber("zweite@b.de", name="Zweite")
    target = tmp_path / "export.csv"
    app.test_cli_runner().invoke(args=["subscribers", "export", "08115", "-o", str(target)])
    fresh()
    for row in db.session.execute(select(Subscriber)).scalars():
        db.session.delete(row)
    db.session.commit()

    result = cli_import(str(target))

    assert result.exit_code == 0, result.output + result.stderr
    assert "2 Adressen importiert, 0 Zeilen übersprungen." in result.stdout
    plus = subscriber("+plus@b.de")
    assert (plus.name, plus.department, plus.municipality_ags, plus.topic_names) == (
        "=Summe", "-Amt", "08115045", ["DMS", "service-bw"])
    assert plus.consent_source == "import"


# --- the pages -------------------------------------------------------------------


def upload(client, data, opt_in=False, key="08115", name="liste.csv"):
    form = {"file": (io.BytesIO(data), name)}
    if opt_in:
        form["opt_in"] = "y"
    return client.post(f"/d/{key}/subscribers/import", data=form, content_type="multipart/form-data")


def upload_id_of(response):
    match = re.search(r'action="/d/\d+/subscribers/import/([A-Za-z0-9_-]+)"', response.get_data(as_text=True))
    return match and match.group(1)


def test_upload_preview_then_confirm_imports(district, make_subscriber, make_user, login):
    make_subscriber("da@b.de")
    client = login(make_user())
    assert "Opt-in-Mail senden statt direkt aktivieren" in client.get("/d/08115/subscribers/import").get_data(True)
    data = (HEADER + "neu@b.de,Neu,08115003,DMS\nda@b.de,,08115003,\nkaputt,,08115003,\n"
            "zwei@b.de,,08115045,Unbekannt\ndrei@b.de,=X,08115045,\n").encode("cp1252")

    preview = upload(client, data)

    page = preview.get_data(as_text=True)
    assert preview.status_code == 200
    assert re.search(r'id="import-count">3<', page) and re.search(r'id="problem-count">2<', page)
    for line, value, reason in [(3, "da@b.de", "Steht bereits in der Liste"), (4, "kaputt", "Ungültige E-Mail-Adresse")]:
        assert re.search(rf">{line}</th>\s*<td[^>]*>{re.escape(value)}</td>\s*<td>{reason}", page), line
    assert "neu@b.de" in page and "drei@b.de" in page and "zwei@b.de" in page
    # The unknown topic does not reject its row; the page names it and offers to create it.
    assert re.search(r'id="unknown-topics">\s*<li>Unbekannt ', page)
    assert 'name="unknown_topics" value="skip" checked' in page and 'value="create"' in page
    assert count_subscribers() == 1  # the preview writes nothing
    upload_id = upload_id_of(preview)

    response = client.post(f"/d/08115/subscribers/import/{upload_id}")

    assert response.status_code == 302
    assert response.headers["Location"].endswith("/d/08115/subscribers")
    assert count_subscribers() == 4
    neu = subscriber("neu@b.de")
    assert (neu.status, neu.consent_source, neu.topic_names) == ("active", "import", ["DMS"])
    assert subscriber("zwei@b.de").topic_names == []  # imported without the unknown topic
    flashed = client.get("/d/08115/subscribers").get_data(as_text=True)
    assert "3 Adressen importiert." in flashed and "2 Zeilen wurden wegen Problemen nicht importiert." in flashed
    assert "Ohne das unbekannte Thema importiert: Unbekannt" in flashed
    # The upload is used up: confirming twice imports nothing more.
    assert client.post(f"/d/08115/subscribers/import/{upload_id}").status_code == 404


def test_confirm_parses_again_against_the_current_list(district, make_subscriber, make_user, login):
    client = login(make_user())
    upload_id = upload_id_of(upload(client, (HEADER + "a@b.de,,08115003,\nb@b.de,,08115003,\n").encode()))
    make_subscriber("a@b.de", status="unsubscribed")  # a@b.de left between preview and confirmation

    client.post(f"/d/08115/subscribers/import/{upload_id}")

    assert count_subscribers() == 2
    assert subscriber("a@b.de").status == "unsubscribed" and subscriber("b@b.de").status == "active"


def test_web_opt_in_sends_mails_after_commit(two_districts, smtp_app, smtp_server, run_jobs):
    from accounts.services import create_user

    user, password = create_user("k@lrabb.de", "coordinator", ["08115"])
    db.session.commit()
    client = smtp_app.test_client()
    client.post("/login", data={"email": user.email, "password": password})
    preview = upload(client, (HEADER + "a@b.de,Anna,08115003,\n").encode(), opt_in=True)
    assert "Bestätigungsmail" in preview.get_data(as_text=True)

    client.post(f"/d/08115/subscribers/import/{upload_id_of(preview)}")
    run_jobs()

    assert subscriber("a@b.de").status == "pending"
    assert [m["To"] for m in smtp_server.wait_for(1)] == ["a@b.de"]


def test_file_level_error_and_oversized_upload_show_the_form(district, make_user, login):
    client = login(make_user())

    response = upload(client, b"PK\x03\x04\x14\x00")

    page = response.get_data(as_text=True)
    assert response.status_code == 200 and "keine CSV-Datei" in page and 'type="file"' in page
    big = (HEADER + "a@b.de,,08115003,\n").encode() + b"x" * csvio.MAX_UPLOAD_BYTES
    page = upload(client, big).get_data(as_text=True)
    assert "größer als 5 MB" in page
    assert upload(client, b"").status_code == 200  # no file chosen: the form asks again
    assert count_subscribers() == 0
    from core.queue import get_redis

    assert not get_redis().keys("subscriber-import:*")


def test_nothing_valid_offers_no_confirmation(district, make_user, login):
    client = login(make_user())

    preview = upload(client, (HEADER + "kaputt,,08115003,\n").encode())

    assert preview.status_code == 200 and upload_id_of(preview) is None
    assert "keine Zeile, die importiert werden kann" in preview.get_data(as_text=True)


def test_upload_ids_are_bound_to_user_and_district(district, make_user, client, sign_in):
    first = make_user("eins@lrabb.de")
    other = make_user("zwei@lrabb.de", districts=("08115", "08116"))
    sign_in(first)
    upload_id = upload_id_of(upload(client, (HEADER + "a@b.de,,08115003,\n").encode()))
    assert upload_id

    sign_in(other)
    assert client.post(f"/d/08115/subscribers/import/{upload_id}").status_code == 404
    assert client.post(f"/d/08116/subscribers/import/{upload_id}").status_code == 404
    assert client.post("/d/08115/subscribers/import/" + "x" * 32).status_code == 404
    assert client.post("/d/08115/subscribers/import/short").status_code == 404
    assert count_subscribers() == 0

    sign_in(first)
    from core.queue import get_redis

    assert 0 < get_redis().ttl(f"subscriber-import:{upload_id}") <= 3600
    get_redis().delete(f"subscriber-import:{upload_id}")  # as if the hour had passed
    assert client.post(f"/d/08115/subscribers/import/{upload_id}").status_code == 404
    assert count_subscribers() == 0


def test_download(district, make_subscriber, make_user, login):
    make_subscriber("anna@b.de", name="@Anna")
    client = login(make_user())

    response = client.get("/d/08115/subscribers/export.csv")

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert re.fullmatch(r'attachment; filename="abonnenten-08115-\d{4}-\d\d-\d\d\.csv"',
                        response.headers["Content-Disposition"])
    assert response.headers["Cache-Control"] == "no-store"
    rows = parse_export(response.data)
    assert rows[1][:2] == ["anna@b.de", "'@Anna"]


def test_viewer_may_neither_import_nor_download(district, make_user, login):
    client = login(make_user(role="viewer"))

    assert client.get("/d/08115/subscribers/export.csv").status_code == 403  # names and addresses

    assert client.get("/d/08115/subscribers/import").status_code == 403
    assert upload(client, (HEADER + "a@b.de,,08115003,\n").encode()).status_code == 403
    assert client.post("/d/08115/subscribers/import/" + "x" * 32).status_code == 403
    assert count_subscribers() == 0


def test_anonymous_is_sent_to_login(district, client):
    for response in (client.get("/d/08115/subscribers/import"), client.get("/d/08115/subscribers/export.csv")):
        assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_other_districts_coordinator_gets_404_everywhere(district, make_subscriber, make_user, client, sign_in):
    make_subscriber("anna@b.de")
    owner = make_user("eins@lrabb.de")
    sign_in(owner)
    upload_id = upload_id_of(upload(client, (HEADER + "a@b.de,,08115003,\n").encode()))
    stranger = make_user("esslingen@lrabb.de", districts=("08116",))
    sign_in(stranger)

    assert client.get("/d/08115/subscribers/import").status_code == 404
    assert upload(client, (HEADER + "a@b.de,,08115003,\n").encode()).status_code == 404
    assert client.post(f"/d/08115/subscribers/import/{upload_id}").status_code == 404
    assert client.get("/d/08115/subscribers/export.csv").status_code == 404
    assert count_subscribers() == 1
    # …while their own district works.
    assert client.get("/d/08116/subscribers/export.csv").status_code == 200
