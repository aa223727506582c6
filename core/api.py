"""The JSON API under /api/v1 and its OpenAPI document at /api/openapi.json.

Every API blueprint is a `core.api.Blueprint`, and every id or page number in
a schema is an `Id`/`PageNumber`: numbers beyond the database's integer range
(`core.paging.MAX_INT`) are refused with 422 before they reach a query.
"""
import flask_smorest
from flask import abort
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from marshmallow import fields, validate
from sqlalchemy import func, select

from accounts.auth import principal
from core.extensions import api, csrf, db
from core.paging import MAX_INT, IntegerConverter

BEARER = {"bearerAuth": {"type": "http", "scheme": "bearer", "description": "API-Token aus `flask users token EMAIL`"}}


class Id(fields.Integer):
    """A row id in a request or an answer: 1 … MAX_INT, documented so in the OpenAPI schema."""

    def __init__(self, **kwargs):
        kwargs["validate"] = [validate.Range(min=1, max=MAX_INT, error=_l("Keine gültige Nummer (1 bis {max}).")),
                              *_as_list(kwargs.get("validate"))]
        super().__init__(**kwargs)


class PageNumber(Id):
    """A page number (from 1); a page beyond MAX_INT cannot exist and would overflow the OFFSET."""


def _as_list(validators):
    if validators is None:
        return []
    return list(validators) if isinstance(validators, (list, tuple)) else [validators]


class Blueprint(flask_smorest.Blueprint):
    """flask-smorest's blueprint whose `@paginate()` takes `page` as a `PageNumber`."""

    def paginate(self, pager=None, **kwargs):
        decorate = super().paginate(pager, **kwargs)

        def decorator(func):
            wrapper = decorate(func)
            # flask-smorest builds one parameter schema class per endpoint and uses
            # it both to parse the query and to document it: bounding its `page`
            # field bounds both.
            schema = wrapper._apidoc["pagination"]["parameters"]["schema"]
            default = schema._declared_fields["page"].load_default
            schema._declared_fields["page"] = PageNumber(load_default=default)
            return wrapper

        return decorator


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


def _id_parameter(converter):
    """The OpenAPI schema of an `<int:…>` path parameter: in the API every one is a row id."""
    return {"type": "integer", "minimum": 1 if converter.min is None else converter.min, "maximum": converter.max}


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
    api.register_converter(IntegerConverter, _id_parameter)
    for blueprint in api_blueprints():
        api.register_blueprint(blueprint)
        csrf.exempt(blueprint)
