"""API: events of the caller's districts: create, change, invite, cancel, registrations and attendance.

Errors: 422 for an invalid value (`errors` names the field), 409 when the
event's state does not allow the action (changing or cancelling a cancelled
event, inviting to a past one), 404 for another district's event or
registration (before the body is looked at), 403 for viewers.
"""
from flask import request, url_for
from flask.views import MethodView
from flask_smorest import abort
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from accounts.auth import editor_required, personal_data_required, principal
from core.api import Blueprint, paginated, require_token
from core.database import load_or_404
from core.extensions import db
from directory.models import District
from events import jobs, services
from events.models import Event, Registration, Slot
from events.schemas import (
    AttendanceSchema,
    CancelResultSchema,
    EventChangedSchema,
    EventCreateSchema,
    EventDetailSchema,
    EventQueryArgsSchema,
    EventSchema,
    EventUpdateSchema,
    InviteResultSchema,
    RegistrationQueryArgsSchema,
    RegistrationSchema,
)
from events.services import EventError
from subscribers import services as subscriber_services

blp = Blueprint(
    "events_api", __name__, url_prefix="/api/v1",
    description="Veranstaltungen: Workshops und Sprechstunden anlegen, ändern, einladen, absagen; "
                "Anmeldungen und Teilnahme",
)
blp.before_request(require_token)

FORBIDDEN = {"response": "DEFAULT_ERROR", "description": "Nur Administration und Koordination"}
NO_DISTRICT = {"response": "DEFAULT_ERROR", "description": "Kreis unbekannt oder nicht freigegeben"}
NOT_FOUND = {"response": "DEFAULT_ERROR", "description": "Unbekannt oder aus einem nicht freigegebenen Kreis"}
CONFLICT = {"response": "DEFAULT_ERROR", "description": "Im jetzigen Zustand der Veranstaltung nicht möglich"}


@blp.before_request
def _district_first():
    # Another district's key, event or registration answers 404 before the body is validated (422).
    args = request.view_args or {}
    if "key" in args:
        load_or_404(District, key=args["key"])
    if "id" in args:
        is_registration = request.url_rule.rule.startswith(blp.url_prefix + "/registrations/")
        load_or_404(Registration if is_registration else Event, id=args["id"])


def _refuse(error):
    """Answer a broken rule, having changed nothing: 422 naming the field, or 409 for the event's state."""
    db.session.rollback()
    field = getattr(error, "field", None)
    if field is None:
        abort(409, message=str(error))
    abort(422, message=str(error), errors={"json": {field: [str(error)]}})



# --- the body as the services' EventData ------------------------------------------------------------


def _topics(district_key, names):
    try:
        return subscriber_services.topics_by_name(district_key, names)
    except subscriber_services.SubscriberError as error:
        raise EventError(str(error), "topics") from error


def _municipalities(district_key, codes):
    try:
        found = [subscriber_services.municipality_in(district_key, ags) for ags in codes]
    except subscriber_services.SubscriberError as error:
        raise EventError(str(error), "municipalities") from error
    return list({m.ags: m for m in found}.values())


def _apply(data, district_key, body):
    """Set the fields sent in `body` on `data` (an EventData); naive times are Europe/Berlin wall-clock."""
    for name in ("kind", "title", "description", "location", "online_url", "rrule", "slot_minutes", "capacity",
                 "public", "reminder_hours"):
        if name in body:
            setattr(data, name, body[name])
    for name in ("starts_at", "ends_at"):
        if name in body:
            setattr(data, name, services.from_local(body[name]))
    if "topics" in body:
        data.topics = _topics(district_key, body["topics"])
    if "municipalities" in body:
        data.municipalities = _municipalities(district_key, body["municipalities"])
    return data


# --- events ---------------------------------------------------------------------------------------------


