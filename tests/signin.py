"""Signing a test client in without the login form.

A sign-in is a server-side session row plus its key in the cookie
(accounts/sessions.py); writing only Flask-Login's `_user_id` signs nobody
in any more.
"""
from accounts import sessions
from core.extensions import db


def sign_in_client(client, user):
    """Sign `user` in on this test client, as a login would; returns the client."""
    key = sessions.start(user, "pytest")
    db.session.commit()
    with client.session_transaction() as session:
        session["_user_id"] = user.get_id()
        session["_fresh"] = True
        session[sessions.COOKIE_KEY] = key
    return client
