"""Reach figures per municipality, district and state: every page, export, API route and CLI asks here.

`cells()` answers the one question everything else is built from: for each
municipality and level, the first and last day with a touch in the period and
the number of touches. It reads the rollup (a few thousand rows for any
period), the touch log when a topic filter asks for offers of one topic, or,
as the benchmark's baseline and the tests' oracle, the raw rows themselves
(`source="raw"`). The reports only summarise cells, so all three agree by
construction. The definition of a touch is `reach.definition`.
"""
from dataclasses import dataclass, field
from datetime import date

from flask import current_app
from sqlalchemy import and_, func, literal, or_, select, tuple_, union_all

from core.collation import german_key, sorted_by_name
from core.extensions import db
from directory.models import District, Municipality
from events.models import event_topics
from newsletter.models import newsletter_topics
from reach import rollup
from reach.definition import (
    ACTIVE,
    BEHAVIOURAL,
    CONTACT,
    EVENT,
    LEVELS,
    NEWSLETTER,
    REACHED,
    levels_for,
    touch_sources,
    utc_bounds,
)
from reach.models import DistrictRollup, Rollup, Touch, contact_topics
from subscribers.models import Subscriber, Topic

ACTIVE_STATES = ("active",)
LEFT_STATES = ("unsubscribed", "bounced", "complained")


@dataclass
class Cell:
    """One municipality at one level in the period."""

    first: date
    last: date
    touches: int
    people: int | None = None  # only counted where a minimum cell size applies
    suppressed: bool = False


@dataclass
class MunicipalityRow:
    ags: str
    name: str
    cells: dict  # level number → Cell
    listed: bool
    reached: bool = False
    active: bool = False
    active_suppressed: bool = False
    highest: int | None = None  # the highest level on the ladder reached (viewers: of those shown)

    @property
    def last(self):
        return max((cell.last for cell in self.cells.values()), default=None)


@dataclass
class Summary:
    """Headlines and ladder of a set of municipalities (a district, or the state)."""

    total: int
    reached: int = 0
    active: int = 0
    listed: int = 0
    ladder: dict = field(default_factory=dict)  # level number → municipalities
    last: date | None = None

    def share(self, count):
        return count / self.total if self.total else None


@dataclass
class Month:
    start: date
    new: dict  # "reached"/"active" → municipalities first reached in this month
    cumulative: dict  # "reached"/"active" → municipalities reached up to this month


@dataclass
class DistrictReport:
    district: District
    filters: object
    summary: Summary
    rows: list
    months: list
    levels: list
    refreshed_at: object = None


@dataclass
class DistrictLine:
    district: District
    summary: Summary


@dataclass
class StateReport:
    filters: object
    summary: Summary
    districts: list
    levels: list
    refreshed_at: object = None


# --- cells -------------------------------------------------------------------------------


def topic_offers(topic_name):
    """(channel, offer id) of every newsletter, event and contact tagged with a topic of this name."""
    def tagged(channel, table, column):
        return select(literal(channel), column).join(Topic, Topic.id == table.c.topic_id).where(Topic.name == topic_name)

    return union_all(
        tagged(NEWSLETTER, newsletter_topics, newsletter_topics.c.newsletter_id),
        tagged(EVENT, event_topics, event_topics.c.event_id),
        tagged(CONTACT, contact_topics, contact_topics.c.contact_id),
    )


def _bucket_condition(model, first, last):
    """Rows of `model` (Rollup or DistrictRollup) in the fewest buckets that cover first … last exactly."""
    parts = []
    for tier, ranges in rollup.decompose(first, last).items():
        if not ranges:
            continue
        if tier == rollup.DAY:
            parts.append(and_(model.tier == tier, or_(*(model.start.between(a, b) for a, b in ranges))))
        else:
            parts.append(and_(model.tier == tier, model.start.in_([a for a, _b in ranges])))
    return or_(*parts)


def _from_rollup(filters, district_keys):
    conditions = [_bucket_condition(Rollup, filters.first, filters.last)]
    if filters.channels:
        conditions.append(Rollup.channel.in_(sorted(filters.channel_numbers)))
    if district_keys is not None:
        conditions.append(Rollup.district_key.in_(district_keys))
    return select(
        Rollup.municipality_ags, Rollup.level, func.min(Rollup.first_day), func.max(Rollup.last_day),
        func.sum(Rollup.touches),
    ).where(*conditions).group_by(Rollup.municipality_ags, Rollup.level)


