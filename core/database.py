"""Database plumbing: SQLite pragmas and the district scope.

District scoping is one mechanism, here: every ORM statement executed while a
scope is set gets `with_loader_criteria` for each model that mixes in
`DistrictScoped`, so a coordinator of district A cannot load, list, update or
delete a row of district B through any view, API route or relationship. The
scope is set once per request by `accounts.auth`; CLI commands and jobs run
without a scope.
"""
import fcntl
import functools
import os
from contextlib import contextmanager
from datetime import timezone

import click
from flask import abort, g, has_app_context
from flask_babel import gettext as _
from sqlalchemy import DateTime, event, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, with_loader_criteria
from sqlalchemy.types import TypeDecorator

from core.extensions import db


class UTCDateTime(TypeDecorator):
    """A timezone-aware UTC timestamp on every database (SQLite hands back naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(timezone.utc)
        return value

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value


class DistrictScoped:
    """Mixin for models whose rows belong to one district.

    Models with a `district_key` column need nothing more; others override
    `scope_criteria` with an expression that reaches a district key.
    """

    @classmethod
    def scope_criteria(cls, district_keys):
        return cls.district_key.in_(district_keys)


def set_district_scope(district_keys):
    """Restrict this request to the given district keys (None: no restriction)."""
    g.district_scope = None if district_keys is None else frozenset(district_keys)


def current_district_scope():
    if not has_app_context():
        return None
    return g.get("district_scope")


def scoped_models():
    return [m.class_ for m in db.Model.registry.mappers if issubclass(m.class_, DistrictScoped)]


@event.listens_for(Session, "do_orm_execute")
def _restrict_to_district_scope(state):
    keys = current_district_scope()
    if keys is None:
        return
    if not (state.is_select or state.is_update or state.is_delete):
        return
    if state.is_column_load or state.is_relationship_load:
        return  # the criteria below already travel with the parent statement
    keys = sorted(keys)
    state.statement = state.statement.options(
        *(with_loader_criteria(model, model.scope_criteria(keys), include_aliases=True) for model in scoped_models())
    )


def load_or_404(model, **by):
    """Load one row through a real SELECT, so the district scope applies.

    `Session.get` may answer from the identity map without a query; a SELECT
    never does.
    """
    row = db.session.execute(select(model).filter_by(**by)).scalar_one_or_none()
    if row is None:
        abort(404)
    return row


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, connection_record):
    module = type(dbapi_connection).__module__
    if not module.startswith("sqlite3"):
        return
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    # In WAL mode NORMAL never corrupts; a power cut may lose the last commits.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


# {(pid, path): open lock file}. Per process: a file inherited across a fork
# shares its flock with the parent, so it would not make them take turns.
_writer_locks = {}


@contextmanager
def sqlite_write_turn(engine=None):
    """On a SQLite file, wait for this process's turn to write; elsewhere a no-op.

    SQLite lets one writer in at a time, and one that finds the database
    locked sleeps in its busy handler (1, 2, 5, 10 ms …) although a short
    write holds the lock for a tenth of a millisecond. Hot writers (the send
    jobs' per-mail records, the tracking pixel and redirect) therefore take
    turns through a blocking file lock beside the database instead: the
    kernel wakes the next one the moment the lock is free. Each write is
    still its own committed transaction inside the turn.
    """
    url = (engine or db.engine).url
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        yield
        return
    key = (os.getpid(), url.database)
    lock = _writer_locks.get(key)
    if lock is None:
        lock = _writer_locks[key] = open(f"{url.database}.writers.lock", "a+b")
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(lock, fcntl.LOCK_UN)


def apply_migrations():
    """Bring the schema up to date, as `flask serve` does at every start."""
    import flask_migrate

    try:
        flask_migrate.upgrade()
    except SystemExit:
        # Flask-Migrate has logged Alembic's message already and exits.
        raise click.ClickException(_("Die Datenbankmigration ist fehlgeschlagen (Meldung siehe oben).")) from None
    except Exception as exc:  # unreachable server, wrong credentials, broken file
        db.session.rollback()
        raise click.ClickException(
            _("Die Datenbankmigration ist fehlgeschlagen: %(error)s", error=getattr(exc, "orig", None) or exc)
        ) from None


def schema_is_current():
    """True when the database is at the newest migration (no logging, one query)."""
    from alembic.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from flask import current_app

    config = current_app.extensions["migrate"].migrate.get_config()
    heads = set(ScriptDirectory.from_config(config).get_heads())
    with db.engine.connect() as connection:
        return set(MigrationContext.configure(connection).get_current_heads()) == heads


def needs_schema(command):
    """For CLI commands: a newcomer may run them before `flask serve` ever did."""

    @functools.wraps(command)
    def wrapped(*args, **kwargs):
        if not schema_is_current():
            apply_migrations()
        return command(*args, **kwargs)

    return wrapped
