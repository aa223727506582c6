"""Configuration from the environment, with embedded defaults.

Everything has a default that works on a fresh machine: SQLite and the
embedded Redis live in the instance folder, a secret key is generated once and
kept there, and without MAIL_SERVER mail goes to the outbox folder.
"""
import os
from datetime import date
import secrets

TRUE_WORDS = {"1", "true", "yes", "on"}


def env_bool(name, default=False):
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    return value.strip().lower() in TRUE_WORDS


class ConfigError(RuntimeError):
    """A setting in the environment cannot be used; the message says which."""


def env_int(name, default):
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, not {value!r}") from None


def env_float(name, default):
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    try:
        return float(value)
    except ValueError:
        raise ConfigError(f"{name} must be a number, not {value!r}") from None


def env_date(name, default):
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise ConfigError(f"{name} must be a date as YYYY-MM-DD, not {value!r}") from None


def normalize_database_url(url):
    """Accept the common `postgres://` spellings and use the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def instance_secret_key(instance_path):
    """Read the key from the instance folder, creating it once.

    Web and worker processes may start at the same moment; linking a fully
    written temporary file into place makes exactly one of them win.
    """
    path = os.path.join(instance_path, "secret_key")
    if not os.path.exists(path):
        tmp = f"{path}.{os.getpid()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
    with open(path) as fh:
        return fh.read().strip()


def from_environment(instance_path):
    env = os.environ
    database_url = env.get("DATABASE_URL") or "sqlite:///" + os.path.join(instance_path, "egov.sqlite3")
    base_url = (env.get("BASE_URL") or "http://127.0.0.1:5000").rstrip("/")
    secure = base_url.startswith("https://")
    return {
        "SQLALCHEMY_DATABASE_URI": normalize_database_url(database_url),
        "REDIS_URL": env.get("REDIS_URL") or None,
        "EMBEDDED_REDIS_FILE": os.path.join(instance_path, "redis.db"),
        "SECRET_KEY": env.get("SECRET_KEY") or None,
        "BASE_URL": base_url,
        # False: BASE_URL is the default, and `flask serve` derives it from --host/--port.
        "BASE_URL_FROM_ENV": bool(env.get("BASE_URL")),
        "MAIL_SERVER": env.get("MAIL_SERVER") or None,
        "MAIL_PORT": env_int("MAIL_PORT", 25),
        "MAIL_USERNAME": env.get("MAIL_USERNAME") or None,
        "MAIL_PASSWORD": env.get("MAIL_PASSWORD") or None,
        "MAIL_USE_TLS": env_bool("MAIL_USE_TLS"),
        "MAIL_USE_SSL": env_bool("MAIL_USE_SSL"),
        "MAIL_DEFAULT_SENDER": env.get("MAIL_DEFAULT_SENDER") or "E-Government-Koordination <noreply@localhost>",
        "OUTBOX_DIR": env.get("OUTBOX_DIR") or os.path.join(instance_path, "outbox"),
        "ADMIN_EMAIL": env.get("ADMIN_EMAIL") or "admin@localhost",
        # Where calendar replies, bounces and mailto unsubscribes arrive
        # (default: inbound@ the sender's domain).
        "INBOUND_ADDRESS": env.get("INBOUND_ADDRESS") or None,
        # The legal pages (legal/): an address here is used until an admin
        # stores a URL or text under Rechtliche Angaben.
        "IMPRINT_URL": env.get("IMPRINT_URL") or None,
        "PRIVACY_URL": env.get("PRIVACY_URL") or None,
        "ACCESSIBILITY_URL": env.get("ACCESSIBILITY_URL") or None,
        # Feedback address of the shipped accessibility statement (default: ADMIN_EMAIL).
        "ACCESSIBILITY_CONTACT": env.get("ACCESSIBILITY_CONTACT") or None,
        # Key of the suppression list's address hashes; defaults to SECRET_KEY.
        # Keep it when rotating SECRET_KEY, or erased addresses are forgotten.
        "SUPPRESSION_KEY": env.get("SUPPRESSION_KEY") or None,
        # The public subscription form, per client address and per address entered.
        "SUBSCRIBE_RATE_LIMIT": env.get("SUBSCRIBE_RATE_LIMIT") or "20 per hour;100 per day",
        "SUBSCRIBE_ADDRESS_RATE_LIMIT": env.get("SUBSCRIBE_ADDRESS_RATE_LIMIT") or "10 per day",
        # Confirmation mails to one address; beyond it the form answers as always but sends nothing.
        "CONFIRMATION_MAIL_LIMIT": env.get("CONFIRMATION_MAIL_LIMIT") or "3 per day",
        # MAIL_SERVER alone decides between SMTP and the outbox; Flask-Mail
        # would otherwise drop every message silently whenever TESTING is on.
        "MAIL_SUPPRESS_SEND": False,
        "RQ_QUEUES": ["default"],
        # The sending pipeline (newsletter/sending.py).
        "SEND_BATCH_SIZE": env_int("SEND_BATCH_SIZE", 200),
        "SEND_PARALLEL_JOBS": env_int("SEND_PARALLEL_JOBS", 4),
        "SEND_LEASE_SECONDS": env_int("SEND_LEASE_SECONDS", 300),
        "SEND_MAX_ATTEMPTS": env_int("SEND_MAX_ATTEMPTS", 6),
        "SEND_RETRY_BASE_SECONDS": env_int("SEND_RETRY_BASE_SECONDS", 60),
        "SEND_RETRY_MAX_SECONDS": env_int("SEND_RETRY_MAX_SECONDS", 3600),
        # Connection faults (core/pipeline.py): a dropped session, a timeout or
        # a 421 is not the recipient's fault. The job reconnects after 0, then
        # BACKOFF, doubling up to BACKOFF_MAX seconds, and retries the mail;
        # after GIVE_UP seconds without a working session it gives its rows
        # back and stops. A mail that loses the session MAIL_CUTS times in a
        # row counts an attempt after all (a message the server cannot take).
        "SEND_SMTP_TIMEOUT_SECONDS": env_float("SEND_SMTP_TIMEOUT_SECONDS", 30.0),
        "SEND_RECONNECT_BACKOFF_SECONDS": env_float("SEND_RECONNECT_BACKOFF_SECONDS", 0.25),
        "SEND_RECONNECT_BACKOFF_MAX_SECONDS": env_float("SEND_RECONNECT_BACKOFF_MAX_SECONDS", 2.0),
        "SEND_RECONNECT_GIVE_UP_SECONDS": env_float("SEND_RECONNECT_GIVE_UP_SECONDS", 60.0),
        "SEND_RECONNECT_MAIL_CUTS": env_int("SEND_RECONNECT_MAIL_CUTS", 5),
        "RECONCILE_INTERVAL": env_int("RECONCILE_INTERVAL", 15),
        # `flask serve` (core/serve.py): seconds a stop (SIGTERM, Ctrl-C) waits
        # for the web server and the workers before it kills them. A running
        # send finishes the mail in flight, gives its unsent rows back and
        # ends within a few seconds; other jobs may need longer.
        "SERVE_STOP_TIMEOUT": env_int("SERVE_STOP_TIMEOUT", 30),
        "MACHINE_OPEN_SECONDS": env_int("MACHINE_OPEN_SECONDS", 10),
        # Tracking (newsletter/tracking.py): hits of one delivery, kind and link
        # within this many seconds are counted on one row (at most a day).
        "TRACKING_WINDOW_SECONDS": env_int("TRACKING_WINDOW_SECONDS", 3600),
        # Hits counted per delivery (its token: per kind, link and window) and
        # per client address; beyond them the pixel and the redirect answer as
        # always but count nothing.
        "TRACKING_TOKEN_HITS_PER_WINDOW": env_int("TRACKING_TOKEN_HITS_PER_WINDOW", 100),
        "TRACKING_ADDRESS_RATE_LIMIT": env.get("TRACKING_ADDRESS_RATE_LIMIT") or "1200 per minute",
        # Reach (reach/): where "seit Programmstart" begins, and the fewest
        # people a per-municipality figure of what people did may stand for
        # in what viewers see (smaller cells show ".").
        "REACH_PROGRAMME_START": env_date("REACH_PROGRAMME_START", date(2022, 7, 1)),
        "REACH_MIN_CELL": env_int("REACH_MIN_CELL", 3),
        # Optional DKIM signing of newsletters: a PEM private key file.
        "DKIM_PRIVATE_KEY": env.get("DKIM_PRIVATE_KEY") or None,
        "DKIM_SELECTOR": env.get("DKIM_SELECTOR") or "egov",
        "DKIM_DOMAIN": env.get("DKIM_DOMAIN") or None,
        # Secure cookies need HTTPS; on a plain-HTTP development URL they would
        # make login impossible, so they follow BASE_URL.
        "SESSION_COOKIE_SECURE": secure,
        "REMEMBER_COOKIE_SECURE": secure,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "PREFERRED_URL_SCHEME": "https" if secure else "http",
        # Reverse proxies in front of the app whose X-Forwarded-* headers are
        # trusted; rate limits key on the client address, not the proxy's.
        "TRUSTED_PROXIES": env_int("TRUSTED_PROXIES", 0),
        "LOGIN_RATE_LIMIT": env.get("LOGIN_RATE_LIMIT") or "10 per minute;50 per hour",
        # Sign-ins end on the server (accounts/sessions.py): after this long
        # without a request, and this long after the login at the latest.
        "SESSION_IDLE_SECONDS": env_int("SESSION_IDLE_SECONDS", 8 * 3600),
        "SESSION_MAX_SECONDS": env_int("SESSION_MAX_SECONDS", 24 * 3600),
        "BABEL_DEFAULT_LOCALE": "de",
        "BABEL_DEFAULT_TIMEZONE": "Europe/Berlin",
        "LANGUAGES": ["de", "en"],
        "API_TITLE": "E-Government-Koordination BW",
        "API_VERSION": "v1",
        "OPENAPI_VERSION": "3.0.3",
        "OPENAPI_URL_PREFIX": "/api",
        "OPENAPI_JSON_PATH": "openapi.json",
        "SQLALCHEMY_TRACK_MODIFICATIONS": False,
    }


def load_config(app, overrides):
    os.makedirs(app.instance_path, exist_ok=True)
    app.config.update(from_environment(app.instance_path))
    app.config.update({k: v for k, v in overrides.items() if k != "INSTANCE_PATH"})
    app.config["SQLALCHEMY_DATABASE_URI"] = normalize_database_url(app.config["SQLALCHEMY_DATABASE_URI"])
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = instance_secret_key(app.instance_path)
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        # Web and workers write concurrently; wait for the lock instead of failing.
        app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", {"connect_args": {"timeout": 30}})
    else:
        # A server that accepts connections but never answers must not hang requests.
        app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", {"pool_pre_ping": True, "connect_args": {"connect_timeout": 5}})
    if app.config["TRUSTED_PROXIES"]:
        from werkzeug.middleware.proxy_fix import ProxyFix

        n = app.config["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)
    from core.queue import limiter_storage_uri

    app.config.setdefault("RATELIMIT_STORAGE_URI", limiter_storage_uri(app))
    app.config.setdefault("RATELIMIT_IN_MEMORY_FALLBACK_ENABLED", True)
    app.config.setdefault("RATELIMIT_HEADERS_ENABLED", True)