def _touch_conditions(touches, filters, district_keys):
    """Period, channel, topic and district conditions on a touch table (the log, or the raw union)."""
    conditions = [touches.day >= filters.first, touches.day <= filters.last]
    if filters.channels:
        conditions.append(touches.channel.in_(sorted(filters.channel_numbers)))
    if filters.topic:
        conditions.append(tuple_(touches.channel, touches.offer_id).in_(select(topic_offers(filters.topic).subquery())))
    if district_keys is not None:
        conditions.append(touches.district_key.in_(district_keys))
    return conditions


def raw_touches(filters, district_keys=None):
    """The touches of the period straight from the raw rows, as a subquery shaped like the touch log."""
    return union_all(*touch_sources((filters.first, filters.last), district_keys)).subquery("raw_touches")


def _grouped(touches, filters, district_keys):
    return select(
        touches.municipality_ags, touches.level, func.min(touches.day), func.max(touches.day), func.count(),
    ).where(*_touch_conditions(touches, filters, district_keys)).group_by(touches.municipality_ags, touches.level)


def cells(filters, district_keys=None, source="rollup"):
    """{ags: {level: Cell}} for the period and filters, from the rollup (or "raw" rows)."""
    if source == "raw":
        query = _grouped(raw_touches(filters, district_keys).c, filters, district_keys)
    elif filters.topic:
        query = _grouped(Touch.__table__.c, filters, district_keys)
    else:
        query = _from_rollup(filters, district_keys)
    result = {}
    for ags, level, first, last, touches in db.session.execute(query):
        result.setdefault(ags, {})[level] = Cell(_as_date(first), _as_date(last), int(touches))
    return result


def _as_date(value):
    # A MIN() over a union of raw rows comes back as text on SQLite.
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def people(filters, district_keys, source="rollup"):
    """{(ags, level): distinct people} of the behavioural levels, for the minimum cell size."""
    touches = raw_touches(filters, district_keys).c if source == "raw" else Touch.__table__.c
    query = select(touches.municipality_ags, touches.level, func.count(touches.person.distinct())).where(
        touches.level.in_(sorted(BEHAVIOURAL)), *_touch_conditions(touches, filters, district_keys),
    ).group_by(touches.municipality_ags, touches.level)
    return {(ags, level): int(count) for ags, level, count in db.session.execute(query)}


def listed(last_day, district_keys=None):
    """Municipalities with at least one active subscriber at the end of `last_day` (Europe/Berlin).

    Active then: active now and subscribed before, or left the list only
    afterwards (the status change is later than the day). Erased people are
    gone and count nowhere. One EXISTS per municipality: it stops at the
    first such subscriber (index on status and municipality).
    """
    _, end = utc_bounds(last_day, last_day)
    joined = func.coalesce(Subscriber.consent_confirmed_at, Subscriber.created_at)
    someone = select(Subscriber.id).where(
        Subscriber.municipality_ags == Municipality.ags,
        or_(and_(Subscriber.status.in_(ACTIVE_STATES), joined < end),
            and_(Subscriber.status.in_(LEFT_STATES), Subscriber.status_changed_at >= end, joined < end)),
    ).exists()
    query = select(Municipality.ags).where(someone)
    if district_keys is not None:
        query = query.where(Municipality.district_key.in_(district_keys))
    return set(db.session.execute(query).scalars())


# --- summaries ------------------------------------------------------------------------------


def _highest(levels):
    ladder = [level.number for level in LEVELS]
    return max(levels, key=ladder.index) if levels else None


def summarise(municipality_cells, total, listed_set, levels):
    """Headlines, ladder and last activity of a set of municipalities."""
    summary = Summary(total=total, listed=len(listed_set), ladder=dict.fromkeys(levels, 0))
    for by_level in municipality_cells.values():
        for level in by_level:
            summary.ladder[level] = summary.ladder.get(level, 0) + 1
        summary.reached += bool(REACHED & by_level.keys())
        summary.active += bool(ACTIVE & by_level.keys())
        last = max(cell.last for cell in by_level.values())
        summary.last = max(summary.last or last, last)
    return summary


def months(filters, municipality_cells):
    """Municipalities first reached (per headline) in each month of the period, and cumulatively."""
    firsts = {"reached": [], "active": []}
    for by_level in municipality_cells.values():
        for name, headline in (("reached", REACHED), ("active", ACTIVE)):
            days = [cell.first for level, cell in by_level.items() if level in headline]
            if days:
                firsts[name].append(min(days))
    result = []
    start = filters.first.replace(day=1)
    totals = {"reached": 0, "active": 0}
    while start <= filters.last:
        following = rollup.next_month(start)
        new = {name: sum(1 for day in days if start <= day < following) for name, days in firsts.items()}
        for name in totals:
            totals[name] += new[name]
        result.append(Month(start, new, dict(totals)))
        start = following
    return result


