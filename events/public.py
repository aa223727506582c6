"""Public event pages: RSVP links, the registration page, office-hours booking, the calendar feed.

No login: the signed token in a link is the authority (`event-rsvp`,
`event-booking`). A GET from a link never changes anything, because mail
gateways fetch links to scan them; it shows the event and a button that
POSTs. The token POSTs take no session CSRF token, like the confirmation
link of the subscriber pages: the token is the proof, and the page may be
opened in a browser that has never seen our cookie.

Whatever a service refuses (`EventError`: cancelled, over, removed) is rolled
back and shown with its message; a bad link answers 404 and changes nothing.
"""
from flask import Blueprint, abort, current_app, render_template, request
from flask_babel import gettext as _
from sqlalchemy import select

from core.database import load_or_404, set_district_scope
from core.extensions import csrf, db, limiter
from core.forms import show_error
from core.tokens import InvalidToken, read_token
from core.urls import external_url, personal_link
from directory.models import District
from events import ical, services
from events.forms_public import RegisterForm
from events.jobs import enqueue_senders
from core.i18n import format_day, format_when
from events.models import Event, Registration, Slot
from subscribers import services as subscriber_services
from subscribers.models import Subscriber, utcnow
from subscribers.public import (
    HONEYPOT,
    address_limit,
    submitted_address,
    subscribe_limit,
)
from subscribers.services import SubscriberError

bp = Blueprint("events_public", __name__)


@bp.before_request
def _unscoped():
    # These pages serve anyone with the link or the district's address,
    # including staff signed in as coordinators of another district.
    set_district_scope(None)


@bp.context_processor
def _helpers():
    return {
        "when": lambda slot: format_when(slot.starts_at, slot.ends_at),
        "clock": lambda value: f"{services.local(value):%H:%M}",
    }


def _page(template, status=200, **context):
    return render_template(f"events/public/{template}.html", **context), status


def _token_page(template, status=200, **context):
    # A personal page: its route is a `personal_link` (no-store, no-referrer, error pages too).
    return _page(template, status, **context)


# --- reading links ----------------------------------------------------------------


def _payload(purpose, token):
    try:
        payload = read_token(purpose, token)
    except InvalidToken:
        payload = None
    if not isinstance(payload, dict):
        abort(404, _("Dieser Link ist ungültig. Bitte verwenden Sie den vollständigen Link aus Ihrer E-Mail."))
    return payload


def registration_from(token):
    """The registration an RSVP link is for; 404 for a bad link or a registration that is gone."""
    public_id = _payload("event-rsvp", token).get("r")
    registration = None
    if isinstance(public_id, str):
        registration = db.session.execute(
            select(Registration).where(Registration.public_id == public_id)
        ).scalar_one_or_none()
    if registration is None or not registration.email or registration.event.status == "draft":
        # An erased registration keeps no address; a draft has no public page, not even by link.
        abort(404, _("Zu diesem Link gibt es keine Anmeldung (mehr)."))
    return registration


def booking_from(token):
    """(office-hours event, subscriber) of a booking link; 404 for a bad link or when either is gone."""
    payload = _payload("event-booking", token)
    event_id, public_id = payload.get("e"), payload.get("s")
    event = subscriber = None
    if isinstance(event_id, int) and not isinstance(event_id, bool) and isinstance(public_id, str):
        event = db.session.execute(
            select(Event).where(Event.id == event_id, Event.kind == "office_hours")
        ).scalar_one_or_none()
        subscriber = db.session.execute(
            select(Subscriber).where(Subscriber.public_id == public_id)
        ).scalar_one_or_none()
    if (event is None or subscriber is None or subscriber.district_key != event.district_key
            or event.status == "draft"):
        abort(404, _("Zu diesem Link gibt es keine Sprechstunde (mehr)."))
    return event, subscriber


