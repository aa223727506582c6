"""`flask users`: create, token, list, set-password, end-sessions, each refusing what the rules forbid."""
import re

import pytest
from sqlalchemy import func, select

from accounts import sessions
from accounts.models import ApiToken, User, UserSession
from accounts.services import authenticate, find_user
from core.extensions import db

GENERATED = re.compile(r"Passwort \(wird nur jetzt angezeigt\): (\S+)$", re.MULTILINE)


def users():
    db.session.rollback()
    return db.session.execute(select(func.count()).select_from(User)).scalar_one()


def session_count(user=None):
    db.session.rollback()
    statement = select(func.count()).select_from(UserSession)
    if user is not None:
        statement = statement.where(UserSession.user_id == user.id)
    return db.session.execute(statement).scalar_one()


@pytest.fixture
def users_cli(runner):
    def run(*args, input=None):
        return runner.invoke(args=["users", *args], input=input)

    return run


@pytest.mark.parametrize(
    "role, districts, keys",
    [("admin", [], None), ("coordinator", ["08115"], ["08115"]), ("viewer", [], None),
     ("viewer", ["08115", "08116"], ["08115", "08116"])],
    ids=["admin", "coordinator", "statewide-viewer", "district-viewer"],
)
def test_create_each_role_with_a_generated_password(users_cli, two_districts, role, districts, keys):
    options = [option for key in districts for option in ("--district", key)]
    result = users_cli("create", "Person@LRABB.de", "--role", role, "--name", "Erika Muster", *options)

    assert result.exit_code == 0, result.output
    password = GENERATED.search(result.output).group(1)
    db.session.rollback()
    user = authenticate("person@lrabb.de", password)
    assert user is not None
    assert (user.email, user.role, user.name, user.district_keys) == ("person@lrabb.de", role, "Erika Muster", keys)


def test_password_from_stdin_is_used_and_not_printed(users_cli, two_districts):
    secret = "ein-langes-geheimes-passwort"
    result = users_cli("create", "admin@lrabb.de", "--role", "admin", "--password-stdin", input=secret + "\n")
    assert result.exit_code == 0, result.output
    assert secret not in result.output and not GENERATED.search(result.output)
    db.session.rollback()
    assert authenticate("admin@lrabb.de", secret) is not None


@pytest.mark.parametrize(
    "args, input, message",
    [
        (["--role", "coordinator", "--district", "08999"], None, "Unbekannter Kreis: 08999"),
        (["--role", "coordinator"], None, "braucht mindestens einen Kreis"),
        (["--role", "viewer", "--district", "08115", "--district", "8115"], None, "Unbekannter Kreis: 8115"),
        (["--role", "admin", "--password-stdin"], "kurz\n", "mindestens 12 Zeichen"),
        (["--role", "admin", "--password-stdin"], "", "kein Passwort"),
    ],
    ids=["unknown-district", "coordinator-without-district", "one-bad-district", "short-password", "empty-stdin"],
)
def test_create_refuses_broken_rules_and_writes_nothing(users_cli, two_districts, args, input, message):
    result = users_cli("create", "person@lrabb.de", *args, input=input)
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output
    assert users() == 0


def test_create_refuses_unknown_role_and_bad_address(users_cli, two_districts):
    assert users_cli("create", "person@lrabb.de", "--role", "chef").exit_code == 2
    bad = users_cli("create", "keine-adresse", "--role", "admin")
    assert bad.exit_code == 1 and "Ungültige E-Mail-Adresse" in bad.output
    assert users() == 0


def test_create_refuses_a_duplicate(users_cli, two_districts, make_user):
    make_user("koordination@lrabb.de")
    result = users_cli("create", "Koordination@lrabb.de", "--role", "viewer")
    assert result.exit_code == 1
    assert "Es gibt bereits ein Konto für koordination@lrabb.de." in result.output
    assert users() == 1