def _rows(district_key, municipality_cells, listed_set):
    municipalities = sorted_by_name(db.session.execute(
        select(Municipality.ags, Municipality.name).where(Municipality.district_key == district_key)
    ).all(), lambda row: row[1])
    rows = []
    for ags, name in municipalities:
        by_level = municipality_cells.get(ags, {})
        rows.append(MunicipalityRow(
            ags=ags, name=name, cells=by_level, listed=ags in listed_set,
            reached=bool(REACHED & by_level.keys()), active=bool(ACTIVE & by_level.keys()),
            highest=_highest(list(by_level)),
        ))
    return rows


def suppress(rows, people_by_cell, minimum):
    """Hide per-municipality behavioural cells that fewer than `minimum` people stand behind (viewers)."""
    for row in rows:
        for level, cell in row.cells.items():
            if level in BEHAVIOURAL:
                cell.people = people_by_cell.get((row.ags, level), 0)
                cell.suppressed = cell.people < minimum
        shown = [level for level, cell in row.cells.items() if not cell.suppressed]
        row.highest = _highest(shown)
        # "aktiv erreicht" of one municipality would reveal a hidden cell when only hidden cells make it.
        row.active_suppressed = row.active and not (ACTIVE & set(shown))


def min_cell():
    return current_app.config["REACH_MIN_CELL"]


# --- reports ----------------------------------------------------------------------------------


def district_report(district, filters, for_viewer=False, source="rollup"):
    """The district page's figures. Brings the district's rollup up to date first (the caller commits)."""
    if source == "rollup":
        rollup.refresh([district.key])
    keys = [district.key]
    municipality_cells = cells(filters, keys, source)
    listed_set = listed(filters.last, keys)
    rows = _rows(district.key, municipality_cells, listed_set)
    levels = levels_for(filters.channel_numbers)
    total = len(rows)
    known = {row.ags for row in rows}
    in_directory = {ags: by_level for ags, by_level in municipality_cells.items() if ags in known}
    summary = summarise(in_directory, total, listed_set & known, levels)
    if for_viewer:
        suppress(rows, people(filters, keys, source), min_cell())
    return DistrictReport(district, filters, summary, rows, months(filters, in_directory), levels,
                          rollup.last_refreshed())


def state_report(filters, district_keys=None, source="rollup"):
    """All visible districts' figures and the state's. Brings the rollup up to date first (the caller commits)."""
    if source == "rollup":
        rollup.refresh(district_keys)
    query = select(District).order_by(District.name, District.kind)
    if district_keys is not None:
        query = query.where(District.key.in_(district_keys))
    districts = sorted(db.session.execute(query).scalars(), key=lambda d: (german_key(d.name), d.kind))
    keys = [district.key for district in districts]
    totals = dict(db.session.execute(
        select(Municipality.district_key, func.count()).where(Municipality.district_key.in_(keys))
        .group_by(Municipality.district_key)
    ).all())
    listed_by_district = {}
    for ags in listed(filters.last, district_keys):
        listed_by_district.setdefault(ags[:5], set()).add(ags)
    levels = levels_for(filters.channel_numbers)
    if source == "rollup" and not filters.topic:
        summaries = _district_summaries(filters, district_keys, totals, listed_by_district, levels)
    else:
        by_district = {}
        for ags, by_level in cells(filters, district_keys, source).items():
            by_district.setdefault(ags[:5], {})[ags] = by_level
        summaries = {key: summarise(own, totals.get(key, 0), listed_by_district.get(key, set()), levels)
                     for key, own in by_district.items()}
    lines = [DistrictLine(district, summaries.get(district.key) or summarise(
        {}, totals.get(district.key, 0), listed_by_district.get(district.key, set()), levels)) for district in districts]
    state = _add_up([line.summary for line in lines], levels)
    return StateReport(filters, state, lines, levels, rollup.last_refreshed())


