"""The accounts web interface: login and its rate limit, logout, the own
password, and user administration by admins."""
import re
from datetime import datetime, timezone

import pytest
from sqlalchemy import func, select

from accounts.models import ApiToken, User
from accounts.services import password_matches
from core.extensions import db

GENERIC_ERROR = "E-Mail-Adresse oder Passwort ist falsch."
CSRF_VALUE = re.compile(r'name="csrf_token"[^>]*>')  # carries a timestamp


@pytest.fixture
def web(make_app):
    """A second app whose requests each get their own app context, as in
    production. The `client` fixture's requests share the test's context, and
    with it Flask-Login's cached user, which would hide a session that ended."""
    return make_app()


@pytest.fixture
def districts(two_districts):
    return two_districts


@pytest.fixture
def admin(make_user, districts):
    return make_user("admin@lrabb.de", role="admin", districts=())


@pytest.fixture
def coordinator(make_user, districts):
    return make_user("koordination@lrabb.de", role="coordinator", districts=("08115",))


def sign_in(app, user, password=None, **environ):
    client = app.test_client()
    response = client.post(
        "/login", data={"email": user.email, "password": password or user.plain_password}, environ_base=environ
    )
    assert response.status_code == 302, text(response)
    return client


def text(response):
    return response.get_data(as_text=True)


def secret_on(response):
    match = re.search(r'<code class="secret-value"[^>]*>([^<]+)</code>', text(response))
    assert match, text(response)
    return match.group(1)


def reload(model, **by):
    """The row as the database has it now, not as this session remembers it."""
    db.session.rollback()
    return db.session.execute(select(model).filter_by(**by)).scalar_one_or_none()


def password_works(user, password):
    return password_matches(reload(User, id=user.id).password_hash, password)


def user_count():
    db.session.rollback()
    return db.session.execute(select(func.count()).select_from(User)).scalar_one()


def is_signed_in(client):
    return client.get("/account/password").status_code == 200


# --- login and logout ----------------------------------------------------


def test_login_page_speaks_german(web):
    response = web.test_client().get("/login")
    assert response.status_code == 200
    assert '<html lang="de">' in text(response)
    assert "Anmelden" in text(response) and "Passwort" in text(response)


def test_login_succeeds_and_records_the_time(web, coordinator):
    client = web.test_client()
    response = client.post("/login", data={"email": "  Koordination@LRABB.de ", "password": coordinator.plain_password})
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    assert reload(User, id=coordinator.id).last_login_at is not None
    assert is_signed_in(client)


def test_unknown_address_and_wrong_password_get_the_same_answer(web, coordinator, make_user):
    client = web.test_client()
    deactivated = make_user("alt@lrabb.de", role="viewer", districts=())
    deactivated.active = False
    db.session.commit()
    answers = {
        email: client.post("/login", data={"email": email, "password": password})
        for email, password in [
            ("koordination@lrabb.de", "falsches-passwort-123"),
            ("niemand@lrabb.de", "falsches-passwort-123"),
            ("alt@lrabb.de", deactivated.plain_password),
        ]
    }
    for response in answers.values():
        assert response.status_code == 200
        assert GENERIC_ERROR in text(response)
    # Apart from the echoed address the pages are identical: nothing tells
    # whether an account exists or is deactivated.
    pages = {CSRF_VALUE.sub("", text(response).replace(email, "ADDRESS")) for email, response in answers.items()}
    assert len(pages) == 1
    assert not is_signed_in(client)


