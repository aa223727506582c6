"""The one definition of reach: the levels, the headlines, and which raw rows are touches.

A municipality is *reached at a level* in a period when at least one touch of
that level falls in the period (days in Europe/Berlin):

- delivered:  a newsletter delivery in status `sent` (a bounce takes it back),
              or a sent event invitation;
- opened:     a human open of a newsletter; a human click counts as an open
              too (it proves the mail was opened, also with images blocked);
- clicked:    a human click;
- registered: a confirmed seat or office-hours booking of a slot that was not
              cancelled, of an event that was not cancelled, on the slot's date;
- attended:   checked in as attended, on the slot's date (same conditions);
- contacted:  a logged contact, on its date, for each of its municipalities.

Machine opens and clicks (prefetches, scanners) never count. A touch is one
person at one level through one offer on one day; touches keep their
municipality when the person is erased.

`touch_sources` turns this into SELECTs over the raw tables. The rollup
(`reach.rollup`) stores their rows; the raw-row baseline and the tests
aggregate them directly. Both read this module, so there is no second
definition.
"""
from collections import namedtuple
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask_babel import lazy_gettext as _l
from sqlalchemy import Date, String, cast, func, literal, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from events.models import Event, EventMail, Registration, Slot
from newsletter.models import Delivery, TrackingEvent
from reach.models import Contact, contact_municipalities

BERLIN = ZoneInfo("Europe/Berlin")

Level = namedtuple("Level", "code number label channels behavioural")

DELIVERED, OPENED, CLICKED, REGISTERED, ATTENDED, CONTACTED = 1, 2, 3, 4, 5, 6
NEWSLETTER, EVENT, CONTACT = 1, 2, 3

CHANNELS = {"newsletter": NEWSLETTER, "event": EVENT, "contact": CONTACT}
CHANNEL_LABELS = {
    "newsletter": _l("Newsletter"),
    "event": _l("Veranstaltungen"),
    "contact": _l("Kontakte"),
}

# The ladder, in the order it is shown. `behavioural` levels say something
# about what people did, so what viewers see of them per municipality is
# subject to the minimum cell size.
LEVELS = [
    Level("delivered", DELIVERED, _l("zugestellt"), (NEWSLETTER, EVENT), False),
    Level("opened", OPENED, _l("geöffnet"), (NEWSLETTER,), True),
    Level("clicked", CLICKED, _l("geklickt"), (NEWSLETTER,), True),
    Level("registered", REGISTERED, _l("angemeldet"), (EVENT,), True),
    Level("attended", ATTENDED, _l("teilgenommen"), (EVENT,), True),
    Level("contacted", CONTACTED, _l("Kontakt"), (CONTACT,), False),
]
LEVEL_BY_NUMBER = {level.number: level for level in LEVELS}
LEVEL_BY_CODE = {level.code: level for level in LEVELS}
BEHAVIOURAL = frozenset(level.number for level in LEVELS if level.behavioural)

# The two headlines: "erreicht" and "aktiv erreicht".
REACHED = frozenset({DELIVERED, REGISTERED, ATTENDED, CONTACTED})
ACTIVE = frozenset({OPENED, CLICKED, REGISTERED, ATTENDED, CONTACTED})
HEADLINES = {"reached": REACHED, "active": ACTIVE}
HEADLINE_LABELS = {"reached": _l("erreicht"), "active": _l("aktiv erreicht"), "listed": _l("im Verteiler")}


# --- days in Europe/Berlin, in SQL --------------------------------------------------


class berlin_day(FunctionElement):
    """The Europe/Berlin date of a UTC timestamp column."""

    type = Date()
    inherit_cache = True


@compiles(berlin_day, "postgresql")
def _berlin_day_pg(element, compiler, **kw):
    return f"CAST(timezone('Europe/Berlin', {compiler.process(element.clauses, **kw)}) AS DATE)"


@compiles(berlin_day, "sqlite")
def _berlin_day_sqlite(element, compiler, **kw):
    # SQLite has no time zones. Summer time in the EU runs from the last Sunday
    # of March to the last Sunday of October, both at 01:00 UTC; timestamps
    # are stored as UTC text ("2026-03-29 01:00:00.000000").
    ts = compiler.process(element.clauses, **kw)
    year = f"substr({ts}, 1, 4)"
    begins = f"date({year} || '-03-31', '-6 days', 'weekday 0') || ' 01:00:00'"
    ends = f"date({year} || '-10-31', '-6 days', 'weekday 0') || ' 01:00:00'"
    return f"date({ts}, CASE WHEN {ts} >= {begins} AND {ts} < {ends} THEN '+2 hours' ELSE '+1 hours' END)"


class month_start(FunctionElement):
    """The first day of the month of a date column."""

    type = Date()
    inherit_cache = True


class year_start(FunctionElement):
    """The first day of the year of a date column."""

    type = Date()
    inherit_cache = True


def _truncate(unit):
    def postgresql(element, compiler, **kw):
        return f"CAST(date_trunc('{unit}', {compiler.process(element.clauses, **kw)}) AS DATE)"

    def sqlite(element, compiler, **kw):
        return f"date({compiler.process(element.clauses, **kw)}, 'start of {unit}')"

    return postgresql, sqlite


