"""API: logged contacts (Kontakte) of the caller's districts: list, create, change, delete.

Errors: 422 for an invalid value (`errors` names the field), 404 for another
district's key or contact (before the body is looked at) and for ids no
database holds, 403 for viewers, who see reach only as aggregates.
"""
from flask import request, url_for
from flask.views import MethodView
from flask_smorest import abort

from accounts.auth import editor_required, principal
from core.api import Blueprint, paginated, require_token
from core.database import load_or_404
from core.extensions import db
from directory.models import District
from events.api import (  # the same answers, described once
    FORBIDDEN,
    NO_DISTRICT,
    NOT_FOUND,
)
from reach import contacts
from reach.contact_schemas import (
    ContactCreateSchema,
    ContactQueryArgsSchema,
    ContactSchema,
    ContactUpdateSchema,
)
from reach.contacts import ContactError, ContactFilter
from reach.models import Contact

blp = Blueprint(
    "contacts_api", __name__, url_prefix="/api/v1",
    description="Kontakte: Arbeit der Koordination außerhalb des Mailversands (Vor-Ort-Termine, Telefonate, "
                "Videokonferenzen …); sie zählen für die Reichweite als „kontaktiert“",
)
blp.before_request(require_token)

def _contact_or_404(id):
    return load_or_404(Contact, id=id)


@blp.before_request
def _district_first():
    # Another district's key or contact answers 404 before the body is validated (422).
    args = request.view_args or {}
    if "key" in args:
        load_or_404(District, key=args["key"])
    if "id" in args:
        _contact_or_404(args["id"])


def _refuse(error, location="json"):
    """Answer a broken rule with 422 naming the field, having changed nothing."""
    db.session.rollback()
    abort(422, message=str(error), errors={location: {error.field or "_schema": [str(error)]}})


def _data(district_key, body):
    """The body as the services' `data`: topics by name become topic ids."""
    data = dict(body)
    if "topics" in body:
        data["topics"] = contacts.topic_ids_by_name(district_key, body["topics"])
    return data


def _filters(district_key, args):
    """The query's filters; an unknown municipality, kind or topic is an error named by its parameter."""
    choices = contacts.DistrictChoices(district_key)
    checks = {
        "municipality": lambda value: choices.clean_municipalities([value])[0].ags,
        "kind": contacts.clean_kind,
        "topic": lambda value: (contacts.topic_ids_by_name(district_key, [value]) or [None])[0],
    }
    chosen = {}
    for name, check in checks.items():
        if (args.get(name) or "").strip():
            try:
                chosen[name] = check(args[name].strip())
            except ContactError as error:
                raise ContactError(str(error), field=name) from None
    return ContactFilter(date_from=args.get("date_from"), date_to=args.get("date_to"), **chosen)


@blp.route("/districts/<string:key>/contacts")
class DistrictContacts(MethodView):
    @editor_required
    @blp.arguments(ContactQueryArgsSchema, location="query")
    @blp.alt_response(403, **FORBIDDEN)
    @blp.alt_response(404, **NO_DISTRICT)
    @blp.response(200, ContactSchema(many=True))
    @blp.paginate()
    def get(self, args, key, pagination_parameters):
        """Die Kontakte eines Kreises, die neuesten zuerst.

        Seitenweise mit `page` (ab 1) und `page_size` (Vorgabe 10, höchstens
        100); Gesamtzahl und Seiten stehen im Header `X-Pagination`. Filter:
        `from`, `to` (Tage, einschließlich), `municipality` (AGS), `kind`,
        `topic` (Name); ein unbekannter Filterwert ergibt 422.
        """
        district = load_or_404(District, key=key)
        try:
            filters = _filters(district.key, args)
        except ContactError as error:
            _refuse(error, location="query")
        return paginated(contacts.contact_query(district.key, filters), pagination_parameters)

    @editor_required
    @blp.arguments(ContactCreateSchema)
    @blp.alt_response(403, **FORBIDDEN)
    @blp.alt_response(404, **NO_DISTRICT)
    @blp.response(201, ContactSchema)
    def post(self, body, key):
        """Einen Kontakt erfassen: Tag, Art, Gemeinden, Themen und eine kurze Notiz ohne personenbezogene Daten."""
        district = load_or_404(District, key=key)
        try:
            contact = contacts.create_contact(district.key, _data(district.key, body), created_by=principal())
        except ContactError as error:
            _refuse(error)
        db.session.commit()
        return contact, {"Location": url_for("contacts_api.contact", id=contact.id)}


@blp.route("/contacts/<int:id>", endpoint="contact")
class ContactResource(MethodView):
    @editor_required
    @blp.alt_response(403, **FORBIDDEN)
    @blp.alt_response(404, **NOT_FOUND)
    @blp.response(200, ContactSchema)
    def get(self, id):
        """Ein Kontakt."""
        return _contact_or_404(id)

    @editor_required
    @blp.arguments(ContactUpdateSchema)
    @blp.alt_response(403, **FORBIDDEN)
    @blp.alt_response(404, **NOT_FOUND)
    @blp.response(200, ContactSchema)
    def patch(self, body, id):
        """Einen Kontakt ändern; nur gesendete Felder ändern sich, geprüft wird der ganze Kontakt."""
        contact = _contact_or_404(id)
        try:
            contacts.update_contact(contact, _data(contact.district_key, body))
        except ContactError as error:
            _refuse(error)
        db.session.commit()
        return contact

    @editor_required
    @blp.alt_response(403, **FORBIDDEN)
    @blp.alt_response(404, **NOT_FOUND)
    @blp.response(204)
    def delete(self, id):
        """Einen Kontakt löschen; er zählt danach nicht mehr für die Reichweite."""
        contacts.delete_contact(_contact_or_404(id))
        db.session.commit()
