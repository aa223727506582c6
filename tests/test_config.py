"""Configuration from the environment, with embedded defaults."""
import os

from app import create_app
from core.config import instance_secret_key, normalize_database_url
from core.queue import embedded_socket_path, limiter_storage_uri, redis_url


def test_defaults_live_in_the_instance_folder(tmp_path, monkeypatch):
    for name in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "MAIL_SERVER", "BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    app = create_app({"INSTANCE_PATH": str(tmp_path)})
    assert app.config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path}/egov.sqlite3"
    assert redis_url(app) == f"unix://{tmp_path}/redis.sock"
    assert limiter_storage_uri(app) == f"redis+unix://{tmp_path}/redis.sock"
    assert app.config["OUTBOX_DIR"] == os.path.join(str(tmp_path), "outbox")
    assert app.config["MAIL_SERVER"] is None
    assert app.config["SESSION_COOKIE_SECURE"] is False  # http://127.0.0.1:5000


def test_secret_key_is_generated_once_and_kept(tmp_path, monkeypatch):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    first = create_app({"INSTANCE_PATH": str(tmp_path)}).config["SECRET_KEY"]
    second = create_app({"INSTANCE_PATH": str(tmp_path)}).config["SECRET_KEY"]
    assert first == second and len(first) == 64
    assert oct(os.stat(tmp_path / "secret_key").st_mode & 0o777) == "0o600"
    assert instance_secret_key(str(tmp_path)) == first


def test_environment_overrides(tmp_path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgres://u@db.example/egov")
    monkeypatch.setenv("REDIS_URL", "redis://cache.example:6379/2")
    monkeypatch.setenv("BASE_URL", "https://egov.example/")
    monkeypatch.setenv("MAIL_SERVER", "smtp.example")
    monkeypatch.setenv("MAIL_PORT", "587")
    monkeypatch.setenv("MAIL_USE_TLS", "true")
    app = create_app({"INSTANCE_PATH": str(tmp_path)})
    assert app.config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://u@db.example/egov"
    assert limiter_storage_uri(app) == "redis://cache.example:6379/2"
    assert app.config["BASE_URL"] == "https://egov.example"
    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert (app.config["MAIL_SERVER"], app.config["MAIL_PORT"], app.config["MAIL_USE_TLS"]) == ("smtp.example", 587, True)


def test_database_url_spellings():
    assert normalize_database_url("postgresql://a@b/c") == "postgresql+psycopg://a@b/c"
    assert normalize_database_url("postgresql+psycopg://a@b/c") == "postgresql+psycopg://a@b/c"
    assert normalize_database_url("sqlite:////x.db") == "sqlite:////x.db"


def test_long_instance_paths_get_a_short_socket(tmp_path):
    long_path = str(tmp_path / ("x" * 120))
    socket = embedded_socket_path(long_path)
    assert len(socket) <= 100 and socket.endswith(".sock")
    assert embedded_socket_path(long_path) == socket  # every process derives the same one


def test_migrations_match_the_models(app):
    """The checked-in migrations create exactly the schema the models describe."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from core.extensions import db

    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, db.metadata) == []


def test_malformed_number_names_the_variable(tmp_path, monkeypatch):
    import pytest

    from core.config import ConfigError

    monkeypatch.setenv("MAIL_PORT", "fünfundzwanzig")
    with pytest.raises(ConfigError, match="MAIL_PORT"):
        create_app({"INSTANCE_PATH": str(tmp_path)})
