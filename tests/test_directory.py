"""`flask directory import`: the official lists, idempotence, and refusing bad rows."""
import pytest
from sqlalchemy import func, select

from core.extensions import db
from directory.models import District, Municipality

DISTRICTS_HEADER = "district_key,name,kind\n"
MUNICIPALITIES_HEADER = "ags,name,district_key\n"


def count(model):
    db.session.rollback()  # the CLI committed in its own session; look afresh
    return db.session.execute(select(func.count()).select_from(model)).scalar_one()


@pytest.fixture
def write_csv(tmp_path):
    def write(name, text, encoding="utf-8"):
        path = tmp_path / name
        path.write_bytes(text.encode(encoding))
        return str(path)

    return write


@pytest.fixture
def directory_import(runner):
    def run(districts=None, municipalities=None):
        args = ["directory", "import"]
        if districts:
            args += ["--districts", str(districts)]
        if municipalities:
            args += ["--municipalities", str(municipalities)]
        return runner.invoke(args=args)

    return run


def test_official_lists_are_imported_once(directory_import, shared_data):
    districts, municipalities = shared_data / "bw_districts.csv", shared_data / "bw_municipalities.csv"

    first = directory_import(districts, municipalities)
    assert first.exit_code == 0, first.output
    assert "Kreise: 44 neu, 0 geändert, 0 unverändert" in first.output
    assert "Gemeinden: 1101 neu, 0 geändert, 0 unverändert" in first.output
    assert (count(District), count(Municipality)) == (44, 1101)
    boeblingen = db.session.get(District, "08115")
    assert (boeblingen.name, boeblingen.kind) == ("Böblingen", "Landkreis")
    assert db.session.get(Municipality, "08115045").name == "Sindelfingen, Stadt"

    second = directory_import(districts, municipalities)
    assert second.exit_code == 0, second.output
    assert "Kreise: 0 neu, 0 geändert, 44 unverändert" in second.output
    assert "Gemeinden: 0 neu, 0 geändert, 1101 unverändert" in second.output
    assert (count(District), count(Municipality)) == (44, 1101)


def test_reimport_updates_names_and_keeps_missing_municipalities(directory_import, write_csv, make_district):
    make_district("08115", "Boeblingen", "Stadtkreis", municipalities=[("08115003", "Böblingen"), ("08115099", "Alt")])
    districts = write_csv("d.csv", DISTRICTS_HEADER + "08115,Böblingen,Landkreis\n")
    municipalities = write_csv(
        "m.csv", MUNICIPALITIES_HEADER + '08115003,"Böblingen, Stadt",08115\n08115045,Sindelfingen,08115\n'
    )

    result = directory_import(districts, municipalities)

    assert result.exit_code == 0, result.output
    assert "Kreise: 0 neu, 1 geändert, 0 unverändert" in result.output
    assert "Gemeinden: 1 neu, 1 geändert, 0 unverändert" in result.output
    count(District)
    district = db.session.get(District, "08115")
    assert (district.name, district.kind) == ("Böblingen", "Landkreis")
    assert [m.ags for m in district.municipalities] == ["08115099", "08115003", "08115045"]  # by name: Alt, Böblingen…


def test_municipalities_alone_use_districts_already_stored(directory_import, write_csv, make_district):
    make_district("08115", "Böblingen")
    municipalities = write_csv("m.csv", MUNICIPALITIES_HEADER + "08115003,Böblingen,08115\n")
    result = directory_import(municipalities=municipalities)
    assert result.exit_code == 0, result.output
    assert "Gemeinden: 1 neu" in result.output and "Kreise" not in result.output
    assert count(Municipality) == 1


def test_bom_and_windows_line_endings_are_accepted(directory_import, write_csv):
    districts = write_csv("d.csv", "\ufeffdistrict_key,name,kind\r\n08115,Böblingen,Landkreis\r\n")
    result = directory_import(districts)
    assert result.exit_code == 0, result.output
    assert count(District) == 1