def closed_reason(event, registration=None):
    """Why no answer is possible now (the services' own message), or None."""
    try:
        services.check_open(event)
    except services.EventError as error:
        return str(error)
    if registration is not None:
        if registration.slot.cancelled:
            return _("Dieser Termin wurde abgesagt.")
        if registration.status == "removed":
            return _("Ihre Anmeldung wurde von der Koordination aufgehoben. Bitte wenden Sie sich an sie.")
    return None


# --- slots ---------------------------------------------------------------------------


def slot_days(event):
    """The office-hours slots still to come, by day: [(day, [{"slot", "free", "full"}])]."""
    counts = services.seat_counts(event)
    now = utcnow()
    days = []
    for slot in event.slots:
        if slot.cancelled or slot.starts_at <= now:
            continue
        confirmed = counts[slot.id]["confirmed"]
        free = None if slot.capacity is None else max(slot.capacity - confirmed, 0)
        entry = {"slot": slot, "free": free, "full": free == 0}
        day = format_day(slot.starts_at)
        if days and days[-1][0] == day:
            days[-1][1].append(entry)
        else:
            days.append((day, [entry]))
    return days


def _slot_ids(days):
    return [entry["slot"].id for _day, entries in days for entry in entries]


# --- RSVP ----------------------------------------------------------------------------------


@bp.route("/rsvp/<token>/<answer>", methods=["GET", "POST"])
@csrf.exempt  # the token is the proof (see the module docstring)
@personal_link
def rsvp(token, answer):
    if answer not in services.ANSWERS:
        abort(404)
    registration = registration_from(token)
    event = registration.event
    context = {"district": event.district, "event": event, "slot": registration.slot, "token": token,
               "answer": answer}
    if request.method == "GET":
        return _token_page("rsvp", registration=registration, closed=closed_reason(event, registration), **context)
    try:
        services.respond(registration, answer, via="link")
    except services.EventError as error:
        db.session.rollback()
        return _token_page("refused", 409, message=str(error), **context)
    db.session.commit()
    enqueue_senders(event.id)
    return _token_page("answered", registration=registration, **context)


# --- public registration ----------------------------------------------------------------------


def _public_event(key, id):
    """A published, public event of the district; 404 otherwise (a cancelled one is for the caller).

    A draft cancelled before it was ever published is no longer public
    (`services.cancel_event`), so it answers 404 here like any draft.
    """
    district = load_or_404(District, key=key)
    event = load_or_404(Event, id=id, district_key=district.key)
    if event.status == "draft" or not event.public:
        abort(404)
    return district, event


def mail_allowed(event, email):
    """Count one form-requested mail to this address (the subscription form's daily cap, shared with it)."""
    _address, email_key = subscriber_services.normalize_address(email)
    return subscriber_services.confirmation_mail_allowed(event.district_key, email_key)


@bp.route("/d/<key>/events/<int:id>/anmelden", methods=["GET", "POST"])
@csrf.exempt  # embeddable on municipal websites like the subscription form; honeypot and rate limits instead
@limiter.limit(subscribe_limit, methods=["POST"])
@limiter.limit(address_limit, methods=["POST"], key_func=submitted_address)
def register(key, id):
    district, event = _public_event(key, id)
    if event.status == "cancelled":
        return _page("cancelled", 410, district=district, event=event)
    if services.is_over(event):
        abort(404, _("Diese Veranstaltung hat bereits stattgefunden."))
    days = slot_days(event) if event.is_office_hours else []
    form = RegisterForm()
    form.fill_choices(district, _slot_ids(days))
    if request.method == "POST" and request.form.get(HONEYPOT):
        # A bot filled the invisible field: answer as if all went well.
        return _page("check_inbox", district=district, event=event)
    valid = form.validate_on_submit()
    if request.method == "POST":
        # Checked with the other fields, so that every mistake shows at once.
        try:
            slot = services.open_slot(event, form.slot.data)
        except services.EventError as error:
            show_error(form, error)
            valid = False
    if valid and not mail_allowed(event, form.email.data):
        # The form must not flood someone's inbox: beyond the daily cap it answers alike and sends nothing.
        return _page("check_inbox", district=district, event=event)
    if valid:
        try:
            services.request_invitation(event, slot, form.email.data, form.name.data, form.municipality.data)
        except (services.EventError, SubscriberError) as error:
            db.session.rollback()
            show_error(form, error)
        else:
            db.session.commit()
            enqueue_senders(event.id)
            # The same answer whether the address was known, registered or new.
            return _page("check_inbox", district=district, event=event)
    status = 400 if request.method == "POST" else 200
    return _page("register", status, district=district, event=event, form=form, days=days, honeypot=HONEYPOT)


