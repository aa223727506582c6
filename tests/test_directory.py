"""`flask directory import`: the official lists, their outlines, idempotence, and refusing bad rows."""
import json

import pytest
from sqlalchemy import func, select

from core.extensions import db
from directory.models import District, Municipality, Outline

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


# --- outlines (GeoJSON) --------------------------------------------------

SQUARE = {"type": "Polygon", "coordinates": [[[9.0, 48.7], [9.1, 48.7], [9.1, 48.8], [9.0, 48.8], [9.0, 48.7]]]}


def feature(properties, geometry=SQUARE):
    return {"type": "Feature", "properties": properties, "geometry": geometry}


def collection(*features):
    return json.dumps({"type": "FeatureCollection", "features": list(features)})


def outline_counts():
    db.session.rollback()
    return dict(db.session.execute(select(Outline.kind, func.count()).group_by(Outline.kind)).all())


@pytest.fixture
def import_boundaries(runner):
    def run(*paths, districts=None, municipalities=None):
        args = ["directory", "import"]
        if districts:
            args += ["--districts", str(districts)]
        if municipalities:
            args += ["--municipalities", str(municipalities)]
        for path in paths:
            args += ["--boundaries", str(path)]
        return runner.invoke(args=args)

    return run


def test_official_outlines_are_imported_once(import_boundaries, shared_data):
    files = {"districts": shared_data / "bw_districts.csv", "municipalities": shared_data / "bw_municipalities.csv"}
    boundaries = (shared_data / "bw_districts.geojson", shared_data / "bw_municipalities.geojson")

    first = import_boundaries(*boundaries, **files)

    assert first.exit_code == 0, first.output
    assert "Kreisumrisse: 44 neu, 0 geändert, 0 unverändert" in first.output
    assert "Gemeindeumrisse: 1101 neu, 0 geändert, 0 unverändert" in first.output
    assert "Umrisse gemeindefreier Gebiete: 2 neu, 0 geändert, 0 unverändert" in first.output
    assert outline_counts() == {"district": 44, "municipality": 1101, "area": 2}
    rheinau = db.session.get(Outline, "08317971")
    assert (rheinau.kind, rheinau.district_key, rheinau.name) == ("area", "08317", "Rheinau")
    boeblingen = db.session.get(Outline, "08115")
    assert (boeblingen.kind, boeblingen.district_key, boeblingen.name) == ("district", "08115", "Landkreis Böblingen")
    sindelfingen = db.session.get(Outline, "08115045")
    assert (sindelfingen.kind, sindelfingen.name) == ("municipality", "Sindelfingen, Stadt")  # the directory's name
    assert " " not in sindelfingen.geometry and json.loads(sindelfingen.geometry)["type"] in ("Polygon", "MultiPolygon")

    second = import_boundaries(*boundaries, **files)

    assert second.exit_code == 0, second.output
    assert "Kreisumrisse: 0 neu, 0 geändert, 44 unverändert" in second.output
    assert "Gemeindeumrisse: 0 neu, 0 geändert, 1101 unverändert" in second.output
    assert "Umrisse gemeindefreier Gebiete: 0 neu, 0 geändert, 2 unverändert" in second.output
    assert outline_counts() == {"district": 44, "municipality": 1101, "area": 2}


def test_outlines_alone_are_checked_against_the_stored_directory(import_boundaries, write_csv, make_district):
    make_district("08115", "Böblingen", municipalities=[("08115003", "Böblingen, Stadt")])
    path = write_csv("b.geojson", collection(
        feature({"district_key": "08115"}),
        feature({"ags": "08115003", "name": "Böblingen"}),
        feature({"ags": "08115971", "name": "Forst"}),  # no municipality of the directory: an unincorporated area
        feature({"ags": "08115972"}),
    ))

    result = import_boundaries(path)

    assert result.exit_code == 0, result.output
    assert "Kreise" not in result.output and "Gemeinden:" not in result.output
    assert "Kreisumrisse: 1 neu" in result.output and "Gemeindeumrisse: 1 neu" in result.output
    assert "Umrisse gemeindefreier Gebiete: 2 neu" in result.output
    assert db.session.get(Outline, "08115003").name == "Böblingen, Stadt"
    assert db.session.get(Outline, "08115971").name == "Forst"
    assert db.session.get(Outline, "08115972").name == "gemeindefreies Gebiet"


