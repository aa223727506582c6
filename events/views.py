"""Coordinator pages for events: list, new/edit, detail with registrations,
publish, invite, cancel, remove a registration, check-in and the CSV export.

Every page loads its district with `load_or_404` and an event by id *and*
district key (a registration by id, event and district), so another
district's rows answer 404. Viewers see events with their seat and reach
figures; the registrations (list, check-in, CSV) and every change take an
editor.
Services never commit: a view commits, then enqueues the sender of the mails
the service queued (`events.jobs.enqueue_senders`). A refused change
(`EventError`) is rolled back and shown, at its field where it names one.
"""
from flask import (
    Blueprint,
    abort,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy import case, func, select
from sqlalchemy.orm import contains_eager

from accounts.auth import (
    can_edit,
    can_see_personal_data,
    editor_required,
    login_required,
    personal_data_required,
    principal,
)
from core import spreadsheet
from core.database import load_or_404
from core.extensions import db
from core.forms import show_error
from directory.models import District
from events import csvio, jobs, services
from events.labels import (
    ATTENDANCE_LABELS,
    KIND_LABELS,
    MAIL_LABELS,
    PARTSTAT_LABELS,
    REGISTRATION_LABELS,
    STATUS_LABELS,
)
from events.forms import RRULE_EXAMPLE, EventForm
from core.i18n import format_when
from events.mail import format_date
from events.models import EVENT_KINDS, MAIL_STATES, Event, EventMail, Registration, Slot
from events.public import webcal_url
from events.services import EventError, local
from subscribers.models import utcnow
from subscribers.services import SubscriberError, district_topics, topics_by_id

bp = Blueprint("events", __name__)

# Registrations in the order a coordinator reads them: seats, waiting list, open, gone.
STATUS_ORDER = case(
    {"confirmed": 0, "waiting": 1, "invited": 2, "declined": 3, "removed": 4}, value=Registration.status, else_=5
)
CHECKIN_STATES = ("confirmed", "waiting")


@bp.context_processor
def _labels():
    return {
        "kind_labels": KIND_LABELS, "status_labels": STATUS_LABELS, "registration_labels": REGISTRATION_LABELS,
        "partstat_labels": PARTSTAT_LABELS, "attendance_labels": ATTENDANCE_LABELS, "mail_labels": MAIL_LABELS,
        "can_edit": can_edit, "format_when": format_when, "format_date": format_date, "local": local,
    }


@bp.app_template_global()
def event_feed_webcal(key):
    """The district's calendar feed as a webcal:// link, for the district and events pages."""
    return webcal_url(key)


def _event_or_404(key, id):
    return load_or_404(Event, id=id, district_key=key)


def _detail_url(event, anchor=""):
    return url_for("events.detail", key=event.district_key, id=event.id) + anchor


# --- list ---------------------------------------------------------------------------


def seat_figures(district_key):
    """{event id: {"confirmed", "waiting", "slots", "capacity"}} of the district's events, in two queries.

    `capacity` is the seats of all slots still on, None when unlimited.
    """
    figures = {}
    for event_id, slots, capacity, unlimited in db.session.execute(
        select(Slot.event_id, func.count(), func.sum(Slot.capacity),
               func.sum(case((Slot.capacity.is_(None), 1), else_=0)))
        .where(Slot.district_key == district_key, Slot.cancelled.is_(False))
        .group_by(Slot.event_id)
    ):
        figures[event_id] = {"confirmed": 0, "waiting": 0, "slots": slots,
                             "capacity": None if unlimited else (capacity or 0)}
    for event_id, status, count in db.session.execute(
        select(Registration.event_id, Registration.status, func.count())
        .where(Registration.district_key == district_key, Registration.status.in_(("confirmed", "waiting")))
        .group_by(Registration.event_id, Registration.status)
    ):
        figures.setdefault(event_id, {"confirmed": 0, "waiting": 0, "slots": 0, "capacity": None})[status] = count
    return figures


@bp.get("/d/<key>/events")
@login_required
def index(key):
    district = load_or_404(District, key=key)
    last_end = (
        select(Slot.event_id, func.max(Slot.ends_at).label("last_end"))
        .where(Slot.district_key == key).group_by(Slot.event_id).subquery()
    )
    rows = db.session.execute(
        select(Event, last_end.c.last_end).outerjoin(last_end, last_end.c.event_id == Event.id)
        .where(Event.district_key == key).order_by(Event.starts_at, Event.id)
    ).all()
    now = utcnow()
    upcoming = [event for event, end in rows if (end or event.ends_at) > now]
    past = [event for event, end in rows if (end or event.ends_at) <= now][::-1]
    return render_template("events/manage/list.html", district=district, upcoming=upcoming, past=past,
                           seats=seat_figures(key))


# --- new and edit -----------------------------------------------------------------------


def _audience(district, form):
    """The topic and municipality rows the form names; an id not of this district is an error."""
    try:
        topics = topics_by_id(district.key, form.topics.data)
    except SubscriberError as error:
        raise EventError(str(error), field="topics") from None
    wanted = set(form.municipalities.data or ())
    municipalities = [m for m in district.municipalities if m.ags in wanted]
    if len(municipalities) != len(wanted):
        raise EventError(_("Unbekannte Gemeinde."), field="municipalities")
    return topics, municipalities


def _form_page(district, form, event=None, status=200):
    return render_template("events/manage/form.html", district=district, form=form, event=event,
                           rrule_example=RRULE_EXAMPLE), status


def _kind_of_new():
    kind = request.args.get("kind", "workshop")
    if kind not in EVENT_KINDS:
        abort(404)
    return kind


@bp.route("/d/<key>/events/new", methods=["GET", "POST"])
@editor_required
def new(key):
    district = load_or_404(District, key=key)
    kind = _kind_of_new()
    topics = district_topics(key)
    if request.method == "GET":
        form = EventForm(kind, district, topics, formdata=None, data=EventForm.defaults(kind))
        return _form_page(district, form)
    form = EventForm(kind, district, topics)
    if not form.validate_on_submit():
        return _form_page(district, form, status=400)
    try:
        event = services.create_event(key, form.event_data(*_audience(district, form)), created_by=principal())
    except EventError as error:
        db.session.rollback()
        show_error(form, error)
        return _form_page(district, form, status=422)
    db.session.commit()
    flash(_("Die Veranstaltung wurde als Entwurf angelegt. Veröffentlichen Sie sie oder laden Sie ein, "
            "wenn alles stimmt."), "success")
    return redirect(_detail_url(event))


def _keep_unchanged_times(data, event):
    """The form shows minutes; an event made elsewhere (API) may have seconds. An untouched time is no change."""
    for name in ("starts_at", "ends_at"):
        stored = getattr(event, name)
        if getattr(data, name) == stored.replace(second=0, microsecond=0):
            setattr(data, name, stored)
    return data


@bp.route("/d/<key>/events/<int:id>/edit", methods=["GET", "POST"])
@editor_required
def edit(key, id):
    district = load_or_404(District, key=key)
    event = _event_or_404(key, id)
    if event.status == "cancelled":
        flash(_("Eine abgesagte Veranstaltung kann nicht mehr geändert werden."), "error")
        return redirect(_detail_url(event))
    topics = district_topics(key)
    if request.method == "GET":
        form = EventForm(event.kind, district, topics, formdata=None, data=EventForm.data_of(event))
        return _form_page(district, form, event)
    form = EventForm(event.kind, district, topics)
    if not form.validate_on_submit():
        return _form_page(district, form, event, status=400)
    try:
        notified = services.update_event(event, _keep_unchanged_times(form.event_data(*_audience(district, form)),
                                                                      event))
    except EventError as error:
        db.session.rollback()
        show_error(form, error)
        return _form_page(district, form, _event_or_404(key, id), status=422)
    db.session.commit()
    if notified:
        jobs.enqueue_senders(event.id)
        flash(ngettext("Die Änderungen sind gespeichert; %(num)d Person erhält die geänderte Einladung.",
                       "Die Änderungen sind gespeichert; %(num)d Personen erhalten die geänderte Einladung.",
                       notified), "success")
    else:
        flash(_("Die Änderungen sind gespeichert."), "success")
    return redirect(_detail_url(event))


# --- one event -------------------------------------------------------------------------


def registrations_of(event, slot=None, statuses=None):
    query = (
        select(Registration).join(Slot, Slot.id == Registration.slot_id).options(contains_eager(Registration.slot))
        .where(Registration.event_id == event.id, Registration.district_key == event.district_key)
        .order_by(Slot.starts_at, STATUS_ORDER, Registration.waiting_position, Registration.name,
                  Registration.id)
    )
    if slot is not None:
        query = query.where(Registration.slot_id == slot.id)
    if statuses is not None:
        query = query.where(Registration.status.in_(statuses))
    return db.session.execute(query).scalars().all()


def mail_progress(event):
    counts = dict.fromkeys(MAIL_STATES, 0)
    for status, count in db.session.execute(
        select(EventMail.status, func.count()).where(EventMail.event_id == event.id).group_by(EventMail.status)
    ):
        counts[status] = count
    return counts


@bp.get("/d/<key>/events/<int:id>")
@login_required
def detail(key, id):
    district = load_or_404(District, key=key)
    event = _event_or_404(key, id)
    mails = mail_progress(event)
    return render_template(
        "events/manage/detail.html",
        district=district,
        event=event,
        audience_size=len(services.audience(event)) if event.status != "cancelled" else None,
        counts=services.seat_counts(event),
        registrations=registrations_of(event) if can_see_personal_data() else None,
        reached=event_reach(event),
        municipality_total=len(district.municipalities),
        mails=mails,
        mails_total=sum(mails.values()),
        is_over=services.is_over(event),
    )


def event_reach(event):
    """Municipalities this event reached, from reach's one definition."""
    from reach.definition import ATTENDED, EVENT, REGISTERED
    from reach.services import offer_reach

    figures = offer_reach(EVENT, event.id, event.district_key)
    db.session.commit()  # the refreshed rollup
    return {"reached": figures["reached"], "registered": figures["levels"].get(REGISTERED, 0),
            "attended": figures["levels"].get(ATTENDED, 0)}


def _refused(event, error):
    """The event's state refuses the action (a second click, another tab): say so on its page."""
    db.session.rollback()
    flash(str(error), "error")
    return redirect(_detail_url(event))


@bp.post("/d/<key>/events/<int:id>/publish")
@editor_required
def publish(key, id):
    event = _event_or_404(key, id)
    try:
        services.publish(event)
    except EventError as error:
        return _refused(event, error)
    db.session.commit()
    flash(_("Die Veranstaltung ist veröffentlicht.") if not event.public else
          _("Die Veranstaltung ist veröffentlicht: im Kalender-Abonnement und mit offener Anmeldeseite."), "success")
    return redirect(_detail_url(event))


@bp.post("/d/<key>/events/<int:id>/invite")
@editor_required
def invite(key, id):
    event = _event_or_404(key, id)
    try:
        count = services.invite(event)
    except EventError as error:
        return _refused(event, error)
    db.session.commit()
    if count:
        jobs.enqueue_senders(event.id)
        flash(ngettext("%(num)d Einladung wird verschickt.", "%(num)d Einladungen werden verschickt.", count),
              "success")
    else:
        flash(_("Alle Empfängerinnen und Empfänger sind bereits eingeladen; es wurde keine Einladung verschickt."),
              "info")
    return redirect(_detail_url(event))


@bp.get("/d/<key>/events/<int:id>/cancel")
@editor_required
def cancel_confirm(key, id):
    district = load_or_404(District, key=key)
    event = _event_or_404(key, id)
    if event.status == "cancelled":
        flash(_("Die Veranstaltung ist bereits abgesagt."), "info")
        return redirect(_detail_url(event))
    return render_template("events/manage/cancel.html", district=district, event=event,
                           holders=len(services.holders(event)))


@bp.post("/d/<key>/events/<int:id>/cancel")
@editor_required
def cancel(key, id):
    event = _event_or_404(key, id)
    try:
        count = services.cancel_event(event)
    except EventError as error:
        return _refused(event, error)
    db.session.commit()
    if count:
        jobs.enqueue_senders(event.id)
    flash(ngettext("Die Veranstaltung ist abgesagt; %(num)d Person erhält eine Absage für ihren Kalender.",
                   "Die Veranstaltung ist abgesagt; %(num)d Personen erhalten eine Absage für ihren Kalender.",
                   count), "success")
    return redirect(_detail_url(event))


@bp.post("/d/<key>/events/<int:id>/registrations/<int:registration_id>/remove")
@editor_required
def remove(key, id, registration_id):
    event = _event_or_404(key, id)
    registration = load_or_404(Registration, id=registration_id, event_id=event.id, district_key=key)
    name = registration.name or registration.email
    try:
        services.remove(registration)
    except EventError as error:
        return _refused(event, error)
    db.session.commit()
    jobs.enqueue_senders(event.id)
    flash(_("Die Anmeldung von %(name)s ist aufgehoben.", name=name), "success")
    return redirect(_detail_url(event, "#registrations-heading"))


# --- check-in --------------------------------------------------------------------------------


def _checkin_slot(event):
    """The slot of `?slot=`, or None for the whole event; a slot of another event is 404."""
    value = request.args.get("slot")
    if not value:
        return None
    for slot in event.slots:
        if str(slot.id) == value:
            return slot
    abort(404)


def _checkin_page(district, event, slot, status=200, error=None, submitted=None):
    return render_template(
        "events/manage/checkin.html", district=district, event=event, slot=slot,
        registrations=registrations_of(event, slot, CHECKIN_STATES), error=error, submitted=submitted or {},
    ), status


def _checkin_url(event, slot):
    return url_for("events.checkin", key=event.district_key, id=event.id, slot=slot.id if slot else None)


@bp.get("/d/<key>/events/<int:id>/checkin")
@personal_data_required
def checkin(key, id):
    district = load_or_404(District, key=key)
    event = _event_or_404(key, id)
    return _checkin_page(district, event, _checkin_slot(event))


@bp.post("/d/<key>/events/<int:id>/checkin")
@editor_required
def checkin_save(key, id):
    """Every row's radio group (`attendance-<registration id>`: attended, no_show or empty) in one POST."""
    district = load_or_404(District, key=key)
    event = _event_or_404(key, id)
    slot = _checkin_slot(event)
    submitted = {}
    changed = 0
    try:
        for registration in registrations_of(event, slot, CHECKIN_STATES):
            field = f"attendance-{registration.id}"
            if field not in request.form:
                continue
            value = request.form[field] or None
            submitted[registration.id] = value
            if value != registration.attendance:
                services.set_attendance(registration, value)
                changed += 1
    except EventError as error:
        db.session.rollback()
        return _checkin_page(district, event, slot, status=422, error=str(error), submitted=submitted)
    db.session.commit()
    flash(ngettext("%(num)d Teilnahme gespeichert.", "%(num)d Teilnahmen gespeichert.", changed), "success")
    return redirect(_checkin_url(event, slot))


# --- export -------------------------------------------------------------------------------------


@bp.get("/d/<key>/events/<int:id>/registrations.<any(csv, xlsx):extension>")
@personal_data_required
def export(key, id, extension):
    event = _event_or_404(key, id)
    data = csvio.export_registrations(event, registrations_of(event), extension)
    today = local(utcnow()).date()
    content_type = spreadsheet.XLSX_TYPE if extension == "xlsx" else spreadsheet.CSV_TYPE
    return spreadsheet.download(data, content_type, csvio.export_filename(event, today, extension))