@blp.route("/districts/<string:key>/events")
class DistrictEvents(MethodView):
    @blp.arguments(EventQueryArgsSchema, location="query")
    @blp.alt_response(404, **NO_DISTRICT)
    @blp.response(200, EventSchema(many=True))
    @blp.paginate()
    def get(self, args, key, pagination_parameters):
        """Die Veranstaltungen eines Kreises, die spätesten zuerst.

        Seitenweise mit `page` (ab 1) und `page_size` (Vorgabe 10, höchstens
        100); Gesamtzahl und Seiten stehen im Header `X-Pagination`. Filter:
        `status`, `kind`. Die Termine mit ihren Platzzahlen stehen in
        `GET /events/{id}`.
        """
        district = load_or_404(District, key=key)
        query = select(Event).where(Event.district_key == district.key)
        for name in ("status", "kind"):
            if args.get(name):
                query = query.where(getattr(Event, name) == args[name])
        return paginated(query.order_by(Event.starts_at.desc(), Event.id.desc()), pagination_parameters)

    @editor_required
    @blp.arguments(EventCreateSchema)
    @blp.alt_response(403, **FORBIDDEN)
    @blp.alt_response(404, **NO_DISTRICT)
    @blp.response(201, EventDetailSchema)
    def post(self, body, key):
        """Einen Workshop oder eine Sprechstunde als Entwurf anlegen.

        Ein Workshop hat einen Termin (`starts_at`–`ends_at`). Eine
        Sprechstunde wiederholt den ersten Termin nach `rrule` und teilt jeden
        in buchbare Termine von `slot_minutes` Minuten. Eingeladen wird mit
        `POST /events/{id}/invite`; das veröffentlicht den Entwurf.
        """
        district = load_or_404(District, key=key)
        try:
            data = _apply(services.EventData(), district.key, body)
            event = services.create_event(district.key, data, created_by=principal())
        except EventError as error:
            _refuse(error)
        db.session.commit()
        return event, {"Location": url_for("events_api.event", id=event.id)}


@blp.route("/events/<int:id>", endpoint="event")
class EventResource(MethodView):
    @blp.alt_response(404, **NOT_FOUND)
    @blp.response(200, EventDetailSchema)
    def get(self, id):
        """Eine Veranstaltung mit ihren Terminen und deren Platzzahlen."""
        return load_or_404(Event, id=id)

    @editor_required
    @blp.arguments(EventUpdateSchema)
    @blp.alt_response(403, **FORBIDDEN)
    @blp.alt_response(404, **NOT_FOUND)
    @blp.alt_response(409, response="DEFAULT_ERROR", description="Die Veranstaltung ist abgesagt")
    @blp.response(200, EventChangedSchema)
    def patch(self, body, id):
        """Eine Veranstaltung ändern; nur gesendete Felder ändern sich.

        Ändern sich Titel, Zeit, Ort oder Link, erhalten alle Eingeladenen
        und Angemeldeten den Kalendereintrag mit derselben UID und SEQUENCE + 1
        (`notified` nennt, wie viele). Die Zeiten einer Sprechstunde mit
        Buchungen bleiben fest (422). Eine abgesagte Veranstaltung ändert sich
        nicht mehr (409), auch nicht mit ungültigen Angaben.
        """
        event = load_or_404(Event, id=id)
        try:
            if event.status == "cancelled":
                # The state first: a cancelled event refuses any change, valid or not.
                services.update_event(event, services.event_data(event))
            data = _apply(services.event_data(event), event.district_key, body)
            notified = services.update_event(event, data)
            if body.get("status") == "published":
                services.publish(event)
        except EventError as error:
            _refuse(error)
        db.session.commit()
        jobs.enqueue_senders(event.id)  # updates, and promotions from added seats
        event.notified = notified
        return event