for _construct, _unit in ((month_start, "month"), (year_start, "year")):
    _pg, _lite = _truncate(_unit)
    compiles(_construct, "postgresql")(_pg)
    compiles(_construct, "sqlite")(_lite)


def utc_bounds(first_day, last_day):
    """The UTC instants [from, to) of the Berlin days first_day … last_day."""
    start = datetime.combine(first_day, time(), BERLIN)
    end = datetime.combine(last_day + timedelta(days=1), time(), BERLIN)
    return start.astimezone(ZoneInfo("UTC")), end.astimezone(ZoneInfo("UTC"))


def berlin_today():
    return datetime.now(BERLIN).date()


# --- raw rows → touches ------------------------------------------------------------------


def _tag(prefix, column):
    """'s' || id as text; NULL when the id is NULL (so COALESCE picks the next key)."""
    return literal(prefix) + cast(column, String)


def _in_window(column, window, district_keys, district_column):
    conditions = []
    if window is not None:
        start, end = utc_bounds(*window)
        conditions += [column >= start, column < end]
    if district_keys is not None:
        conditions.append(district_column.in_(district_keys))
    return conditions


def _touch(district, ags, level, channel, offer, person, day):
    return (
        district.label("district_key"), ags.label("municipality_ags"), literal(level).label("level"),
        literal(channel).label("channel"), offer.label("offer_id"), person.label("person"), day.label("day"),
    )


def touch_sources(window=None, district_keys=None):
    """SELECTs yielding every touch (district_key, municipality_ags, level, channel, offer_id, person, day).

    `window` (first day, last day) restricts to touches on those Berlin days;
    `district_keys` to those districts. Each SELECT is DISTINCT: a person
    opening a newsletter five times on one day is one touch.
    """
    delivery_person = func.coalesce(_tag("s", Delivery.subscriber_id), _tag("d", Delivery.id))
    yield select(*_touch(
        Delivery.district_key, Delivery.municipality_ags, DELIVERED, NEWSLETTER, Delivery.newsletter_id,
        delivery_person, berlin_day(Delivery.sent_at),
    )).where(Delivery.status == "sent", *_in_window(Delivery.sent_at, window, district_keys,
                                                     Delivery.district_key)).distinct()

    mail_person = func.coalesce(_tag("s", EventMail.subscriber_id), _tag("r", EventMail.registration_id),
                                _tag("m", EventMail.id))
    yield select(*_touch(
        EventMail.district_key, EventMail.municipality_ags, DELIVERED, EVENT, EventMail.event_id,
        mail_person, berlin_day(EventMail.sent_at),
    )).where(EventMail.kind == "invitation", EventMail.status == "sent",
             *_in_window(EventMail.sent_at, window, district_keys, EventMail.district_key)).distinct()

    for level, kinds in ((OPENED, ("open", "click")), (CLICKED, ("click",))):
        yield select(*_touch(
            TrackingEvent.district_key, Delivery.municipality_ags, level, NEWSLETTER, Delivery.newsletter_id,
            delivery_person, berlin_day(TrackingEvent.created_at),
        )).join(Delivery, Delivery.id == TrackingEvent.delivery_id).where(
            TrackingEvent.machine.is_(False), TrackingEvent.kind.in_(kinds),
            *_in_window(TrackingEvent.created_at, window, district_keys, TrackingEvent.district_key),
        ).distinct()

    registration_person = func.coalesce(_tag("s", Registration.subscriber_id), _tag("r", Registration.id))
    for level, condition in ((REGISTERED, Registration.status == "confirmed"),
                             (ATTENDED, Registration.attendance == "attended")):
        yield select(*_touch(
            Slot.district_key, Registration.municipality_ags, level, EVENT, Registration.event_id,
            registration_person, berlin_day(Slot.starts_at),
        )).join(Slot, Slot.id == Registration.slot_id).join(Event, Event.id == Registration.event_id).where(
            condition, Slot.cancelled.is_(False), Event.status != "cancelled",
            *_in_window(Slot.starts_at, window, district_keys, Slot.district_key),
        ).distinct()

    contact_conditions = []
    if window is not None:
        contact_conditions += [Contact.date >= window[0], Contact.date <= window[1]]
    if district_keys is not None:
        contact_conditions.append(Contact.district_key.in_(district_keys))
    yield select(*_touch(
        Contact.district_key, contact_municipalities.c.municipality_ags, CONTACTED, CONTACT, Contact.id,
        _tag("c", Contact.id), Contact.date,
    )).join(contact_municipalities, contact_municipalities.c.contact_id == Contact.id).where(
        *contact_conditions).distinct()


def channel_condition(column, channels):
    """Restrict a `channel` column to the chosen channel numbers (None: all)."""
    return True if not channels else column.in_(sorted(channels))


def levels_for(channels):
    """The levels a channel filter can show (all without one)."""
    if not channels:
        return [level.number for level in LEVELS]
    return [level.number for level in LEVELS if set(level.channels) & set(channels)]