# --- office-hours booking ------------------------------------------------------------------------


def _own_bookings(event, subscriber):
    return db.session.execute(
        select(Registration).join(Slot, Slot.id == Registration.slot_id)
        .where(Registration.event_id == event.id, Registration.email_key == subscriber.email_key,
               Registration.status.in_(("confirmed", "waiting")))
        .order_by(Slot.starts_at)
    ).scalars().all()


@bp.route("/book/<token>", methods=["GET", "POST"])
@csrf.exempt  # the token is the proof (see the module docstring)
@personal_link
def book(token):
    event, subscriber = booking_from(token)
    context = {"district": event.district, "event": event, "subscriber": subscriber, "token": token}
    closed = closed_reason(event)
    if closed is None and subscriber.status != "active":
        closed = _("Dieser Buchungslink ist nicht mehr gültig.")
    if request.method == "POST":
        try:
            slot = services.open_slot(event, request.form.get("slot"))
            registration = services.book(event, slot, subscriber)
        except services.EventError as error:
            db.session.rollback()
            if closed or error.field != "slot":
                return _token_page("refused", 409, message=closed or str(error), slot=None, **context)
            return _token_page("book", 422, error=str(error), closed=closed, days=slot_days(event),
                               bookings=_own_bookings(event, subscriber), **context)
        db.session.commit()
        enqueue_senders(event.id)
        return _token_page("booked", registration=registration, slot=registration.slot, **context)
    return _token_page("book", error=None, closed=closed, days=slot_days(event) if closed is None else [],
                       bookings=_own_bookings(event, subscriber), **context)


# --- list and feed ---------------------------------------------------------------------------------


def upcoming_events(district_key):
    """The district's published, public events with a slot still to end, by their next slot."""
    now = utcnow()
    events = db.session.execute(
        select(Event).where(
            Event.district_key == district_key, Event.status == "published", Event.public.is_(True),
            select(Slot.id).where(Slot.event_id == Event.id, Slot.ends_at > now).exists(),
        ).order_by(Event.starts_at, Event.id)
    ).scalars().all()
    return sorted(events, key=lambda e: min(s.starts_at for s in e.slots if s.ends_at > now))


@bp.get("/d/<key>/events.ics")
def feed(key):
    district = load_or_404(District, key=key)
    body = ical.feed(district, upcoming_events(district.key))
    response = current_app.response_class(body, content_type="text/calendar; charset=utf-8")
    response.headers["Content-Disposition"] = f'inline; filename="veranstaltungen-{district.key}.ics"'
    response.headers["Cache-Control"] = "public, max-age=900"
    return response


def webcal_url(district_key):
    """The district's feed as a webcal:// link: calendar apps subscribe to it instead of importing it once."""
    url = external_url("events_public.feed", key=district_key)
    return "webcal://" + url.split("://", 1)[1]


@bp.get("/d/<key>/veranstaltungen")
def upcoming(key):
    district = load_or_404(District, key=key)
    items = []
    for event in upcoming_events(district.key):
        entries = [entry for _day, day_entries in slot_days(event) for entry in day_entries]
        items.append({
            "event": event,
            "next_free": next((entry["slot"] for entry in entries if not entry["full"]), None),
            "free_slots": sum(1 for entry in entries if not entry["full"]),
            "seats": entries[0] if entries and not event.is_office_hours else None,
        })
    return _page("upcoming", district=district, items=items, webcal=webcal_url(district.key),
                 feed=external_url("events_public.feed", key=district.key))
