"""`flask demo`: the Landkreis Böblingen of the official directory, with its map and a coordinator, seeded once."""
import re

from sqlalchemy import func, select

from accounts.models import User
from accounts.services import authenticate
from core.extensions import db
from directory.models import District, Municipality, Outline

PASSWORD = re.compile(r"^Passwort: (\S+)$", re.MULTILINE)


def count(model):
    db.session.rollback()
    return db.session.execute(select(func.count()).select_from(model)).scalar_one()


def test_demo_seeds_boeblingen_and_a_coordinator_who_can_log_in(runner):
    result = runner.invoke(args=["demo"])

    assert result.exit_code == 0, result.output
    assert "Landkreis Böblingen mit 26 Gemeinden" in result.output  # the shipped official directory
    assert "Gemeindeumrisse: 1101 neu" in result.output
    assert "E-Mail: koordination@demo.invalid" in result.output
    password = PASSWORD.search(result.output).group(1)
    db.session.rollback()
    user = authenticate("koordination@demo.invalid", password)
    assert user is not None and user.role == "coordinator" and user.district_keys == ["08115"]
    district = db.session.get(District, "08115")
    names = {m.ags: m.name for m in district.municipalities}
    assert names["08115003"] == "Böblingen, Stadt"
    assert names["08115045"] == "Sindelfingen, Stadt"
    assert names["08115021"] == "Herrenberg, Stadt"
    assert names["08115028"] == "Leonberg, Stadt"
    from directory.services import outlines_for_district

    assert {outline["key"] for outline in outlines_for_district("08115")} == set(names)  # a map for every one


def test_second_run_changes_nothing_and_shows_no_password(runner):
    first = runner.invoke(args=["demo"])
    assert first.exit_code == 0, first.output
    before = (count(District), count(Municipality), count(Outline), count(User))
    hash_before = db.session.execute(select(User.password_hash)).scalar_one()

    second = runner.invoke(args=["demo"])

    assert second.exit_code == 0, second.output
    assert "Die Demo gibt es bereits" in second.output
    assert not PASSWORD.search(second.output)
    assert (count(District), count(Municipality), count(Outline), count(User)) == before == (44, 1101, 1147, 1)
    assert "Gemeinden:" not in second.output  # an existing directory is left alone
    assert db.session.execute(select(User.password_hash)).scalar_one() == hash_before


def test_demo_keeps_an_existing_directory(runner, shared_data):
    imported = runner.invoke(args=["directory", "import", "--districts", str(shared_data / "bw_districts.csv"),
                                   "--municipalities", str(shared_data / "bw_municipalities.csv")])
    assert imported.exit_code == 0, imported.output

    result = runner.invoke(args=["demo"])

    assert result.exit_code == 0, result.output
    assert (count(District), count(Municipality), count(Outline)) == (44, 1101, 0)  # nothing added
    assert "Landkreis Böblingen mit 26 Gemeinden" in result.output


def test_demo_with_the_official_files_imports_them(runner, shared_data):
    result = runner.invoke(args=["demo", "--districts", str(shared_data / "bw_districts.csv"),
                                 "--municipalities", str(shared_data / "bw_municipalities.csv")])
    assert result.exit_code == 0, result.output
    assert "Gemeinden: 1101 neu" in result.output
    assert (count(District), count(Municipality), count(User)) == (44, 1101, 1)


def test_demo_refuses_files_without_boeblingen_and_writes_nothing(runner, tmp_path):
    districts = tmp_path / "kreise.csv"
    districts.write_text("district_key,name,kind\n08116,Esslingen,Landkreis\n", encoding="utf-8")
    result = runner.invoke(args=["demo", "--districts", str(districts)])
    assert result.exit_code == 1
    assert "Der Kreis 08115 fehlt" in result.output
    assert (count(District), count(User)) == (0, 0)


def test_demo_refuses_broken_files_and_writes_nothing(runner, tmp_path):
    districts = tmp_path / "kreise.csv"
    districts.write_text("district_key,name,kind\n08115,Böblingen,Landkreis\n08116,Esslingen,Kreis\n", encoding="utf-8")
    result = runner.invoke(args=["demo", "--districts", str(districts)])
    assert result.exit_code == 1
    assert f"{districts}, Zeile 3:" in result.stderr
    assert (count(District), count(User)) == (0, 0)


def test_demo_on_a_fresh_database_creates_the_schema_first(make_app, tmp_path):
    """A newcomer may run `flask demo` before `flask serve` ever migrated."""
    from sqlalchemy import inspect

    from core.extensions import db

    app = make_app(SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path}/fresh.sqlite3")
    with app.app_context():
        result = app.test_cli_runner().invoke(args=["demo"])
        assert result.exit_code == 0, result.output
        assert "districts" in inspect(db.engine).get_table_names()


def test_demo_seeds_topics_and_subscribers_once(runner):
    from sqlalchemy import func, select

    from core.extensions import db
    from subscribers.models import Subscriber, Topic

    for _ in range(2):
        result = runner.invoke(args=["demo"])
        assert result.exit_code == 0, result.output
    assert "/d/08115/subscribe" in result.output
    counts = dict(db.session.execute(select(Subscriber.status, func.count()).group_by(Subscriber.status)).all())
    assert counts == {"active": 5, "pending": 1, "unsubscribed": 1}
    assert db.session.execute(select(func.count()).select_from(Topic)).scalar_one() == 4


def test_demo_without_boeblingen_in_the_directory_names_the_import(runner, make_district):
    make_district("08116", "Esslingen")
    result = runner.invoke(args=["demo"])
    assert result.exit_code == 1
    assert "Der Kreis 08115 fehlt in der Datenbank; flask directory import" in result.output
    assert (count(District), count(User)) == (1, 0)
