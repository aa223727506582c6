"""API: districts, their municipalities and subscriber lists (the caller's districts; lists not for viewers)."""
from flask import request, url_for
from flask.views import MethodView
from flask_smorest import abort

from accounts.auth import editor_required, personal_data_required
from core.api import Blueprint, paginated, require_token
from core.database import load_or_404
from core.extensions import db
from directory import services as directory_services
from directory.models import District
from subscribers import consent, jobs, privacy, services
from subscribers.models import Subscriber
from subscribers.schemas import (
    DistrictSchema,
    MunicipalitySchema,
    SubscriberCreateSchema,
    SubscriberQueryArgsSchema,
    SubscriberSchema,
    SubscriberUpdateSchema,
)
from subscribers.services import SubscriberError, SubscriberFilter

blp = Blueprint(
    "districts_api", __name__, url_prefix="/api/v1", description="Kreise, Gemeinden und ihre Abonnentenlisten"
)
blp.before_request(require_token)


@blp.before_request
def _district_first():
    # Another district's key answers 404 before the body is validated (422).
    if request.view_args and "key" in request.view_args:
        load_or_404(District, key=request.view_args["key"])


@blp.route("/districts")
class Districts(MethodView):
    @blp.response(200, DistrictSchema(many=True))
    def get(self):
        """Die Kreise, die der Aufrufer sehen darf."""
        return directory_services.districts_with_counts()


@blp.route("/districts/<string:key>/municipalities")
class Municipalities(MethodView):
    @blp.alt_response(404, response="DEFAULT_ERROR", description="Kreis unbekannt oder nicht freigegeben")
    @blp.response(200, MunicipalitySchema(many=True))
    def get(self, key):
        """Die Gemeinden eines Kreises."""
        district = load_or_404(District, key=key)
        return district.municipalities


# --- subscribers -----------------------------------------------------------------


def _refuse(error, district_key, email=None, location="json"):
    """Answer a broken rule, having changed nothing.

    A taken or suppressed address is a conflict with the list's state (409);
    anything else is an invalid value (422). The field is named in `errors`.
    """
    db.session.rollback()
    status = 409 if _is_conflict(error, district_key, email) else 422
    abort(status, message=str(error), errors={location: {error.field or "_schema": [str(error)]}})


def _is_conflict(error, district_key, email):
    if error.field != "email" or email is None:
        return False
    try:
        _, key = services.normalize_address(email)
    except SubscriberError:
        return False
    return (services.find_subscriber(district_key, key) is not None
            or services.suppression_reason(district_key, key) is not None)


def _filters(district_key, args):
    topic_id = None
    topic = (args.get("topic") or "").strip()  # a blank topic is no filter, like an absent one
    if topic:
        try:
            topic_id = services.topics_by_name(district_key, [topic])[0].id
        except SubscriberError as error:
            raise SubscriberError(str(error), field="topic") from error  # the query parameter's name
    if args.get("municipality"):
        services.municipality_in(district_key, args["municipality"])
    return SubscriberFilter(
        status=args.get("status"), municipality=args.get("municipality"), topic=topic_id, search=args.get("q")
    )