def _district_summaries(filters, district_keys, totals, listed_by_district, levels):
    """Each district's summary from its masks: a municipality counts once however many buckets it is in."""
    conditions = [_bucket_condition(DistrictRollup, filters.first, filters.last)]
    if filters.channels:
        conditions.append(DistrictRollup.channel.in_(sorted(filters.channel_numbers)))
    if district_keys is not None:
        conditions.append(DistrictRollup.district_key.in_(district_keys))
    masks, lasts = {}, {}
    for key, level, mask, last in db.session.execute(
        select(DistrictRollup.district_key, DistrictRollup.level, DistrictRollup.mask, DistrictRollup.last_day)
        .where(*conditions)
    ):
        own = masks.setdefault(key, {})
        own[level] = own.get(level, 0) | mask
        lasts[key] = max(lasts.get(key, last), last)
    summaries = {}
    for key, own in masks.items():
        summary = Summary(total=totals.get(key, 0), listed=len(listed_by_district.get(key, ())),
                          ladder=dict.fromkeys(levels, 0), last=_as_date(lasts[key]))
        for level, mask in own.items():
            summary.ladder[level] = mask.bit_count()
        summary.reached = _union(own, REACHED).bit_count()
        summary.active = _union(own, ACTIVE).bit_count()
        summaries[key] = summary
    return summaries


def _union(masks, levels):
    union = 0
    for level in levels:
        union |= masks.get(level, 0)
    return union


def _add_up(summaries, levels):
    state = Summary(total=sum(s.total for s in summaries), ladder=dict.fromkeys(levels, 0))
    for summary in summaries:
        state.reached += summary.reached
        state.active += summary.active
        state.listed += summary.listed
        for level, count in summary.ladder.items():
            state.ladder[level] = state.ladder.get(level, 0) + count
        if summary.last:
            state.last = max(state.last or summary.last, summary.last)
    return state


def district_summary(district_key, filters):
    """Headlines and ladder of one district (the dashboard's figures). The caller commits."""
    rollup.refresh([district_key])
    keys = [district_key]
    total = db.session.execute(
        select(func.count()).select_from(Municipality).where(Municipality.district_key == district_key)
    ).scalar_one()
    return summarise(cells(filters, keys), total, listed(filters.last, keys), levels_for(filters.channel_numbers))


def listed_count(district_key, day=None):
    """Municipalities of the district with at least one active subscriber (today, or at the end of `day`)."""
    from reach.definition import berlin_today

    return len(listed(day or berlin_today(), [district_key]))


def offer_reach(channel, offer_id, district_key):
    """What one newsletter or event reached, over all time: {"levels": {level: n}, "reached": n, "active": n}.

    Municipalities, from the same touches as every other figure. The caller commits.
    """
    rollup.refresh([district_key])
    rows = db.session.execute(
        select(Touch.level, Touch.municipality_ags).where(Touch.channel == channel, Touch.offer_id == offer_id)
        .distinct()
    ).all()
    by_level = {}
    for level, ags in rows:
        by_level.setdefault(level, set()).add(ags)
    reached = set().union(*(by_level.get(level, set()) for level in REACHED))
    active = set().union(*(by_level.get(level, set()) for level in ACTIVE))
    return {"levels": {level: len(ags) for level, ags in by_level.items()}, "reached": len(reached),
            "active": len(active)}


# --- what stands behind a number ------------------------------------------------------------


@dataclass
class OfferLine:
    level: int
    channel: int
    offer_id: int
    touches: int
    people: int
    first: date
    last: date
    title: str = ""
    suppressed: bool = False


def municipality_offers(municipality, filters):
    """The newsletters, events and contacts behind each level of one municipality in the period."""
    rollup.refresh([municipality.district_key])
    touches = Touch.__table__.c
    query = select(
        touches.level, touches.channel, touches.offer_id, func.count(), func.count(touches.person.distinct()),
        func.min(touches.day), func.max(touches.day),
    ).where(touches.municipality_ags == municipality.ags,
            *_touch_conditions(touches, filters, None)).group_by(touches.level, touches.channel, touches.offer_id)
    lines = [OfferLine(*row) for row in db.session.execute(query)]
    _name_offers(lines)
    order = [level.number for level in LEVELS]
    return sorted(lines, key=lambda line: (order.index(line.level), line.last), reverse=False)


def _name_offers(lines):
    from events.models import Event
    from newsletter.models import Newsletter
    from reach.models import Contact

    for channel, model, title in ((NEWSLETTER, Newsletter, Newsletter.subject), (EVENT, Event, Event.title),
                                  (CONTACT, Contact, Contact.kind)):
        ids = {line.offer_id for line in lines if line.channel == channel}
        if not ids:
            continue
        titles = dict(db.session.execute(select(model.id, title).where(model.id.in_(ids))).all())
        for line in lines:
            if line.channel == channel:
                line.title = titles.get(line.offer_id, "")


