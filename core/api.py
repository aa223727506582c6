"""The JSON API under /api/v1 and its OpenAPI document at /api/openapi.json."""
from flask import abort
from flask_babel import gettext as _
from sqlalchemy import func, select

from accounts.auth import principal
from core.extensions import api, csrf, db

BEARER = {"bearerAuth": {"type": "http", "scheme": "bearer", "description": "API-Token aus `flask users token EMAIL`"}}


def require_token():
    """Every API blueprint registers this: a valid bearer token is required."""
    if principal() is None:
        abort(401, _("Gültiges API-Token im Header 'Authorization: Bearer …' erforderlich."))


def paginated(query, pagination):
    """One page of `query`'s rows for flask-smorest's `@paginate()`, which gets the total count."""
    pagination.item_count = db.session.execute(
        select(func.count()).select_from(query.order_by(None).subquery())
    ).scalar_one()
    return db.session.execute(query.offset(pagination.first_item).limit(pagination.page_size)).scalars().all()


def api_blueprints():
    from events.api import blp as events  # issue 5
    from newsletter.api import blp as newsletters  # issue 4
    from reach.api import blp as reach
    from reach.contacts_api import blp as contacts
    from subscribers.api import blp as districts

    return [districts, newsletters, events, contacts, reach]


def register_api(app):
    app.config.setdefault(
        "API_SPEC_OPTIONS",
        {
            "components": {"securitySchemes": BEARER},
            "security": [{"bearerAuth": []}],
            "info": {"description": "Kreise, Gemeinden, Abonnentenlisten, Newsletter, Veranstaltungen, Kontakte und Reichweite."},
        },
    )
    api.init_app(app)
    for blueprint in api_blueprints():
        api.register_blueprint(blueprint)
        csrf.exempt(blueprint)
