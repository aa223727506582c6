"""Account rules for the web interface: own password, user administration, tokens.

Plain functions like accounts.services, with no request objects, so a CLI or
a later API can apply the same rules. None of them commits.
"""
from flask_babel import gettext as _
from sqlalchemy import select

from accounts.models import ApiToken, User
from accounts.services import (
    AccountError,
    generate_password,
    password_matches,
    set_password,
    update_user,
)
from core.collation import sorted_by_name
from core.extensions import db
from directory.models import District


class FieldError(AccountError):
    """An AccountError that belongs to one input, so a form can show it there."""

    def __init__(self, field, message):
        super().__init__(message)
        self.field = field


def all_users():
    return db.session.execute(select(User).order_by(User.email)).scalars().all()


def all_districts():
    return sorted_by_name(db.session.execute(select(District)).scalars())


def user_tokens(user):
    statement = select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.created_at, ApiToken.id)
    return db.session.execute(statement).scalars().all()


def change_own_password(user, current_password, new_password):
    """Set a new password after checking the current one; other sessions end."""
    if not password_matches(user.password_hash, current_password):
        raise FieldError("current_password", _("Das aktuelle Passwort ist falsch."))
    set_password(user, new_password)


def reset_password(user):
    """Give the user a generated password; returns it (it is stored only as a hash)."""
    password = generate_password()
    set_password(user, password)
    return password


def update_account(actor, user, role, district_keys, name, active):
    """Change role, districts, name and active flag, as `actor` (an admin).

    Admins may not deactivate or demote themselves: that way the service
    always keeps at least one active admin who can undo a mistake.
    """
    if actor.id == user.id:
        if not active:
            raise FieldError("active", _("Sie können Ihr eigenes Konto nicht deaktivieren."))
        if role != "admin":
            raise FieldError("role", _("Sie können sich die Rolle Administration nicht selbst entziehen."))
    update_user(user, role, district_keys, (name or "").strip(), active)


def revoke_token(token):
    db.session.delete(token)