def test_broken_row_is_refused_with_its_line_and_nothing_is_written(directory_import, write_csv, shared_data):
    lines = (shared_data / "bw_municipalities.csv").read_text(encoding="utf-8").splitlines()
    lines[9] = "0811500,Kurz,08115"  # line 10 as an editor counts, header = line 1
    municipalities = write_csv("gemeinden.csv", "\n".join(lines) + "\n")

    result = directory_import(shared_data / "bw_districts.csv", municipalities)

    assert result.exit_code == 1
    assert f"{municipalities}, Zeile 10: Gemeindeschlüssel '0811500' hat nicht genau 8 Ziffern." in result.stderr
    assert "1 Fehler" in result.stderr and "nichts geschrieben" in result.stderr
    assert "Traceback" not in result.output
    assert (count(District), count(Municipality)) == (0, 0)


def test_every_problem_is_reported(directory_import, write_csv):
    districts = write_csv(
        "d.csv", DISTRICTS_HEADER + "08115,Böblingen,Landkreis\n08116,,Landkreis\n0811,Kurz,Stadtkreis\n"
    )
    municipalities = write_csv("m.csv", MUNICIPALITIES_HEADER + "08115003,,08115\n08115045,Sindelfingen\n")
    result = directory_import(districts, municipalities)
    assert result.exit_code == 1
    problems = [line for line in result.stderr.splitlines() if ", Zeile " in line]
    assert problems == [
        f"{districts}, Zeile 3: Der Name ist leer.",
        f"{districts}, Zeile 4: Kreisschlüssel '0811' hat nicht genau 5 Ziffern.",
        f"{municipalities}, Zeile 2: Der Name ist leer.",
        f"{municipalities}, Zeile 3: 2 Spalten statt 3.",
    ]
    assert "4 Fehler" in result.stderr
    assert count(District) == 0


@pytest.mark.parametrize(
    "districts_text, line, reason",
    [
        ("district_key,name\n08115,Böblingen\n", 1, "Falsche Kopfzeile; erwartet: district_key,name,kind"),
        ("key,name,kind\n08115,Böblingen,Landkreis\n", 1, "Falsche Kopfzeile"),
        ("", 1, "Die Datei ist leer"),
        (DISTRICTS_HEADER + "08115,Böblingen,Landkreis,extra\n", 2, "4 Spalten statt 3."),
        (DISTRICTS_HEADER + "8115,Böblingen,Landkreis\n", 2, "Kreisschlüssel '8115' hat nicht genau 5 Ziffern."),
        (DISTRICTS_HEADER + "0811A,Böblingen,Landkreis\n", 2, "Kreisschlüssel '0811A' hat nicht genau 5 Ziffern."),
        (DISTRICTS_HEADER + "08115,Böblingen,Kreis\n", 2, "Art 'Kreis' ist weder Landkreis noch Stadtkreis."),
        (DISTRICTS_HEADER + "08115,  ,Landkreis\n", 2, "Der Name ist leer."),
        (DISTRICTS_HEADER + "08115,Böblingen,Landkreis\n\n08115,Boeblingen,Landkreis\n", 4,
         "Schlüssel 08115 kommt doppelt vor (zuerst in Zeile 2)."),
        (DISTRICTS_HEADER + '08115,"Böblingen,Landkreis\n', 2, "Die Zeile ist kein gültiges CSV"),
        (DISTRICTS_HEADER + "08115," + "x" * 201 + ",Landkreis\n", 2, "Der Name ist länger als 200 Zeichen."),
        (DISTRICTS_HEADER + '08115,"Böb\nlingen",Landkreis\n', 2, "Der Name enthält einen Zeilenumbruch."),
    ],
    ids=["too-few-header-columns", "wrong-header", "empty-file", "extra-column", "short-key", "letter-in-key",
         "bad-kind", "blank-name", "duplicate", "broken-quote", "long-name", "line-break-in-name"],
)
def test_malformed_district_file_is_refused(directory_import, write_csv, districts_text, line, reason):
    districts = write_csv("kreise.csv", districts_text)
    result = directory_import(districts)
    assert result.exit_code == 1
    assert f"{districts}, Zeile {line}: {reason}" in result.stderr
    assert "Traceback" not in result.output
    assert count(District) == 0


