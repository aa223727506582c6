"""The rules of events: creating and changing them, invitations, answers, seats, mails.

Services never commit; the caller commits, then enqueues the sender
(`events.jobs.enqueue_senders`). Every change that someone must hear about
writes its `EventMail` rows in the same transaction, with the calendar
METHOD and SEQUENCE fixed there (see `events.models`).

Seats: every change to a slot's seats first bumps the slot's `version` with
an UPDATE. That UPDATE takes the slot's row lock on PostgreSQL and the
database's write lock on SQLite, so concurrent answers for one slot are
decided one after the other and never overbook.
"""
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from dateutil.rrule import rrulestr
from flask_babel import gettext as _
from sqlalchemy import func, insert, select, update

from core.extensions import db
from events.models import HOLDS_COPY, Event, EventMail, Registration, Slot
from subscribers import services as subscriber_services
from subscribers.models import Subscriber, subscriber_topics, utcnow

BERLIN = ZoneInfo("Europe/Berlin")
MAX_OCCURRENCES = 200
MAX_SLOTS = 2000
MAX_REMINDER_HOURS = 24 * 14
# Answers as they arrive (link or calendar); `respond` maps them onto statuses.
ANSWERS = {"accept": "ACCEPTED", "tentative": "TENTATIVE", "decline": "DECLINED"}
# Fields whose change moves or changes the calendar entry: a new version (SEQUENCE + 1) for every copy.
CALENDAR_FIELDS = ("title", "starts_at", "ends_at", "location", "online_url", "rrule", "slot_minutes")
# Fields that cut an office-hours series into slots: fixed once someone holds a slot.
SCHEDULE_FIELDS = ("starts_at", "ends_at", "rrule", "slot_minutes")


class EventError(ValueError):
    """A rule was broken; the message is fit to show. `field` names the form field, if any."""

    def __init__(self, message, field=None):
        super().__init__(message)
        self.field = field


# --- times -------------------------------------------------------------------


def local(value):
    """A UTC timestamp in Europe/Berlin."""
    return value.astimezone(BERLIN)