def test_changed_outline_is_updated(import_boundaries, write_csv, make_district):
    make_district("08115", "Böblingen")
    import_boundaries(write_csv("a.geojson", collection(feature({"district_key": "08115"}))))
    moved = {"type": "MultiPolygon", "coordinates": [SQUARE["coordinates"]]}
    result = import_boundaries(write_csv("b.geojson", collection(feature({"district_key": "08115"}, moved))))
    assert "Kreisumrisse: 0 neu, 1 geändert, 0 unverändert" in result.output
    assert json.loads(db.session.get(Outline, "08115").geometry) == moved


def point(lon, lat):
    return {"type": "Polygon", "coordinates": [[[lon, lat], [9.1, 48.7], [9.1, 48.8], [lon, lat]]]}


@pytest.mark.parametrize(
    "text, where, reason",
    [
        ('{"type": "FeatureCollection", "features": [\n{"type": "Feature",, }]}', "Zeile 2",
         "Kein gültiges JSON (Spalte 20: Expecting property name enclosed in double quotes)."),
        (json.dumps(feature({"district_key": "08115"})), None, "Die Datei ist keine GeoJSON-FeatureCollection."),
        (json.dumps([feature({"district_key": "08115"})]), None, "Die Datei ist keine GeoJSON-FeatureCollection."),
        (collection(), None, "Die FeatureCollection enthält keine Features."),
        (collection({"type": "Polygon"}), 1, "Das ist kein GeoJSON-Feature."),
        (collection(feature({"district_key": "08115"}, {"type": "Point", "coordinates": [9.0, 48.7]})), 1,
         "Geometrietyp 'Point' statt Polygon oder MultiPolygon."),
        (collection(feature({"district_key": "08115"}, {"type": "LineString", "coordinates": [[9, 48], [9, 49]]})), 1,
         "Geometrietyp 'LineString' statt Polygon oder MultiPolygon."),
        (collection(feature({"district_key": "08115"}, None)), 1, "Das Feature hat keine Geometrie."),
        (collection(feature({"district_key": "08115"}, {"type": "Polygon", "coordinates": []})), 1,
         "Die Koordinaten fehlen."),
        (collection(feature({"district_key": "08115"}, point("9.0", 48.7))), 1,
         'Die Koordinate ["9.0", 48.7] ist kein Zahlenpaar [Länge, Breite].'),
        (collection(feature({"district_key": "08115"}, point(True, 48.7))), 1,
         "Die Koordinate [true, 48.7] ist kein Zahlenpaar"),
        (collection(feature({"district_key": "08115"}, point(48.7, 9.0))), 1,
         ("Die Koordinate [48.7, 9.0] liegt nicht in Deutschland; erwartet werden WGS84-Grad [Länge, Breite] "
          "(vertauscht oder projiziert?).")),
        (collection(feature({"district_key": "08115"}, point(3503000.0, 5397000.0))), 1,
         "Die Koordinate [3503000.0, 5397000.0] liegt nicht in Deutschland"),
        (collection(feature({"district_key": "08115"}, point(float("nan"), 48.7))), 1,
         "Die Koordinate [NaN, 48.7] ist kein Zahlenpaar"),
        (collection(feature({"district_key": "08115"}, {"type": "Polygon", "coordinates": [
            [[9.0, 48.7], [9.1, 48.7], [9.1, 48.8], [9.0, 48.8]]]})), 1,
         "Ein Ring ist nicht geschlossen (erster und letzter Punkt verschieden)."),
        (collection(feature({"district_key": "08115"}, {"type": "Polygon", "coordinates": [
            [[9.0, 48.7], [9.1, 48.7], [9.0, 48.7]]]})), 1, "Ein Ring hat weniger als 4 Punkte."),
        (collection(feature({"district_key": "0811"})), 1, "Kreisschlüssel '0811' hat nicht genau 5 Ziffern."),
        (collection(feature({"district_key": 8115})), 1, "Kreisschlüssel 8115 hat nicht genau 5 Ziffern."),
        (collection(feature({"ags": "0811500"})), 1, "Gemeindeschlüssel '0811500' hat nicht genau 8 Ziffern."),
        (collection(feature({"district_key": "08999"})), 1,
         "Unbekannter Kreis 08999 (weder in der Kreisdatei noch in der Datenbank)."),
        (collection(feature({"ags": "08999001"})), 1,
         "Gemeindeschlüssel 08999001: unbekannter Kreis 08999 (weder in der Kreisdatei noch in der Datenbank)."),
        (collection(feature({"name": "Böblingen"})), 1,
         "Das Feature braucht genau eine der Eigenschaften district_key (Kreis) oder ags (Gemeinde)."),
        (collection(feature({"district_key": "08115", "ags": "08115003"})), 1,
         "Das Feature braucht genau eine der Eigenschaften"),
        (collection(feature({"ags": "08115971", "name": "x" * 201})), 1, "Der Name ist länger als 200 Zeichen."),
        (collection(feature({"district_key": "08115"}), feature({"ags": "08115003"}),
                    feature({"district_key": "08115"})), 3, "Schlüssel 08115 kommt doppelt vor (zuerst in Feature 1)."),
    ],
    ids=["broken-json", "feature-not-collection", "array", "no-features", "not-a-feature", "point", "line",
         "null-geometry", "empty-coordinates", "string-coordinate", "bool-coordinate", "swapped-lon-lat",
         "projected", "nan", "open-ring", "short-ring", "short-district-key", "numeric-district-key", "short-ags",
         "unknown-district", "ags-of-unknown-district", "property-missing", "both-properties", "long-area-name",
         "duplicate"],
)
def test_malformed_outline_file_is_refused(import_boundaries, write_csv, make_district, text, where, reason):
    make_district("08115", "Böblingen", municipalities=[("08115003", "Böblingen, Stadt")])
    path = write_csv("umrisse.geojson", text)

    result = import_boundaries(path)

    assert result.exit_code == 1
    if where is None:
        assert f"{path}: {reason}" in result.stderr
    else:
        where = where if isinstance(where, str) else f"Feature {where}"
        assert f"{path}, {where}: {reason}" in result.stderr
    assert "nichts geschrieben" in result.stderr and "Traceback" not in result.output
    assert outline_counts() == {}


