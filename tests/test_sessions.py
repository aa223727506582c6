"""Sign-ins end on the server: a copied session cookie is worthless after
logout, a new password, deactivation or deletion, and after the idle or the
absolute lifetime. "Last seen" is not written on every request.

Each browser is its own test client of an app whose requests get their own
app context, as in production; a "copied cookie" is the session cookie of one
client set on a fresh one.
"""
import hashlib
from datetime import timedelta

import pytest
from flask_login.utils import encode_cookie
from sqlalchemy import delete, func, select

from accounts import sessions
from accounts.models import User, UserSession, utcnow
from core.extensions import db

COOKIE = "session"


@pytest.fixture
def web(make_app):
    return make_app()


@pytest.fixture
def admin(make_user, two_districts):
    return make_user("admin@lrabb.de", role="admin", districts=())


@pytest.fixture
def coordinator(make_user, two_districts):
    return make_user("koordination@lrabb.de", role="coordinator", districts=("08115",))


def log_in(app, user, password=None, user_agent="Firefox"):
    client = app.test_client()
    response = client.post("/login", data={"email": user.email, "password": password or user.plain_password},
                           headers={"User-Agent": user_agent})
    assert response.status_code == 302, response.get_data(as_text=True)
    return client


def copy_of(app, client):
    """A fresh browser holding a copy of `client`'s session cookie."""
    thief = app.test_client()
    thief.set_cookie(COOKIE, client.get_cookie(COOKIE).value)
    return thief


def signed_in(client):
    response = client.get("/account/password")
    if response.status_code == 302:
        assert response.headers["Location"].startswith("/login")
    return response.status_code == 200


def rows(user=None):
    db.session.rollback()
    statement = select(UserSession).order_by(UserSession.id)
    if user is not None:
        statement = statement.where(UserSession.user_id == user.id)
    return db.session.execute(statement).scalars().all()


def age(row_id, **shift):
    """Move a session's times into the past by the given timedeltas (seconds)."""
    row = db.session.get(UserSession, row_id)
    for column, seconds in shift.items():
        setattr(row, column, getattr(row, column) - timedelta(seconds=seconds))
    db.session.commit()


# --- logout ---------------------------------------------------------------------


def test_copied_cookie_is_signed_out_after_logout(web, coordinator):
    browser = log_in(web, coordinator)
    copy = copy_of(web, browser)
    assert signed_in(copy)  # the copy works while the sign-in lives

    assert browser.post("/logout").status_code == 302

    assert rows(coordinator) == []
    assert not signed_in(copy)
    assert not signed_in(browser)
    # The replayed cookie gets nowhere else either, and is refused again and again.
    assert copy.get("/admin/users").status_code == 302
    assert copy.get("/d/08115/").headers["Location"].startswith("/login")
    assert not signed_in(copy)


def test_logout_ends_only_this_browser(web, coordinator):
    laptop, phone = log_in(web, coordinator, user_agent="Laptop"), log_in(web, coordinator, user_agent="Phone")
    laptop.post("/logout")
    assert not signed_in(laptop)
    assert signed_in(phone)
    assert [row.user_agent for row in rows(coordinator)] == ["Phone"]


def test_api_ignores_the_session_cookie(web, coordinator):
    browser = log_in(web, coordinator)
    assert browser.get("/api/v1/districts").status_code == 401


def test_a_forged_remember_cookie_signs_nobody_in(web, coordinator):
    # Flask-Login would accept a signed remember-me cookie with a user id;
    # the service never issues one, and an id alone names no session.
    with web.app_context():
        cookie = encode_cookie(coordinator.get_id())
    client = web.test_client()
    client.set_cookie("remember_token", cookie)
    assert not signed_in(client)


# --- what ends all sessions of an account ------------------------------------------


def test_password_change_ends_other_sessions_and_old_copies(web, coordinator):
    here, elsewhere = log_in(web, coordinator), log_in(web, coordinator)
    copy_of_here = copy_of(web, here)
    new = "ein ganz neues Passwort"

    response = here.post("/account/password", data={
        "current_password": coordinator.plain_password, "new_password": new, "new_password_repeat": new})

    assert response.status_code == 302
    assert signed_in(here)  # with a fresh session
    assert not signed_in(elsewhere)
    assert not signed_in(copy_of_here)  # the cookie from before the change is dead too
    assert len(rows(coordinator)) == 1


