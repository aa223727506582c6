"""Account rules: creating users, passwords (Argon2id), API tokens."""
import hashlib
import secrets
from datetime import timedelta, timezone

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from email_validator import EmailNotValidError, validate_email
from flask_babel import gettext as _
from sqlalchemy import func, select

from accounts import sessions
from accounts.models import ROLES, ApiToken, User, user_districts, utcnow
from core.collation import sorted_by_name
from core.extensions import db
from directory.models import District

# argon2-cffi's defaults are RFC 9106's low-memory profile of Argon2id.
password_hasher = PasswordHasher()
# Verified against when the address is unknown, so timing does not reveal it.
_DUMMY_HASH = password_hasher.hash(secrets.token_urlsafe(16))

MIN_PASSWORD_LENGTH = 12
TOKEN_USE_RESOLUTION = timedelta(minutes=1)


class AccountError(ValueError):
    """A rule was broken; the message is fit to show to the person."""


def normalize_email(email, check=True):
    email = (email or "").strip()
    if check:
        try:
            email = validate_email(email, check_deliverability=False).normalized
        except EmailNotValidError as exc:
            # email-validator explains in English; the person gets German.
            raise AccountError(_("Ungültige E-Mail-Adresse: %(email)s", email=email)) from exc
    return email.lower()


def generate_password():
    return secrets.token_urlsafe(15)  # 20 characters, about 120 bits


def hash_password(password):
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(_("Das Passwort muss mindestens %(n)d Zeichen lang sein.", n=MIN_PASSWORD_LENGTH))
    return password_hasher.hash(password)


def find_user(email):
    return db.session.execute(select(User).where(User.email == (email or "").strip().lower())).scalar_one_or_none()


def resolve_districts(keys):
    keys = list(dict.fromkeys(keys or []))
    districts = db.session.execute(select(District).where(District.key.in_(keys))).scalars().all()
    missing = sorted(set(keys) - {d.key for d in districts})
    if missing:
        raise AccountError(_("Unbekannter Kreis: %(keys)s", keys=", ".join(missing)))
    return sorted_by_name(districts)


def role_districts(role, district_keys):
    """Check a role and its districts together; returns the District rows."""
    if role not in ROLES:
        raise AccountError(_("Unbekannte Rolle %(role)s; erlaubt: %(roles)s.", role=role, roles=", ".join(ROLES)))
    districts = resolve_districts(district_keys)
    if role == "coordinator" and not districts:
        raise AccountError(_("Eine Koordinatorin oder ein Koordinator braucht mindestens einen Kreis."))
    return districts


def create_user(email, role, district_keys=(), password=None, name="", check_email=True):
    """Create a user; returns (user, password). Does not commit."""
    email = normalize_email(email, check=check_email)
    if find_user(email) is not None:
        raise AccountError(_("Es gibt bereits ein Konto für %(email)s.", email=email))
    districts = role_districts(role, district_keys)
    password = password or generate_password()
    user = User(email=email, name=name, role=role, password_hash=hash_password(password), districts=districts)
    db.session.add(user)
    db.session.flush()
    return user, password


def update_user(user, role, district_keys, name, active):
    """Change an account; deactivating it ends all of its sessions."""
    districts = role_districts(role, district_keys)
    if not active:
        sessions.end_all(user)
    user.role, user.districts, user.name, user.active = role, districts, name, active


def set_password(user, password):
    """Set a new password; every session of the account ends (whoever knew the old one is out)."""
    user.password_hash = hash_password(password)
    sessions.end_all(user)


def password_matches(password_hash, password):
    try:
        return password_hasher.verify(password_hash, password or "")
    except (VerificationError, InvalidHashError):
        return False


def authenticate(email, password):
    """The active user with this address and password, or None."""
    user = find_user(email)
    if not password_matches(user.password_hash if user else _DUMMY_HASH, password):
        return None
    if user is None or not user.active:
        return None
    if password_hasher.check_needs_rehash(user.password_hash):
        user.password_hash = password_hasher.hash(password)
    user.last_login_at = utcnow()
    return user


def hash_token(token):
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(user, label=""):
    """Create an API token; only its hash is stored. Does not commit."""
    token = "egov_" + secrets.token_urlsafe(32)
    db.session.add(ApiToken(user=user, token_hash=hash_token(token), label=label))
    return token


def user_for_token(token):
    """The active user a token belongs to, or None. Marks the token used."""
    if not token:
        return None
    row = db.session.execute(select(ApiToken).where(ApiToken.token_hash == hash_token(token))).scalar_one_or_none()
    if row is None or not row.user.active:
        return None
    now = utcnow()
    # "Last used" to the minute is enough; a write on every API call is not.
    last = row.last_used_at
    if last is not None and last.tzinfo is None:
        last = last.replace(tzinfo=timezone.utc)  # SQLite hands back naive UTC
    if last is None or now - last > TOKEN_USE_RESOLUTION:
        row.last_used_at = now
    return row.user


def coordinators_of(district):
    """The active coordinators of a district, by the name they are shown with."""
    users = db.session.execute(
        select(User)
        .join(user_districts, user_districts.c.user_id == User.id)
        .where(user_districts.c.district_key == district.key, User.role == "coordinator", User.active.is_(True))
    ).scalars()
    return sorted_by_name(users, lambda user: user.name or user.email)


def user_count():
    return db.session.execute(select(func.count()).select_from(User)).scalar_one()