def test_every_bad_feature_is_reported_and_nothing_is_written(import_boundaries, write_csv):
    districts = write_csv("kreise.csv", DISTRICTS_HEADER + "08115,Böblingen,Landkreis\n")
    path = write_csv("umrisse.geojson", collection(
        feature({"district_key": "08115"}),
        feature({"ags": "08116019"}, {"type": "Point", "coordinates": [9.3, 48.7]}),
        feature({}),
    ))

    result = import_boundaries(path, districts=districts)

    assert result.exit_code == 1
    assert [line for line in result.stderr.splitlines() if "Feature" in line] == [
        (f"{path}, Feature 2: Gemeindeschlüssel 08116019: unbekannter Kreis 08116 (weder in der Kreisdatei noch in "
         "der Datenbank)."),
        f"{path}, Feature 2: Geometrietyp 'Point' statt Polygon oder MultiPolygon.",
        (f"{path}, Feature 3: Das Feature braucht genau eine der Eigenschaften district_key (Kreis) "
         "oder ags (Gemeinde)."),
    ]
    assert "3 Fehler" in result.stderr
    assert (count(District), outline_counts()) == (0, {})  # the valid districts file is not written alone


def test_a_key_in_two_files_is_refused(import_boundaries, write_csv, make_district):
    make_district("08115", "Böblingen")
    first = write_csv("a.geojson", collection(feature({"district_key": "08115"})))
    second = write_csv("b.geojson", collection(feature({"district_key": "08115"})))
    result = import_boundaries(first, second)
    assert result.exit_code == 1
    assert f"{second}, Feature 1: Schlüssel 08115 kommt doppelt vor (zuerst in {first}, Feature 1)." in result.stderr
    assert outline_counts() == {}