def test_deactivation_ends_every_session_and_reactivation_revives_none(web, admin, coordinator):
    browser = log_in(web, coordinator)
    copy = copy_of(web, browser)
    admin_browser = log_in(web, admin)
    form = {"name": "", "role": "coordinator", "districts": ["08115"]}

    assert admin_browser.post(f"/admin/users/{coordinator.id}", data=form).status_code == 302
    assert rows(coordinator) == []
    assert not signed_in(browser) and not signed_in(copy)

    assert admin_browser.post(f"/admin/users/{coordinator.id}", data={**form, "active": "y"}).status_code == 302
    db.session.rollback()
    assert db.session.get(User, coordinator.id).active
    assert not signed_in(copy)
    assert signed_in(admin_browser)


def test_a_deactivated_account_is_refused_even_with_a_live_row(web, coordinator):
    # Belt and braces: should a row survive (deactivated by hand in the
    # database), the loader still refuses an inactive account.
    browser = log_in(web, coordinator)
    db.session.get(User, coordinator.id).active = False
    db.session.commit()
    assert not signed_in(browser)


def test_deleting_an_account_deletes_its_sessions(web, coordinator, admin):
    browser = log_in(web, coordinator)
    log_in(web, admin)
    db.session.execute(delete(User).where(User.id == coordinator.id))  # as the database would, without the ORM
    db.session.commit()
    assert rows(coordinator) == []
    assert not signed_in(browser)
    assert len(rows()) == 1


# --- lifetimes ---------------------------------------------------------------------


def test_an_idle_session_is_refused_and_deleted(web, coordinator):
    browser = log_in(web, coordinator)
    (row,) = rows(coordinator)
    age(row.id, last_seen_at=web.config["SESSION_IDLE_SECONDS"] - 120)
    assert signed_in(browser)  # two minutes short of the idle limit

    age(row.id, last_seen_at=web.config["SESSION_IDLE_SECONDS"])
    assert not signed_in(browser)
    assert rows(coordinator) == []


def test_a_busy_session_still_ends_at_its_absolute_lifetime(web, coordinator):
    browser = log_in(web, coordinator)
    (row,) = rows(coordinator)
    age(row.id, created_at=web.config["SESSION_MAX_SECONDS"] - 120)
    assert signed_in(browser)

    age(row.id, created_at=120)
    assert not signed_in(browser)
    assert rows(coordinator) == []


def test_lifetimes_come_from_the_settings(make_app, coordinator):
    short = make_app(SESSION_IDLE_SECONDS=60, SESSION_MAX_SECONDS=3600)
    browser = log_in(short, coordinator)
    (row,) = rows(coordinator)
    age(row.id, last_seen_at=61)
    assert not signed_in(browser)


def test_login_purges_expired_sessions_of_everyone(web, coordinator, admin):
    stale = log_in(web, coordinator)
    (row,) = rows(coordinator)
    age(row.id, created_at=web.config["SESSION_MAX_SECONDS"] + 1)
    assert len(rows()) == 1

    log_in(web, admin)

    assert [r.user_id for r in rows()] == [admin.id]
    assert not signed_in(stale)


def test_last_seen_is_written_at_most_every_few_minutes(web, coordinator):
    browser = log_in(web, coordinator)
    (row,) = rows(coordinator)
    age(row.id, last_seen_at=60)
    before = rows(coordinator)[0].last_seen_at
    for _ in range(3):
        assert signed_in(browser)
    assert rows(coordinator)[0].last_seen_at == before  # a minute ago: no write

    age(row.id, last_seen_at=sessions.TOUCH_RESOLUTION.total_seconds())
    assert signed_in(browser)
    seen = rows(coordinator)[0].last_seen_at
    assert seen > before
    assert abs((utcnow() - sessions._aware(seen)).total_seconds()) < 30


# --- what is stored ------------------------------------------------------------------


def test_only_a_hash_of_the_key_is_stored(web, coordinator):
    browser = log_in(web, coordinator, user_agent="Mozilla/5.0 " + "x" * 400)
    cookie = web.session_interface.get_signing_serializer(web).loads(browser.get_cookie(COOKIE).value)
    key = cookie[sessions.COOKIE_KEY]
    (row,) = rows(coordinator)
    assert row.key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert db.session.execute(
        select(func.count()).select_from(UserSession).where(UserSession.key_hash == key)
    ).scalar_one() == 0
    assert len(row.user_agent) == 255 and row.user_agent.startswith("Mozilla/5.0")
