"""Who is asking, and which districts they may see.

Browser pages authenticate with the Flask-Login session, backed by a session
row on the server (accounts/sessions.py) that logout, a new password and
deactivation delete; `/api/` routes only with a bearer token (never the
session cookie, so the API needs no CSRF token). Either way the request's
district scope is set here, once, before any view runs.
"""
from functools import wraps

from flask import abort, g, request, session
from flask_babel import lazy_gettext
from flask_login import current_user, login_user, logout_user

from accounts import sessions
from core.database import set_district_scope
from core.extensions import db, login_manager

API_PREFIX = "/api/"


@login_manager.user_loader
def load_user(user_id):
    # Flask-Login keeps the user id; the sign-in itself is the server-side
    # session named by our key. A remember-me cookie (never issued) brings
    # no key, so it signs nobody in either.
    user = sessions.user_for(session.get(sessions.COOKIE_KEY), user_id)
    if user is None:
        # Ended or expired: drop the dead keys, so the next requests skip the lookup.
        session.pop("_user_id", None)
        session.pop(sessions.COOKIE_KEY, None)
    return user


def sign_in(user):
    """Sign `user` in in this browser with a new server-side session. Does not commit.

    Used at login and after a new password (which ended every session,
    this browser's too).
    """
    sessions.end(session.get(sessions.COOKIE_KEY))  # whoever was signed in here before
    key = sessions.start(user, request.user_agent.string)
    login_user(user)
    session[sessions.COOKIE_KEY] = key


def sign_out():
    """End this browser's session on the server and in the cookie. Does not commit."""
    sessions.end(session.pop(sessions.COOKIE_KEY, None))
    logout_user()


def bearer_token():
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


def is_api_request():
    return request.path.startswith(API_PREFIX)


def _establish_scope():
    if is_api_request():
        from accounts.services import user_for_token

        user = user_for_token(bearer_token())
    else:
        user = current_user._get_current_object() if current_user.is_authenticated else None
    if sessions.wrote() or db.session.dirty:
        # A session's or a token's last use, or an expired session's removal;
        # nothing else has happened in this request yet.
        db.session.commit()
    g.principal = user
    set_district_scope(user.district_keys if user is not None else None)


def _forget_request_user(exc):
    # Nothing about this request's user may outlive it, even where the app
    # context does (CLI code and tests issuing several requests in one).
    for name in ("principal", "district_scope", "_login_user"):
        g.pop(name, None)


def principal():
    """The authenticated user of this request (session or token), or None."""
    return g.get("principal")


def can_edit():
    """Whether this request's user may change things (admin or coordinator); for templates too."""
    user = principal()
    return user is not None and user.can_edit


def can_see_personal_data():
    """Whether this request's user may see names, addresses and registrations (not a viewer); for templates too."""
    return can_edit()


def role_required(*roles):
    """Allow only these roles; anonymous visitors go to the login page (web) or get 401 (API)."""

    def decorator(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            user = principal()
            if user is None:
                if is_api_request():
                    abort(401)
                return login_manager.unauthorized()
            if roles and user.role not in roles:
                abort(403)
            return view(*args, **kwargs)

        return wrapped

    return decorator


login_required = role_required()
editor_required = role_required("admin", "coordinator")
admin_required = role_required("admin")
# Viewers (ministry, municipal associations) see reach and aggregate figures
# only: every page and API route that shows or exports a person's data
# (subscribers, registrations, contacts) takes an editor. The same roles as
# `editor_required`, named for why a read-only route needs them.
personal_data_required = editor_required


def init_app(app):
    login_manager.login_view = "accounts.login"
    login_manager.login_message = lazy_gettext("Bitte melden Sie sich an.")
    login_manager.login_message_category = "info"
    login_manager.session_protection = "basic"
    app.before_request(_establish_scope)
    app.add_template_global(can_see_personal_data)
    app.teardown_request(_forget_request_user)