@blp.route("/districts/<string:key>/subscribers")
class DistrictSubscribers(MethodView):
    @personal_data_required
    @blp.arguments(SubscriberQueryArgsSchema, location="query")
    @blp.alt_response(403, response="DEFAULT_ERROR", description="Nur Administration und Koordination")
    @blp.alt_response(404, response="DEFAULT_ERROR", description="Kreis unbekannt oder nicht freigegeben")
    @blp.response(200, SubscriberSchema(many=True))
    @blp.paginate()
    def get(self, args, key, pagination_parameters):
        """Die Abonnentinnen und Abonnenten eines Kreises, nach Adresse sortiert.

        Seitenweise mit `page` (ab 1) und `page_size` (Vorgabe 10, höchstens 100);
        Gesamtzahl und Seiten stehen im Header `X-Pagination`. Die Filter
        lassen sich kombinieren; ein unbekannter Filterwert ergibt 422.
        """
        district = load_or_404(District, key=key)
        try:
            filters = _filters(district.key, args)
        except SubscriberError as error:
            _refuse(error, district.key, location="query")
        return paginated(services.subscriber_query(district.key, filters), pagination_parameters)

    @editor_required
    @blp.arguments(SubscriberCreateSchema)
    @blp.alt_response(403, response="DEFAULT_ERROR", description="Nur Administration und Koordination")
    @blp.alt_response(404, response="DEFAULT_ERROR", description="Kreis unbekannt oder nicht freigegeben")
    @blp.alt_response(409, response="DEFAULT_ERROR", description="Adresse bereits in der Liste oder gesperrt")
    @blp.response(201, SubscriberSchema)
    def post(self, data, key):
        """Eine Person aufnehmen.

        Mit `double_opt_in: true` ist sie `pending` und erhält eine
        Bestätigungsmail; das geht auch für eine gesperrte Adresse, denn
        erst die Bestätigung hebt die Sperre auf. Ohne Double-Opt-in nennt
        der Aufrufer die Herkunft der Einwilligung (`consent_source`), und
        die Person ist sofort `active`, außer ihre Adresse ist gesperrt (409).
        """
        district = load_or_404(District, key=key)
        double_opt_in = data["double_opt_in"]
        if double_opt_in:
            source = data.get("consent_source", "api")
            version = data["consent_text_version"] or consent.current_consent_version()
        else:
            source, version = data["consent_source"], data["consent_text_version"]
        try:
            topics = services.topics_by_name(district.key, data["topics"])
            subscriber = services.add_subscriber(
                district, data["email"], data["name"], data["municipality"], topics=topics,
                department=data["department"], source=source, double_opt_in=double_opt_in, consent_version=version,
            )
        except SubscriberError as error:
            _refuse(error, district.key, data["email"])
        db.session.commit()
        if double_opt_in:
            jobs.enqueue_subscription_mail(subscriber)
        return subscriber, {"Location": url_for("districts_api.subscriber", id=subscriber.id)}


@blp.route("/subscribers/<int:id>", endpoint="subscriber")
class SubscriberResource(MethodView):
    @personal_data_required
    @blp.alt_response(403, response="DEFAULT_ERROR", description="Nur Administration und Koordination")
    @blp.alt_response(404, response="DEFAULT_ERROR", description="Unbekannt oder aus einem nicht freigegebenen Kreis")
    @blp.response(200, SubscriberSchema)
    def get(self, id):
        """Eine Person der Liste."""
        return load_or_404(Subscriber, id=id)

    @editor_required
    @blp.arguments(SubscriberUpdateSchema)
    @blp.alt_response(403, response="DEFAULT_ERROR", description="Nur Administration und Koordination")
    @blp.alt_response(404, response="DEFAULT_ERROR", description="Unbekannt oder aus einem nicht freigegebenen Kreis")
    @blp.alt_response(409, response="DEFAULT_ERROR", description="Neue Adresse bereits in der Liste oder gesperrt")
    @blp.response(200, SubscriberSchema)
    def patch(self, data, id):
        """Angaben berichtigen oder die Person abmelden; nur gesendete Felder ändern sich."""
        subscriber = load_or_404(Subscriber, id=id)
        district_key = subscriber.district_key
        try:
            topics = services.topics_by_name(district_key, data["topics"]) if "topics" in data else None
            services.change_subscriber(
                subscriber, email=data.get("email"), name=data.get("name"), ags=data.get("municipality"),
                topics=topics, department=data.get("department"), status=data.get("status"),
            )
        except SubscriberError as error:
            _refuse(error, district_key, data.get("email"))
        db.session.commit()
        return subscriber

    @editor_required
    @blp.alt_response(403, response="DEFAULT_ERROR", description="Nur Administration und Koordination")
    @blp.alt_response(404, response="DEFAULT_ERROR", description="Unbekannt oder aus einem nicht freigegebenen Kreis")
    @blp.response(204)
    def delete(self, id):
        """Die Person löschen (Recht auf Löschung).

        Alle Daten der Person werden gelöscht oder anonymisiert; nur ein
        mit Schlüssel gebildeter Hashwert (HMAC) der Adresse bleibt auf der
        Sperrliste des Kreises, damit ein späterer Import sie nicht wieder
        aufnimmt.
        """
        privacy.erase_subscriber(load_or_404(Subscriber, id=id))
        db.session.commit()