@blp.route("/events/<int:id>/invite")
class Invite(MethodView):
    @editor_required
    @blp.alt_response(403, **FORBIDDEN)
    @blp.alt_response(404, **NOT_FOUND)
    @blp.alt_response(409, **CONFLICT)
    @blp.response(200, InviteResultSchema)
    def post(self, id):
        """Die Zielgruppe einladen (aktive Abonnements des Kreises nach Themen und Gemeinden).

        Veröffentlicht einen Entwurf. Ein Workshop lädt mit Kalendereintrag
        (iMIP REQUEST) ein, eine Sprechstunde mit einem Buchungslink. Kann
        wiederholt werden: nur wer noch keine Einladung hat, erhält eine
        (etwa neue Abonnements); `invited` nennt, wie viele.
        """
        event = load_or_404(Event, id=id)
        try:
            invited = services.invite(event)
        except EventError as error:
            _refuse(error)
        db.session.commit()
        jobs.enqueue_senders(event.id)
        return {"invited": invited}


@blp.route("/events/<int:id>/cancel")
class Cancel(MethodView):
    @editor_required
    @blp.alt_response(403, **FORBIDDEN)
    @blp.alt_response(404, **NOT_FOUND)
    @blp.alt_response(409, response="DEFAULT_ERROR", description="Bereits abgesagt")
    @blp.response(200, CancelResultSchema)
    def post(self, id):
        """Die Veranstaltung endgültig absagen.

        Alle Eingeladenen und Angemeldeten erhalten METHOD:CANCEL mit
        SEQUENCE + 1; ihr Kalender entfernt den Eintrag.
        """
        event = load_or_404(Event, id=id)
        try:
            notified = services.cancel_event(event)
        except EventError as error:
            _refuse(error)
        db.session.commit()
        jobs.enqueue_senders(event.id)
        return {"notified": notified}


# --- registrations -------------------------------------------------------------------------------------


@blp.route("/events/<int:id>/registrations")
class EventRegistrations(MethodView):
    @personal_data_required
    @blp.arguments(RegistrationQueryArgsSchema, location="query")
    @blp.alt_response(403, **FORBIDDEN)
    @blp.alt_response(404, **NOT_FOUND)
    @blp.response(200, RegistrationSchema(many=True))
    @blp.paginate()
    def get(self, args, id, pagination_parameters):
        """Die Einladungen und Anmeldungen einer Veranstaltung, nach Termin und Eingang.

        Seitenweise wie die anderen Listen (Header `X-Pagination`). Filter:
        `status`, `slot_id` (Check-in-Liste eines Termins).
        """
        event = load_or_404(Event, id=id)
        query = (
            select(Registration).join(Slot, Slot.id == Registration.slot_id)
            .where(Registration.event_id == event.id).options(selectinload(Registration.slot))
        )
        if args.get("status"):
            query = query.where(Registration.status == args["status"])
        if args.get("slot_id") is not None:
            query = query.where(Registration.slot_id == args["slot_id"])
        return paginated(query.order_by(Slot.starts_at, Registration.id), pagination_parameters)


@blp.route("/registrations/<int:id>", endpoint="registration")
class RegistrationResource(MethodView):
    @personal_data_required
    @blp.alt_response(403, **FORBIDDEN)
    @blp.alt_response(404, **NOT_FOUND)
    @blp.response(200, RegistrationSchema)
    def get(self, id):
        """Eine Einladung oder Anmeldung."""
        return load_or_404(Registration, id=id)

    @editor_required
    @blp.arguments(AttendanceSchema)
    @blp.alt_response(403, **FORBIDDEN)
    @blp.alt_response(404, **NOT_FOUND)
    @blp.response(200, RegistrationSchema)
    def patch(self, body, id):
        """Die Teilnahme erfassen: `attended`, `no_show` oder `null` (nicht erfasst).

        Erst ab 12 Stunden vor Beginn des Termins und nicht für abgesagte
        Anmeldungen (422).
        """
        registration = load_or_404(Registration, id=id)
        try:
            services.set_attendance(registration, body["attendance"])
        except EventError as error:
            _refuse(error)
        db.session.commit()
        return registration