def test_token_works_against_the_api(users_cli, client, two_districts, make_user):
    make_user("koordination@lrabb.de", districts=("08116",))
    result = users_cli("token", "koordination@lrabb.de", "--label", "Statistik-Skript")
    assert result.exit_code == 0, result.output
    token = result.output.strip()

    response = client.get("/api/v1/districts", headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 200
    assert [d["key"] for d in response.json] == ["08116"]
    db.session.rollback()
    assert db.session.execute(select(ApiToken.label)).scalar_one() == "Statistik-Skript"


def test_token_for_unknown_or_deactivated_account_is_refused(users_cli, two_districts, make_user):
    assert "Es gibt kein Konto für niemand@lrabb.de." in users_cli("token", "niemand@lrabb.de").output
    user = make_user()
    user.active = False
    db.session.commit()
    result = users_cli("token", user.email)
    assert result.exit_code == 1 and "deaktiviert" in result.output
    db.session.rollback()
    assert db.session.execute(select(func.count()).select_from(ApiToken)).scalar_one() == 0


def test_list_shows_role_districts_and_status(users_cli, two_districts, make_user):
    make_user("koordination@lrabb.de", districts=("08115", "08116"))
    admin = make_user("admin@lrabb.de", role="admin", districts=())
    admin.active = False
    db.session.commit()

    lines = users_cli("list").output.splitlines()

    assert lines[0].split() == ["E-Mail", "Rolle", "Kreise", "Aktiv"]
    assert lines[1].split() == ["admin@lrabb.de", "admin", "alle", "nein"]
    assert lines[2].split() == ["koordination@lrabb.de", "coordinator", "08115,", "08116", "ja"]


def test_list_without_accounts(users_cli):
    result = users_cli("list")
    assert result.exit_code == 0 and "noch keine Konten" in result.output


def test_set_password_generates_one_and_ends_sessions(users_cli, two_districts, make_user):
    user = make_user()
    old_password = user.plain_password
    sessions.start(user, "Laptop")
    sessions.start(user, "Telefon")
    db.session.commit()

    result = users_cli("set-password", user.email)

    assert result.exit_code == 0, result.output
    new_password = GENERATED.search(result.output).group(1)
    db.session.rollback()
    assert authenticate(user.email, old_password) is None
    assert authenticate(user.email, new_password) is not None
    assert session_count(user) == 0


def test_set_password_from_stdin(users_cli, two_districts, make_user):
    user = make_user()
    result = users_cli("set-password", user.email, "--password-stdin", input="noch-ein-langes-passwort\r\n")
    assert result.exit_code == 0, result.output
    assert "noch-ein-langes-passwort" not in result.output
    db.session.rollback()
    assert authenticate(user.email, "noch-ein-langes-passwort") is not None


def test_set_password_refuses_short_password_and_unknown_account(users_cli, two_districts, make_user):
    user = make_user()
    short = users_cli("set-password", user.email, "--password-stdin", input="kurz\n")
    assert short.exit_code == 1 and "mindestens 12 Zeichen" in short.output
    db.session.rollback()
    assert authenticate(user.email, user.plain_password) is not None
    unknown = users_cli("set-password", "niemand@lrabb.de")
    assert unknown.exit_code == 1 and "Es gibt kein Konto" in unknown.output


def test_end_sessions_of_one_account(users_cli, two_districts, make_user):
    user, other = make_user(), make_user("andere@lrabb.de")
    for person in (user, user, other):
        sessions.start(person, "Browser")
    db.session.commit()

    result = users_cli("end-sessions", user.email.upper())

    assert result.exit_code == 0, result.output
    assert "2 Anmeldungen von koordination@lrabb.de beendet" in result.output
    assert session_count(user) == 0 and session_count(other) == 1
    db.session.rollback()
    assert authenticate(user.email, user.plain_password) is not None  # the password stays


def test_end_sessions_expired_only(users_cli, two_districts, make_user, app):
    from datetime import timedelta

    from accounts.models import utcnow

    user = make_user()
    sessions.start(user, "neu")
    sessions.start(user, "alt")
    db.session.commit()
    old = db.session.execute(select(UserSession).where(UserSession.user_agent == "alt")).scalar_one()
    old.last_seen_at = utcnow() - timedelta(seconds=app.config["SESSION_IDLE_SECONDS"] + 60)
    db.session.commit()

    result = users_cli("end-sessions", "--expired")

    assert result.exit_code == 0, result.output
    assert "1 abgelaufene Anmeldungen entfernt" in result.output
    db.session.rollback()
    assert [row.user_agent for row in db.session.execute(select(UserSession)).scalars()] == ["neu"]


@pytest.mark.parametrize("args", [[], ["someone@lrabb.de", "--expired"]], ids=["neither", "both"])
def test_end_sessions_wants_exactly_one_choice(users_cli, two_districts, make_user, args):
    make_user("someone@lrabb.de")
    sessions.start(find_user("someone@lrabb.de"), "Browser")
    db.session.commit()
    result = users_cli("end-sessions", *args)
    assert result.exit_code == 2 and "genau eines" in result.output
    assert session_count() == 1


def test_end_sessions_of_an_unknown_account(users_cli, two_districts):
    result = users_cli("end-sessions", "niemand@lrabb.de")
    assert result.exit_code == 1 and "Es gibt kein Konto für niemand@lrabb.de" in result.output