def test_outlines_without_any_directory_say_so_once(import_boundaries, write_csv):
    path = write_csv("umrisse.geojson", collection(feature({"district_key": "08115"}), feature({"ags": "08115003"})))
    result = import_boundaries(path)
    assert result.exit_code == 1
    assert f"{path}: Es sind noch keine Kreise eingelesen" in result.stderr
    assert "1 Fehler" in result.stderr


def test_a_bad_municipality_row_does_not_turn_its_outline_into_an_area(import_boundaries, write_csv, make_district):
    make_district("08115", "Böblingen")
    municipalities = write_csv("m.csv", MUNICIPALITIES_HEADER + "08115003,,08115\n")
    path = write_csv("umrisse.geojson", collection(feature({"ags": "08115003"})))
    result = import_boundaries(path, municipalities=municipalities)
    assert result.exit_code == 1
    assert "Der Name ist leer." in result.stderr and "Feature" not in result.stderr
    assert (count(Municipality), outline_counts()) == (0, {})


def test_without_files_the_shipped_official_directory_is_imported(directory_import):
    from directory import services

    assert services.outlines_for_district("08115") == [] and services.district_outlines() == []

    result = directory_import()

    assert result.exit_code == 0, result.output
    assert "Kreise: 44 neu" in result.output and "Gemeinden: 1101 neu" in result.output
    assert "Kreisumrisse: 44 neu" in result.output and "Gemeindeumrisse: 1101 neu" in result.output
    assert "Umrisse gemeindefreier Gebiete: 2 neu" in result.output
    assert (count(District), count(Municipality)) == (44, 1101)
    assert outline_counts() == {"district": 44, "municipality": 1101, "area": 2}
    boeblingen = {o["key"]: o for o in services.outlines_for_district("08115")}
    assert len(boeblingen) == 26 and {o["kind"] for o in boeblingen.values()} == {"municipality"}
    sindelfingen = boeblingen["08115045"]
    assert (sindelfingen["name"], sindelfingen["kind"]) == ("Sindelfingen, Stadt", "municipality")
    assert sindelfingen["geometry"]["type"] in ("Polygon", "MultiPolygon")
    reutlingen = {o["key"]: o for o in services.outlines_for_district("08415")}
    assert (reutlingen["08415971"]["kind"], reutlingen["08415971"]["name"]) == ("area", "Gutsbezirk Münsingen")
    districts = services.district_outlines()
    assert len(districts) == 44 and {o["kind"] for o in districts} == {"district"}
    assert {o["name"] for o in districts} >= {"Stadtkreis Karlsruhe", "Landkreis Karlsruhe"}

    again = directory_import()
    assert again.exit_code == 0, again.output
    assert "Gemeindeumrisse: 0 neu, 0 geändert, 1101 unverändert" in again.output


def test_district_outlines_are_public_but_names_follow_the_scope(app, make_district, write_csv, import_boundaries):
    """A coordinator sees every district's outline (public geodata), named from the outline for the others."""
    from core.database import set_district_scope
    from directory import services

    make_district("08115", "Böblingen")
    make_district("08116", "Esslingen")
    import_boundaries(write_csv("k.geojson", collection(feature({"district_key": "08115"}),
                                                        feature({"district_key": "08116"}))))
    for district in db.session.execute(select(District)).scalars():
        district.name += " (neu)"
    db.session.commit()
    names = [outline["name"] for outline in services.district_outlines()]
    assert names == ["Landkreis Böblingen (neu)", "Landkreis Esslingen (neu)"]
    with app.test_request_context():
        set_district_scope(["08115"])
        try:
            names = [outline["name"] for outline in services.district_outlines()]
        finally:
            set_district_scope(None)  # the app context, and with it `g`, outlives the request
    assert names == ["Landkreis Böblingen (neu)", "Landkreis Esslingen"]


def test_shipped_files_are_the_shared_official_data(shared_data):
    from importlib.resources import files

    for name in ("bw_districts.csv", "bw_municipalities.csv", "bw_districts.geojson", "bw_municipalities.geojson"):
        assert (files("directory") / "data" / name).read_bytes() == (shared_data / name).read_bytes(), name
    readme = (files("directory") / "data" / "README.md").read_text(encoding="utf-8")
    assert "© GeoBasis-DE / BKG 2017, Daten verändert" in readme
