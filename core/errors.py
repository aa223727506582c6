"""Error pages: JSON under /api/, accessible HTML elsewhere, never a bare 500.

A row deleted by another request while this one works on it (a PATCH racing
a DELETE) surfaces in SQLAlchemy as `ObjectDeletedError` (reading an expired
attribute) or `StaleDataError` (the UPDATE matched no row). For the client the
row is gone: 404, on every route, with the transaction rolled back.

Text with a NUL character is refused before any view runs (PostgreSQL
cannot hold it), and request bodies are capped (`MAX_CONTENT_LENGTH`, 413).
"""
import logging

from flask import abort, jsonify, render_template, request
from flask_babel import gettext as _
from sqlalchemy.orm.exc import ObjectDeletedError, StaleDataError
from werkzeug.exceptions import HTTPException, InternalServerError, NotFound

from core.extensions import api, db

log = logging.getLogger(__name__)


def _api_error(error):
    payload, code, headers = api.handle_http_exception(error)
    if code == 422 and "message" not in payload:
        # Werkzeug's own text is English; the details are under "errors".
        payload["message"] = _("Die Anfrage enthält ungültige Angaben; Einzelheiten stehen unter „errors“.")
    payload.setdefault("message", error.description)
    return jsonify(payload), code, headers


def _handle_http_exception(error):
    if request.path.startswith("/api/"):
        return _api_error(error)
    return render_template("core/error.html", error=error), error.code


def _handle_vanished_row(error):
    log.info("row deleted concurrently on %s %s: %s", request.method, request.path, error)
    db.session.rollback()
    return _handle_http_exception(NotFound(_("Der Eintrag ist inzwischen gelöscht worden.")))


def _handle_unexpected(error):
    log.exception("unhandled error on %s %s", request.method, request.path)
    db.session.rollback()
    return _handle_http_exception(InternalServerError())


def _refuse_nul_characters():
    """No text with a NUL character reaches a view: PostgreSQL cannot store or even compare one.

    No key, token, name or address of this service contains one, so such a
    request is malformed: 404 when it is in the path, 400 elsewhere. File
    uploads are left alone (their bytes are not text fields).
    """
    if "\x00" in request.path:
        abort(404)
    if b"%00" in request.query_string:
        found = True
    elif request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        found = any("\x00" in f"{name}{value}" for name, value in request.form.items(multi=True))
    else:
        found = request.is_json and b"\\u0000" in request.get_data().lower()  # JSON writes a NUL as \u0000
    if found:
        abort(400, _("Die Anfrage enthält ein unzulässiges Zeichen (NUL)."))


# Request bodies beyond this answer 413 before a view reads them; it is above
# the largest upload a view accepts (5 MB CSV), whose own check explains itself.
MAX_CONTENT_LENGTH = 16 * 1024 * 1024


def init_app(app):
    app.config.setdefault("MAX_CONTENT_LENGTH", MAX_CONTENT_LENGTH)
    app.before_request(_refuse_nul_characters)
    app.register_error_handler(HTTPException, _handle_http_exception)
    app.register_error_handler(ObjectDeletedError, _handle_vanished_row)
    app.register_error_handler(StaleDataError, _handle_vanished_row)
    if not app.testing:
        # In tests an unexpected exception should fail the test loudly.
        app.register_error_handler(Exception, _handle_unexpected)