def from_local(value):
    """A naive Europe/Berlin wall-clock time (form input) as UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=BERLIN)
    return value.astimezone(timezone.utc)


# --- validation -----------------------------------------------------------------


@dataclass
class EventData:
    """What a coordinator enters for an event; times are aware datetimes."""

    kind: str = "workshop"
    title: str = ""
    description: str = ""
    location: str = ""
    online_url: str = ""
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    rrule: str = ""
    slot_minutes: int | None = None
    capacity: int | None = None
    public: bool = True
    reminder_hours: int = 24
    topics: list | None = None  # Topic rows
    municipalities: list | None = None  # Municipality rows


def _text(value, limit, field, too_long, missing=None):
    """`value` stripped; EventError with `missing` when empty (if required) or `too_long` beyond `limit`."""
    value = (value or "").strip()
    if missing and not value:
        raise EventError(missing, field=field)
    if len(value) > limit:
        raise EventError(too_long, field=field)
    return value


def _meeting_url(value):
    value = _text(value, 500, "online_url",
                  _("Der Link zur Online-Teilnahme darf höchstens %(n)d Zeichen lang sein.", n=500))
    if value:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise EventError(_("Der Link zur Online-Teilnahme muss mit https:// beginnen."), field="online_url")
    return value


def _until(rule):
    """(rule with UNTIL as UTC date-time, as RFC 5545 wants beside a TZID start; rule with naive local UNTIL)."""
    match = re.search(r"UNTIL=(\d{8})(?:T(\d{6})(Z?))?", rule)
    if not match:
        return rule, rule
    day, clock, utc = match.groups()
    try:
        if clock is None:
            until = datetime.strptime(day + "235959", "%Y%m%d%H%M%S").replace(tzinfo=BERLIN)
        else:
            until = datetime.strptime(day + clock, "%Y%m%d%H%M%S").replace(tzinfo=timezone.utc if utc else BERLIN)
    except ValueError:
        raise EventError(_("Die Wiederholungsregel ist ungültig."), field="rrule") from None
    as_utc = until.astimezone(timezone.utc).strftime("UNTIL=%Y%m%dT%H%M%SZ")
    as_local = until.astimezone(BERLIN).strftime("UNTIL=%Y%m%dT%H%M%S")
    return rule.replace(match.group(0), as_utc), rule.replace(match.group(0), as_local)


def parse_rrule(rule, starts_at):
    """(normalised rule, occurrences in UTC) of `rule` from `starts_at`, wall-clock times kept across DST.

    EventError for a rule that is invalid, endless or too long.
    """
    rule = (rule or "").strip().upper()
    if rule.startswith("RRULE:"):
        rule = rule[6:]
    if not rule:
        raise EventError(_("Bitte eine Wiederholungsregel angeben, z. B. FREQ=WEEKLY;INTERVAL=2;BYDAY=TU;COUNT=6."),
                         field="rrule")
    if not re.fullmatch(r"[A-Z0-9=;,+\-]+", rule) or "DTSTART" in rule or not rule.startswith("FREQ="):
        raise EventError(_("Die Wiederholungsregel ist ungültig."), field="rrule")
    if "COUNT=" not in rule and "UNTIL=" not in rule:
        raise EventError(_("Die Wiederholungsregel braucht ein Ende (COUNT oder UNTIL)."), field="rrule")
    rule, naive_rule = _until(rule)
    start = local(starts_at).replace(tzinfo=None, microsecond=0)
    try:
        occurrences = list(rrulestr(naive_rule, dtstart=start, cache=False).xafter(start, MAX_OCCURRENCES + 1,
                                                                                   inc=True))
    except (ValueError, TypeError, OverflowError):
        raise EventError(_("Die Wiederholungsregel ist ungültig."), field="rrule") from None
    if not occurrences:
        raise EventError(_("Die Wiederholungsregel ergibt keinen Termin."), field="rrule")
    if len(occurrences) > MAX_OCCURRENCES:
        raise EventError(_("Die Wiederholungsregel ergibt mehr als %(n)d Termine.", n=MAX_OCCURRENCES), field="rrule")
    return rule, [o.replace(tzinfo=BERLIN).astimezone(timezone.utc) for o in occurrences]


def validate(district_key, data, *, is_new=True):
    """Check `data` and return it cleaned; EventError names the first problem."""
    if data.kind not in ("workshop", "office_hours"):
        raise EventError(_("Unbekannte Art der Veranstaltung."), field="kind")
    data.title = _text(data.title, 200, "title", _("Der Titel darf höchstens %(n)d Zeichen lang sein.", n=200),
                       missing=_("Bitte einen Titel angeben."))
    data.description = _text(data.description, 10000, "description",
                             _("Die Beschreibung darf höchstens %(n)d Zeichen lang sein.", n=10000))
    data.location = _text(data.location, 500, "location", _("Der Ort darf höchstens %(n)d Zeichen lang sein.", n=500))
    data.online_url = _meeting_url(data.online_url)
    if not data.location and not data.online_url:
        raise EventError(_("Bitte einen Ort oder einen Link zur Online-Teilnahme angeben."), field="location")
    if data.starts_at is None or data.ends_at is None:
        raise EventError(_("Bitte Beginn und Ende angeben."), field="starts_at")
    # Whole seconds: iCalendar has no fractions, and the series' first occurrence must be DTSTART itself.
    data.starts_at, data.ends_at = data.starts_at.replace(microsecond=0), data.ends_at.replace(microsecond=0)
    if data.ends_at <= data.starts_at:
        raise EventError(_("Das Ende muss nach dem Beginn liegen."), field="ends_at")
    if data.ends_at - data.starts_at > timedelta(hours=24):
        raise EventError(_("Eine Veranstaltung darf höchstens 24 Stunden dauern."), field="ends_at")
    if is_new and data.starts_at <= utcnow():
        raise EventError(_("Der Beginn muss in der Zukunft liegen."), field="starts_at")
    if data.capacity is not None and not 1 <= data.capacity <= 100000:
        raise EventError(_("Die Zahl der Plätze muss zwischen 1 und 100000 liegen."), field="capacity")
    if not 0 <= (data.reminder_hours or 0) <= MAX_REMINDER_HOURS:
        raise EventError(_("Die Erinnerung muss zwischen 0 und %(n)d Stunden vor Beginn liegen.",
                           n=MAX_REMINDER_HOURS), field="reminder_hours")
    data.reminder_hours = data.reminder_hours or 0
    if data.kind == "office_hours":
        data.rrule, _occurrences = parse_rrule(data.rrule, data.starts_at)
        minutes = (data.ends_at - data.starts_at).total_seconds() / 60
        if not data.slot_minutes or not 5 <= data.slot_minutes <= minutes:
            raise EventError(_("Die Länge eines Termins muss zwischen 5 Minuten und der Dauer der Sprechstunde "
                               "liegen."), field="slot_minutes")
        if len(_occurrences) * int(minutes // data.slot_minutes) > MAX_SLOTS:
            raise EventError(_("Die Sprechstunde ergibt mehr als %(n)d Termine.", n=MAX_SLOTS), field="slot_minutes")
        if data.capacity is None:
            data.capacity = 1  # a slot is for one municipality unless set otherwise
    else:
        data.rrule, data.slot_minutes = "", None
    for topic in data.topics or ():
        if topic.district_key != district_key:
            raise EventError(_("Unbekanntes Thema."), field="topics")
    for municipality in data.municipalities or ():
        if municipality.district_key != district_key:
            raise EventError(_("Unbekannte Gemeinde."), field="municipalities")
    return data


def slot_times(event):
    """[(start, end)] UTC of the event's slots: the event itself, or each occurrence cut into slots."""
    if event.kind == "workshop":
        return [(event.starts_at, event.ends_at)]
    _rule, occurrences = parse_rrule(event.rrule, event.starts_at)
    duration = event.ends_at - event.starts_at
    step = timedelta(minutes=event.slot_minutes)
    times = []
    for start in occurrences:
        # Each occurrence starts at its wall-clock time (09:00 on both sides of a
        # DST change); within it, slots follow in elapsed time, so a night with
        # a DST change gets no two slots at the same instant.
        begin = local(start).astimezone(timezone.utc)
        for index in range(int(duration // step)):
            slot_start = begin + index * step
            times.append((slot_start, slot_start + step))
    return times


def _build_slots(event):
    event.slots = [
        Slot(district_key=event.district_key, starts_at=start, ends_at=end, capacity=event.capacity)
        for start, end in slot_times(event)
    ]


# --- events ------------------------------------------------------------------------


def create_event(district_key, data, created_by=None):
    data = validate(district_key, data)
    event = Event(
        district_key=district_key, kind=data.kind, title=data.title, description=data.description,
        location=data.location, online_url=data.online_url, starts_at=data.starts_at, ends_at=data.ends_at,
        rrule=data.rrule, slot_minutes=data.slot_minutes, capacity=data.capacity, public=data.public,
        reminder_hours=data.reminder_hours, status="draft", sequence=0,
        topics=list(data.topics or ()), municipalities=list(data.municipalities or ()),
        created_by_id=created_by.id if created_by else None,
    )
    _build_slots(event)
    db.session.add(event)
    db.session.flush()
    return event


def event_data(event):
    """The event's current values as EventData (the starting point of an edit)."""
    return EventData(
        kind=event.kind, title=event.title, description=event.description, location=event.location,
        online_url=event.online_url, starts_at=event.starts_at, ends_at=event.ends_at, rrule=event.rrule,
        slot_minutes=event.slot_minutes, capacity=event.capacity, public=event.public,
        reminder_hours=event.reminder_hours, topics=list(event.topics), municipalities=list(event.municipalities),
    )


def holders(event, statuses=HOLDS_COPY):
    return db.session.execute(
        select(Registration).where(Registration.event_id == event.id, Registration.status.in_(statuses))
        .order_by(Registration.id)
    ).scalars().all()


def update_event(event, data):
    """Apply an edit. A change of time, place, link or title sends everyone holding a copy a new version.

    Returns the number of update mails queued.
    """
    if event.status == "cancelled":
        raise EventError(_("Eine abgesagte Veranstaltung kann nicht mehr geändert werden."))
    if data.kind != event.kind:
        raise EventError(_("Die Art der Veranstaltung kann nicht geändert werden."), field="kind")
    def whole(value):
        return value.replace(microsecond=0) if isinstance(value, datetime) else value

    changes_time = whole(data.starts_at) != whole(event.starts_at) or whole(data.ends_at) != whole(event.ends_at)
    data = validate(event.district_key, data, is_new=changes_time)
    before = {name: whole(getattr(event, name)) for name in CALENDAR_FIELDS}
    after = {name: getattr(data, name) for name in CALENDAR_FIELDS}
    current = holders(event)
    if event.kind == "office_hours" and current and any(before[f] != after[f] for f in SCHEDULE_FIELDS):
        raise EventError(_("Zeiten und Termine einer Sprechstunde mit Buchungen können nicht geändert werden; "
                           "sagen Sie einzelne Buchungen ab oder legen Sie eine neue Sprechstunde an."),
                         field="starts_at")
    if data.capacity != event.capacity:
        _change_capacity(event, data.capacity)
    for name in ("title", "description", "location", "online_url", "starts_at", "ends_at", "rrule", "slot_minutes",
                 "public", "reminder_hours"):
        setattr(event, name, getattr(data, name))
    event.topics = list(data.topics or ())
    event.municipalities = list(data.municipalities or ())
    if event.kind == "office_hours" and any(before[f] != after[f] for f in SCHEDULE_FIELDS):
        event.slots.clear()
        db.session.flush()
        _build_slots(event)
    elif event.kind == "workshop" and changes_time:
        slot = event.slots[0]
        slot.starts_at, slot.ends_at = event.starts_at, event.ends_at
    if before == after:
        return 0
    event.sequence += 1
    for registration in current:
        queue_mail(event, registration, "update")
    return len(current)


def _change_capacity(event, capacity):
    for slot in event.slots:
        lock_slot(slot.id)
        if capacity is not None and confirmed_count(slot.id) > capacity:
            raise EventError(_("Es sind bereits mehr als %(n)d Plätze vergeben.", n=capacity), field="capacity")
        slot.capacity = capacity
        db.session.flush()
        promote(slot)
    event.capacity = capacity


def publish(event):
    if event.status == "cancelled":
        raise EventError(_("Die Veranstaltung ist abgesagt."))
    event.status = "published"


def cancel_event(event):
    """Cancel for good: everyone holding a copy gets METHOD:CANCEL with the next SEQUENCE. Returns how many."""
    if event.status == "cancelled":
        raise EventError(_("Die Veranstaltung ist bereits abgesagt."))
    current = holders(event)
    if event.status == "draft":
        # Never published: no public page may name it, not even to say it is cancelled.
        event.public = False
    event.status = "cancelled"
    event.cancelled_at = utcnow()
    event.sequence += 1
    for registration in current:
        queue_mail(event, registration, "cancel")
    return len(current)


def is_over(event):
    return event.ends_at <= utcnow() and (event.kind == "workshop" or max(s.ends_at for s in event.slots) <= utcnow())


def check_open(event):
    """Answers and registrations are possible: published, not cancelled, not over."""
    if event.status == "cancelled":
        raise EventError(_("Diese Veranstaltung wurde abgesagt."))
    if event.status != "published":
        raise EventError(_("Diese Veranstaltung ist noch nicht veröffentlicht."))
    if all(slot.ends_at <= utcnow() for slot in event.slots):
        raise EventError(_("Diese Veranstaltung hat bereits stattgefunden."))


# --- audience and invitations ---------------------------------------------------------


def audience(event):
    """[Subscriber] the invitation goes to: active, not suppressed, in its topics and municipalities (if any)."""
    query = select(Subscriber).where(Subscriber.district_key == event.district_key, Subscriber.status == "active")
    if event.topics:
        query = query.where(Subscriber.id.in_(
            select(subscriber_topics.c.subscriber_id)
            .where(subscriber_topics.c.topic_id.in_([t.id for t in event.topics]))
        ))
    if event.municipalities:
        query = query.where(Subscriber.municipality_ags.in_([m.ags for m in event.municipalities]))
    allowed = subscriber_services.unsuppressed(event.district_key)
    return [s for s in db.session.execute(query.order_by(Subscriber.id)).scalars() if allowed(s.email_key)]


def invite(event):
    """Invite the audience; publishes a draft. Safe to repeat: only people not yet invited get a mail.

    A workshop invitation is an iMIP REQUEST and creates the person's
    registration (`invited`); an office-hours invitation carries a booking
    link instead. Returns the number of invitations queued.
    """
    publish(event)
    check_open(event)
    # Two coordinators pressing "invite" at once: the second waits and finds everyone invited.
    lock_slot(event.slots[0].id)
    recipients = audience(event)
    if event.kind == "workshop":
        slot = event.slots[0]
        have = set(db.session.execute(
            select(Registration.email_key).where(Registration.slot_id == slot.id)
        ).scalars())
        count = 0
        for subscriber in recipients:
            if subscriber.email_key in have:
                continue
            registration = _subscriber_registration(event, slot, subscriber, "invitation")
            queue_mail(event, registration, "invitation")
            count += 1
    else:
        have = set(db.session.execute(
            select(EventMail.subscriber_id).where(EventMail.event_id == event.id, EventMail.kind == "invitation",
                                                  EventMail.subscriber_id.is_not(None))
        ).scalars())
        rows = [
            {"event_id": event.id, "subscriber_id": s.id, "district_key": event.district_key,
             "municipality_ags": s.municipality_ags, "kind": "invitation", "method": None, "sequence": None,
             "status": "queued", "attempts": 0, "next_attempt_at": utcnow(), "smtp_reply": "",
             "created_at": utcnow()}
            for s in recipients if s.id not in have
        ]
        if rows:
            db.session.execute(insert(EventMail), rows)
        count = len(rows)
    event.invited_at = event.invited_at or utcnow()
    return count


def _subscriber_registration(event, slot, subscriber, source):
    """A new `invited` registration of a subscriber, with their address, name and municipality."""
    registration = Registration(
        event=event, slot=slot, district_key=event.district_key, subscriber_id=subscriber.id,
        municipality_ags=subscriber.municipality_ags, email=subscriber.email, email_key=subscriber.email_key,
        name=subscriber.name, status="invited", partstat="NEEDS-ACTION", source=source,
    )
    db.session.add(registration)
    db.session.flush()
    return registration


# --- seats ------------------------------------------------------------------------------


def lock_slot(slot_id):
    """Serialise seat changes of one slot until the transaction ends (see the module docstring)."""
    db.session.execute(
        update(Slot).where(Slot.id == slot_id).values(version=Slot.version + 1)
        .execution_options(synchronize_session=False)
    )


def confirmed_count(slot_id):
    return db.session.execute(
        select(func.count()).where(Registration.slot_id == slot_id, Registration.status == "confirmed")
    ).scalar_one()


def _free(slot):
    return slot.capacity is None or confirmed_count(slot.id) < slot.capacity


def _next_waiting_position(slot_id):
    last = db.session.execute(
        select(func.max(Registration.waiting_position)).where(Registration.slot_id == slot_id)
    ).scalar_one()
    return (last or 0) + 1


def promote(slot):
    """Give free seats to the waiting list, first come first served. Returns the promoted registrations."""
    promoted = []
    while _free(slot):
        first = db.session.execute(
            select(Registration).where(Registration.slot_id == slot.id, Registration.status == "waiting")
            .order_by(Registration.waiting_position, Registration.id).limit(1)
        ).scalar_one_or_none()
        if first is None:
            break
        first.status = "confirmed"
        first.waiting_position = None
        db.session.flush()
        queue_mail(first.event, first, "promotion")
        _reminder_not_needed_if_close(first)
        promoted.append(first)
    return promoted


def _reminder_not_needed_if_close(registration):
    # Whoever gets a seat within the reminder window has just had a mail about it.
    event, slot = registration.event, registration.slot
    if event.reminder_hours and slot.starts_at - timedelta(hours=event.reminder_hours) <= utcnow():
        registration.reminded_for = slot.starts_at


def _reload(registration):
    return db.session.execute(
        select(Registration).where(Registration.id == registration.id).execution_options(populate_existing=True)
    ).scalar_one()


def respond(registration, answer, via="link"):
    """Record an answer ("accept", "tentative", "decline"), from a link or a calendar reply.

    Accepting (or tentatively accepting) takes a free seat or a place on the
    waiting list; declining gives the seat to the first person waiting and
    sends the decliner a CANCEL for their copy. Returns the new status.
    """
    if answer not in ANSWERS:
        raise EventError(_("Unbekannte Antwort."))
    event = registration.event
    check_open(event)
    slot_id = registration.slot_id
    lock_slot(slot_id)
    registration = _reload(registration)
    slot = registration.slot
    if slot.cancelled:
        raise EventError(_("Dieser Termin wurde abgesagt."))
    if registration.status == "removed":
        raise EventError(_("Ihre Anmeldung wurde von der Koordination aufgehoben. Bitte wenden Sie sich an sie."))
    partstat = ANSWERS[answer]
    registration.answered_at = utcnow()
    if answer == "decline":
        if registration.status == "declined":
            return registration.status
        had_seat = registration.status == "confirmed"
        registration.status, registration.partstat, registration.waiting_position = "declined", partstat, None
        db.session.flush()
        queue_mail(event, registration, "decline")
        if had_seat:
            promote(slot)
        return registration.status
    registration.partstat = partstat
    if registration.status in ("confirmed", "waiting"):
        return registration.status
    if _free(slot):
        registration.status = "confirmed"
        _reminder_not_needed_if_close(registration)
        # The calendar that answered already shows the acceptance; a link answer gets the updated entry.
        if via != "calendar":
            queue_mail(event, registration, "confirmation")
    else:
        registration.status = "waiting"
        registration.waiting_position = _next_waiting_position(slot_id)
        queue_mail(event, registration, "waiting")
    db.session.flush()
    return registration.status


def remove(registration):
    """The coordinator takes someone off: CANCEL for their copy, their seat to the first waiting."""
    event = registration.event
    if registration.status == "removed":
        return
    lock_slot(registration.slot_id)
    registration = _reload(registration)
    had_copy = registration.status in HOLDS_COPY
    had_seat = registration.status == "confirmed"
    registration.status, registration.waiting_position = "removed", None
    db.session.flush()
    if had_copy and event.status != "cancelled":
        queue_mail(event, registration, "decline")
    if had_seat and event.status != "cancelled":
        promote(registration.slot)


def set_attendance(registration, value):
    """Check-in: "attended", "no_show", or None (not recorded)."""
    if value not in (None, "attended", "no_show"):
        raise EventError(_("Unbekannter Wert für die Teilnahme."), field="attendance")
    if value is not None and registration.status in ("declined", "removed"):
        raise EventError(_("Für abgesagte Anmeldungen wird keine Teilnahme erfasst."), field="attendance")
    if value is not None and registration.slot.starts_at - timedelta(hours=12) > utcnow():
        raise EventError(_("Die Teilnahme kann erst am Tag der Veranstaltung erfasst werden."), field="attendance")
    registration.attendance = value


# --- registering ----------------------------------------------------------------------------


def find_registration(slot, email_key):
    return db.session.execute(
        select(Registration).where(Registration.slot_id == slot.id, Registration.email_key == email_key)
    ).scalar_one_or_none()


def open_slot(event, slot_id=None):
    """The slot to register for: the workshop's one, or the office-hours slot `slot_id` if still to come."""
    if event.kind == "workshop":
        return event.slots[0]
    for slot in event.slots:
        if str(slot.id) == str(slot_id) and not slot.cancelled and slot.starts_at > utcnow():
            return slot
    raise EventError(_("Bitte einen freien Termin wählen."), field="slot")


def request_invitation(event, slot, email, name, municipality_ags):
    """The public registration form: send an invitation the person accepts from their mailbox.

    Nobody gets a seat from a form alone: the address must be theirs, so the
    seat is taken by answering the invitation (link or calendar). The
    answer to the form is the same whether or not the address is known.
    Returns the registration.
    """
    check_open(event)
    address, email_key = subscriber_services.normalize_address(email)
    name = _text(name, 200, "name", _("Der Name darf höchstens %(n)d Zeichen lang sein.", n=200))
    municipality = subscriber_services.municipality_in(event.district_key, municipality_ags)
    lock_slot(slot.id)  # two forms for one address at once: the second finds the first's row
    registration = find_registration(slot, email_key)
    if registration is None:
        subscriber = db.session.execute(
            select(Subscriber).where(Subscriber.district_key == event.district_key, Subscriber.email_key == email_key)
        ).scalar_one_or_none()
        registration = Registration(
            event=event, slot=slot, district_key=event.district_key,
            subscriber_id=subscriber.id if subscriber else None, municipality_ags=municipality.ags,
            email=address, email_key=email_key, name=name, status="invited", partstat="NEEDS-ACTION", source="form",
        )
        db.session.add(registration)
        db.session.flush()
    elif registration.status in ("declined",):
        registration.status, registration.partstat = "invited", "NEEDS-ACTION"
    elif registration.status == "removed":
        return registration  # the coordinator decided; the form changes nothing
    queue_mail(event, registration, "invitation")
    return registration


def book(event, slot, subscriber):
    """An office-hours booking from the invitation's booking link: the subscriber accepts at once."""
    check_open(event)
    if subscriber.status != "active" or subscriber.district_key != event.district_key:
        raise EventError(_("Dieser Buchungslink ist nicht mehr gültig."))
    lock_slot(slot.id)  # a double click books once
    registration = find_registration(slot, subscriber.email_key)
    if registration is None:
        registration = _subscriber_registration(event, slot, subscriber, "booking")
    respond(registration, "accept")
    return _reload(registration)


# --- mails ---------------------------------------------------------------------------------------

METHODS = {
    "invitation": "REQUEST", "confirmation": "REQUEST", "promotion": "REQUEST", "update": "REQUEST",
    "reminder": "REQUEST", "cancel": "CANCEL", "decline": "CANCEL", "waiting": None,
}


def queue_mail(event, registration, kind):
    """Write the mail row; a mail with a calendar gets its SEQUENCE here and the copy's is moved on."""
    method = METHODS[kind]
    sequence = None
    if method:
        if kind == "reminder" or registration.sequence is None:
            # A reminder repeats the current version; a first copy starts at the event's version.
            sequence = event.sequence if registration.sequence is None else registration.sequence
        else:
            sequence = max(event.sequence, registration.sequence + 1)
        registration.sequence = sequence
    mail = EventMail(
        event_id=event.id, registration_id=registration.id, subscriber_id=registration.subscriber_id,
        district_key=event.district_key, municipality_ags=registration.municipality_ags, kind=kind, method=method,
        sequence=sequence, status="queued", attempts=0, next_attempt_at=utcnow(),
    )
    db.session.add(mail)
    return mail


# --- reminders ------------------------------------------------------------------------------------


def queue_due_reminders():
    """Queue the reminders that are due (confirmed seats, slot within the event's reminder time).

    Run by every worker's reconciler; the conditional UPDATE of
    `reminded_for` makes sure only one of them queues each reminder, and a
    moved event is reminded of again. Commits; returns how many were queued.
    """
    now = utcnow()
    candidates = db.session.execute(
        select(Registration.id, Slot.starts_at, Event.reminder_hours)
        .join(Slot, Slot.id == Registration.slot_id).join(Event, Event.id == Registration.event_id)
        .where(Event.status == "published", Event.reminder_hours > 0, Registration.status == "confirmed",
               Slot.cancelled.is_(False), Slot.starts_at > now,
               Slot.starts_at <= now + timedelta(hours=MAX_REMINDER_HOURS))
    ).all()
    queued = 0
    for registration_id, starts_at, hours in candidates:
        if starts_at - timedelta(hours=hours) > now:
            continue
        claimed = db.session.execute(
            update(Registration)
            .where(Registration.id == registration_id, Registration.status == "confirmed",
                   (Registration.reminded_for.is_(None)) | (Registration.reminded_for != starts_at))
            .values(reminded_for=starts_at).execution_options(synchronize_session=False)
        ).rowcount
        if claimed:
            registration = db.session.get(Registration, registration_id)
            queue_mail(registration.event, registration, "reminder")
            queued += 1
    db.session.commit()
    return queued


# --- figures ------------------------------------------------------------------------------------------


def seat_counts(event):
    """{slot id: {status: count}} for the event's slots."""
    counts = {slot.id: dict.fromkeys(("invited", "confirmed", "waiting", "declined", "removed"), 0)
              for slot in event.slots}
    for slot_id, status, count in db.session.execute(
        select(Registration.slot_id, Registration.status, func.count())
        .where(Registration.event_id == event.id).group_by(Registration.slot_id, Registration.status)
    ):
        counts[slot_id][status] = count
    return counts
