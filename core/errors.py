"""Error pages: JSON under /api/, accessible HTML elsewhere, never a bare 500."""
import logging

from flask import jsonify, render_template, request
from flask_babel import gettext as _
from werkzeug.exceptions import HTTPException, InternalServerError

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


def _handle_unexpected(error):
    log.exception("unhandled error on %s %s", request.method, request.path)
    db.session.rollback()
    return _handle_http_exception(InternalServerError())


def init_app(app):
    app.register_error_handler(HTTPException, _handle_http_exception)
    if not app.testing:
        # In tests an unexpected exception should fail the test loudly.
        app.register_error_handler(Exception, _handle_unexpected)
