"""The JSON API under /api/v1 and its OpenAPI document at /api/openapi.json."""
from flask import abort
from flask_babel import gettext as _

from accounts.auth import principal
from app import api, csrf

BEARER = {"bearerAuth": {"type": "http", "scheme": "bearer", "description": "API-Token aus `flask users token EMAIL`"}}


def require_token():
    """Every API blueprint registers this: a valid bearer token is required."""
    if principal() is None:
        abort(401, _("Gültiges API-Token im Header 'Authorization: Bearer …' erforderlich."))


def api_blueprints():
    from newsletter.api import blp as newsletters  # issue 4
    from events.api import blp as events  # issue 5
    from subscribers.api import blp as districts

    return [districts, newsletters, events]


def register_api(app):
    app.config.setdefault(
        "API_SPEC_OPTIONS",
        {
            "components": {"securitySchemes": BEARER},
            "security": [{"bearerAuth": []}],
            "info": {"description": "Kreise, Gemeinden, Abonnentenlisten, Newsletter und Veranstaltungen."},
        },
    )
    api.init_app(app)
    for blueprint in api_blueprints():
        api.register_blueprint(blueprint)
        csrf.exempt(blueprint)