def test_empty_login_form_shows_field_errors(web):
    response = web.test_client().post("/login", data={"email": "", "password": ""})
    assert response.status_code == 200
    assert 'id="email-error"' in text(response) and 'id="password-error"' in text(response)
    assert 'aria-describedby="email-error"' in text(response)


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/",
        "//evil.example/",
        "///evil.example",
        "/\\evil.example",
        "/\t/evil.example",
        "javascript:alert(1)",
    ],
)
def test_login_refuses_to_redirect_off_site(web, coordinator, target):
    client = web.test_client()
    response = client.post(
        "/login",
        query_string={"next": target},
        data={"email": coordinator.email, "password": coordinator.plain_password},
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/"


def test_login_returns_to_the_page_that_asked_for_it(web, admin):
    client = web.test_client()
    asked = client.get("/admin/users?page=2")
    assert asked.status_code == 302
    login_url = asked.headers["Location"]
    assert login_url.startswith("/login?next=")
    response = client.post(login_url, data={"email": admin.email, "password": admin.plain_password})
    assert response.headers["Location"] == "/admin/users?page=2"


def test_signed_in_visitor_skips_the_login_page(web, coordinator):
    client = sign_in(web, coordinator)
    response = client.get("/login")
    assert response.status_code == 302 and response.headers["Location"] == "/"


def test_logout_only_by_post(web, coordinator):
    client = sign_in(web, coordinator)
    assert client.get("/logout").status_code == 405
    assert is_signed_in(client)
    response = client.post("/logout")
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    assert "Sie wurden abgemeldet." in text(client.get("/login"))
    assert not is_signed_in(client)


def csrf_token_of(response):
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', text(response))
    assert match, text(response)
    return match.group(1)


def test_csrf_token_is_required_for_every_form(make_app, admin):
    web = make_app(WTF_CSRF_ENABLED=True)
    client = web.test_client()
    data = {"email": admin.email, "password": admin.plain_password}
    assert client.post("/login", data=data).status_code == 400
    assert not is_signed_in(client)

    token = csrf_token_of(client.get("/login"))
    assert client.post("/login", data={**data, "csrf_token": token}).status_code == 302

    new_user = {"email": "neu@lrabb.de", "role": "coordinator", "districts": ["08115"]}
    before = user_count()
    assert client.post("/admin/users/new", data=new_user).status_code == 400
    assert user_count() == before
    assert client.post("/logout").status_code == 400
    assert is_signed_in(client)

    token = csrf_token_of(client.get("/admin/users/new"))
    assert client.post("/admin/users/new", data={**new_user, "csrf_token": token}).status_code == 200
    assert user_count() == before + 1


# --- rate limit ----------------------------------------------------------


def test_eleventh_bad_login_within_a_minute_is_refused(web, coordinator):
    client = web.test_client()
    bad = {"email": coordinator.email, "password": "falsches-passwort-123"}
    for _ in range(10):
        assert client.post("/login", data=bad).status_code == 200
    refused = client.post("/login", data={"email": coordinator.email, "password": coordinator.plain_password})
    assert refused.status_code == 429
    assert refused.mimetype == "text/html" and '<html lang="de">' in text(refused)
    assert "Traceback" not in text(refused)
    # The page itself stays reachable: only attempts are limited.
    assert client.get("/login").status_code == 200


def test_one_account_is_limited_across_client_addresses(make_app, coordinator, make_user):
    web = make_app(LOGIN_RATE_LIMIT="3 per minute")
    bad = {"email": coordinator.email.upper(), "password": "falsches-passwort-123"}
    client = web.test_client()
    for number in range(3):
        response = client.post("/login", data=bad, environ_base={"REMOTE_ADDR": f"192.0.2.{number}"})
        assert response.status_code == 200
    right = {"email": coordinator.email, "password": coordinator.plain_password}
    assert client.post("/login", data=right, environ_base={"REMOTE_ADDR": "198.51.100.7"}).status_code == 429
    # Another account from that same new address is not affected.
    other = make_user("andere@lrabb.de", role="viewer", districts=())
    sign_in(web, other, REMOTE_ADDR="198.51.100.7")


def test_one_client_address_is_limited_across_accounts(make_app, coordinator):
    web = make_app(LOGIN_RATE_LIMIT="3 per minute")
    client = web.test_client()
    for number in range(3):
        response = client.post("/login", data={"email": f"raten{number}@lrabb.de", "password": "x" * 12})
        assert response.status_code == 200
    right = {"email": coordinator.email, "password": coordinator.plain_password}
    assert client.post("/login", data=right).status_code == 429
    assert client.post("/login", data=right, environ_base={"REMOTE_ADDR": "203.0.113.9"}).status_code == 302


def test_successful_logins_do_not_use_up_the_limit(make_app, coordinator):
    web = make_app(LOGIN_RATE_LIMIT="3 per minute")
    for _ in range(5):
        sign_in(web, coordinator)


# --- sessions that must end ----------------------------------------------


def test_deactivated_user_cannot_log_in_and_their_session_ends(web, admin, coordinator):
    session = sign_in(web, coordinator)
    admin_client = sign_in(web, admin)
    response = admin_client.post(
        f"/admin/users/{coordinator.id}", data={"name": "", "role": "coordinator", "districts": ["08115"]}
    )
    assert response.status_code == 302
    assert reload(User, id=coordinator.id).active is False

    assert session.get("/account/password").status_code == 302
    again = web.test_client().post("/login", data={"email": coordinator.email, "password": coordinator.plain_password})
    assert again.status_code == 200 and GENERIC_ERROR in text(again)


def test_password_change_ends_other_sessions(web, coordinator):
    here, elsewhere = sign_in(web, coordinator), sign_in(web, coordinator)
    new = "ein ganz neues Passwort"
    response = here.post(
        "/account/password",
        data={"current_password": coordinator.plain_password, "new_password": new, "new_password_repeat": new},
    )
    assert response.status_code == 302
    assert is_signed_in(here)
    assert not is_signed_in(elsewhere)
    assert not password_works(coordinator, coordinator.plain_password)
    sign_in(web, coordinator, password=new)


@pytest.mark.parametrize(
    "change, field",
    [
        ({"current_password": "falsch-falsch-falsch"}, "current_password"),
        ({"new_password": "kurz", "new_password_repeat": "kurz"}, "new_password"),
        ({"new_password_repeat": "etwas ganz anderes"}, "new_password_repeat"),
    ],
)
def test_bad_password_change_changes_nothing(web, coordinator, change, field):
    client = sign_in(web, coordinator)
    data = {
        "current_password": coordinator.plain_password,
        "new_password": "ein ganz neues Passwort",
        "new_password_repeat": "ein ganz neues Passwort",
        **change,
    }
    response = client.post("/account/password", data=data)
    assert response.status_code == 200
    assert f'id="{field}-error"' in text(response)
    assert password_works(coordinator, coordinator.plain_password)
    assert is_signed_in(client)


# --- user administration ---------------------------------------------------


def test_only_admins_manage_users(client, login, coordinator, admin):
    assert client.get("/admin/users").status_code == 302  # anonymous: to the login page
    login(coordinator)
    for path in ("/admin/users", "/admin/users/new", f"/admin/users/{admin.id}"):
        assert client.get(path).status_code == 403
    for path in (f"/admin/users/{admin.id}/password", f"/admin/users/{admin.id}/tokens"):
        assert client.post(path).status_code == 403
    assert password_works(admin, admin.plain_password)
    assert db.session.execute(select(func.count()).select_from(ApiToken)).scalar_one() == 0


def test_user_list_shows_role_districts_and_last_login(web, admin, coordinator):
    coordinator.name = "Erika Muster"
    coordinator.last_login_at = datetime(2026, 11, 21, 13, 30, tzinfo=timezone.utc)
    db.session.commit()
    page = text(sign_in(web, admin).get("/admin/users"))
    assert "Benutzerkonten" in page
    row = page[page.index("koordination@lrabb.de") :]
    row = row[: row.index("</tr>")]
    for expected in ("Erika Muster", "Koordination", "Böblingen", "aktiv", "21.11.2026 14:30"):
        assert expected in row


def test_admin_creates_a_coordinator_and_sees_the_password_once(web, admin):
    client = sign_in(web, admin)
    response = client.post(
        "/admin/users/new",
        data={"email": "Neu@LRABB.de", "name": "Neue Kollegin", "role": "coordinator", "districts": ["08115"]},
    )
    assert response.status_code == 200
    assert "no-store" in response.headers["Cache-Control"]
    password = secret_on(response)
    user = reload(User, email="neu@lrabb.de")
    assert (user.name, user.role, [d.key for d in user.districts]) == ("Neue Kollegin", "coordinator", ["08115"])
    assert password not in user.password_hash
    for path in ("/admin/users", f"/admin/users/{user.id}"):
        assert password not in text(client.get(path))
    user.plain_password = password
    sign_in(web, user)


@pytest.mark.parametrize(
    "data, field, message",
    [
        ({"email": "kein-at-zeichen", "role": "viewer"}, "email", "Ungültige E-Mail-Adresse"),
        ({"email": "admin@lrabb.de", "role": "viewer"}, "email", "Es gibt bereits ein Konto"),
        ({"email": "neu@lrabb.de", "role": "coordinator"}, "districts", "mindestens einen Kreis"),
        ({"email": "neu@lrabb.de", "role": "coordinator", "districts": ["08115", "99999"]}, "districts", "99999"),
        ({"email": "neu@lrabb.de", "role": "chef", "districts": ["08115"]}, "role", ""),
        ({"email": "", "role": "viewer"}, "email", ""),
    ],
)
def test_invalid_new_user_shows_field_errors_and_writes_nothing(web, admin, data, field, message):
    client = sign_in(web, admin)
    before = user_count()
    response = client.post("/admin/users/new", data=data)
    assert response.status_code == 200
    error = re.search(rf'<p class="field-error" id="{field}-error">([^<]*)</p>', text(response))
    assert error and message in error.group(1), text(response)
    assert user_count() == before


def test_admin_edits_role_districts_and_name(web, admin, coordinator):
    client = sign_in(web, admin)
    page = text(client.get(f"/admin/users/{coordinator.id}"))
    assert 'value="08115" checked' in page and 'value="08116">' in page
    response = client.post(
        f"/admin/users/{coordinator.id}",
        data={"name": " Erika Muster ", "role": "viewer", "districts": ["08115", "08116"], "active": "y"},
    )
    assert response.status_code == 302
    user = reload(User, id=coordinator.id)
    assert (user.name, user.role, user.active) == ("Erika Muster", "viewer", True)
    assert [d.key for d in user.districts] == ["08115", "08116"]
    assert "wurde gespeichert" in text(client.get(response.headers["Location"]))


def test_invalid_edit_changes_nothing(web, admin, coordinator):
    client = sign_in(web, admin)
    data = {"role": "coordinator", "districts": ["77777"], "active": "y"}
    response = client.post(f"/admin/users/{coordinator.id}", data=data)
    assert response.status_code == 200 and "77777" in text(response)
    assert [d.key for d in reload(User, id=coordinator.id).districts] == ["08115"]


@pytest.mark.parametrize(
    "data, field",
    [
        ({"role": "admin"}, "active"),
        ({"role": "coordinator", "districts": ["08115"], "active": "y"}, "role"),
    ],
)
def test_admin_cannot_deactivate_or_demote_themselves(web, admin, data, field):
    client = sign_in(web, admin)
    response = client.post(f"/admin/users/{admin.id}", data=data)
    assert response.status_code == 200
    assert f'id="{field}-error"' in text(response)
    user = reload(User, id=admin.id)
    assert (user.role, user.active) == ("admin", True)
    assert client.get("/admin/users").status_code == 200


def test_unknown_ids_are_404(web, admin, coordinator, make_token):
    make_token(admin)
    admins_token = reload(ApiToken, user_id=admin.id)
    client = sign_in(web, admin)
    assert client.get("/admin/users/9999").status_code == 404
    assert client.post("/admin/users/9999/password").status_code == 404
    assert client.post("/admin/users/9999/tokens").status_code == 404
    # A token id that exists, but belongs to someone else.
    assert client.post(f"/admin/users/{coordinator.id}/tokens/{admins_token.id}/delete").status_code == 404
    assert reload(ApiToken, id=admins_token.id) is not None


def test_admin_issues_and_revokes_an_api_token(web, admin, coordinator):
    client = sign_in(web, admin)
    response = client.post(f"/admin/users/{coordinator.id}/tokens", data={"label": "Statistik"})
    assert response.status_code == 200 and "no-store" in response.headers["Cache-Control"]
    token = secret_on(response)
    api = web.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    assert [d["key"] for d in api.get("/api/v1/districts", headers=headers).json] == ["08115"]

    page = text(client.get(f"/admin/users/{coordinator.id}"))
    assert "Statistik" in page and token not in page
    row = reload(ApiToken, user_id=coordinator.id)
    assert row.last_used_at is not None
    response = client.post(f"/admin/users/{coordinator.id}/tokens/{row.id}/delete")
    assert response.status_code == 302
    assert reload(ApiToken, id=row.id) is None
    assert api.get("/api/v1/districts", headers=headers).status_code == 401


def test_admin_gives_a_new_password(web, admin, coordinator):
    session = sign_in(web, coordinator)
    client = sign_in(web, admin)
    response = client.post(f"/admin/users/{coordinator.id}/password")
    assert response.status_code == 200 and "no-store" in response.headers["Cache-Control"]
    password = secret_on(response)
    assert not is_signed_in(session)
    assert not password_works(coordinator, coordinator.plain_password)
    sign_in(web, coordinator, password=password)


def test_admin_who_resets_their_own_password_stays_signed_in(web, admin):
    client = sign_in(web, admin)
    password = secret_on(client.post(f"/admin/users/{admin.id}/password"))
    assert is_signed_in(client)
    sign_in(web, admin, password=password)