@pytest.mark.parametrize(
    "municipalities_text, line, reason",
    [
        (MUNICIPALITIES_HEADER + "0811500,Kurz,08115\n", 2, "Gemeindeschlüssel '0811500' hat nicht genau 8 Ziffern."),
        (MUNICIPALITIES_HEADER + "08115003,Böblingen,8115\n", 2, "Kreisschlüssel '8115' hat nicht genau 5 Ziffern."),
        (MUNICIPALITIES_HEADER + "08116019,Esslingen,08115\n", 2,
         "Gemeindeschlüssel 08116019 beginnt nicht mit seinem Kreisschlüssel 08115."),
        (MUNICIPALITIES_HEADER + "08999001,Nirgendwo,08999\n", 2,
         "Unbekannter Kreis 08999 (weder in der Kreisdatei noch in der Datenbank)."),
        (MUNICIPALITIES_HEADER + "08115003,,08115\n", 2, "Der Name ist leer."),
        (MUNICIPALITIES_HEADER + "08115003,Böblingen,08115\n08115003,Sindelfingen,08115\n", 3,
         "Schlüssel 08115003 kommt doppelt vor (zuerst in Zeile 2)."),
        (MUNICIPALITIES_HEADER + "08115003,Böblingen\n", 2, "2 Spalten statt 3."),
        ("ags;name;district_key\n08115003;Böblingen;08115\n", 1, "Falsche Kopfzeile"),
    ],
    ids=["short-ags", "short-district-key", "ags-of-other-district", "unknown-district", "empty-name", "duplicate",
         "missing-column", "semicolons"],
)
def test_malformed_municipality_file_is_refused(directory_import, write_csv, municipalities_text, line, reason):
    districts = write_csv("kreise.csv", DISTRICTS_HEADER + "08115,Böblingen,Landkreis\n08116,Esslingen,Landkreis\n")
    municipalities = write_csv("gemeinden.csv", municipalities_text)
    result = directory_import(districts, municipalities)
    assert result.exit_code == 1
    assert f"{municipalities}, Zeile {line}: {reason}" in result.stderr
    assert "Traceback" not in result.output
    assert (count(District), count(Municipality)) == (0, 0)


def test_windows_1252_file_is_refused_at_the_first_bad_line(directory_import, write_csv):
    text = MUNICIPALITIES_HEADER + "08115013,Ehningen,08115\n08115015,Gärtringen,08115\n08115044,Schönaich,08115\n"
    municipalities = write_csv("gemeinden.csv", text, encoding="cp1252")
    districts = write_csv("kreise.csv", DISTRICTS_HEADER + "08115,Böblingen,Landkreis\n")
    result = directory_import(districts, municipalities)
    assert result.exit_code == 1
    assert f"{municipalities}, Zeile 3: Die Datei ist nicht UTF-8-kodiert" in result.stderr
    assert "1 Fehler" in result.stderr
    assert count(District) == 0  # the valid districts file is not written alone


def test_unreadable_districts_file_does_not_flood_municipalities_with_unknown_districts(directory_import, write_csv):
    districts = write_csv("kreise.csv", DISTRICTS_HEADER + "08115,Böblingen,Landkreis\n", encoding="utf-16")
    municipalities = write_csv("gemeinden.csv", MUNICIPALITIES_HEADER + "08115003,Böblingen,08115\n")
    result = directory_import(districts, municipalities)
    assert result.exit_code == 1
    assert f"{districts}, Zeile 1: Die Datei ist nicht UTF-8-kodiert" in result.stderr
    assert "Unbekannter Kreis" not in result.stderr


def test_missing_file_is_a_clear_usage_error(directory_import, tmp_path):
    result = directory_import(tmp_path / "fehlt.csv")
    assert result.exit_code == 2
    assert "fehlt.csv" in result.output and "does not exist" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_without_files_the_command_asks_for_them(directory_import):
    result = directory_import()
    assert result.exit_code == 2
    assert "--districts" in result.output
