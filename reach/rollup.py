"""Keeping the touches and their rollup current: `refresh` for what changed, `rebuild` for everything.

The triggers (`reach.triggers`) mark a district's UTC day dirty in the
transaction of every raw change. `refresh` takes the marks (DELETE …
RETURNING, so two refreshers never take the same mark), recomputes the
touches of the Berlin days they cover from the raw rows, and then the day,
month and year buckets of the rollup that contain those days. The workers'
reconciler calls it every few seconds, and every report calls it for its
districts first, so figures are exact when read. A failed refresh rolls
back with its marks, which stay for the next one.

`rebuild` recomputes everything from the raw rows in one transaction
(`flask reach rebuild`).
"""
from datetime import date, timedelta

from sqlalchemy import BigInteger, delete, func, insert, literal, select, text

from core.extensions import db
from directory.models import Municipality
from reach.definition import month_start, touch_sources, year_start
from reach.models import (
    DirtyDay,
    DistrictRollup,
    MunicipalityBit,
    RefreshState,
    Rollup,
    Touch,
)
from subscribers.models import utcnow

DAY, MONTH, YEAR = 1, 2, 3
ADVISORY_LOCK = 0x52454143  # "REAC": PostgreSQL advisory lock of the refresh
TOUCH_COLUMNS = ("district_key", "municipality_ags", "level", "channel", "offer_id", "person", "day")
DISTRICT_COLUMNS = ("tier", "start", "district_key", "level", "channel", "mask", "last_day")
MAX_BIT = 62  # masks are signed 64-bit integers
ROLLUP_COLUMNS = ("tier", "start", "municipality_ags", "level", "channel", "district_key", "first_day", "last_day",
                  "touches")


# --- buckets ---------------------------------------------------------------------------


def month_of(day):
    return day.replace(day=1)


def next_month(day):
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)


def runs(days):
    """Contiguous (first, last) runs of a set of days."""
    result = []
    for day in sorted(days):
        if result and result[-1][1] + timedelta(days=1) == day:
            result[-1][1] = day
        else:
            result.append([day, day])
    return [tuple(run) for run in result]


def decompose(first, last):
    """Cover the days first … last with the fewest buckets: {tier: [(start, end), …]}, ends inclusive."""
    buckets = {DAY: [], MONTH: [], YEAR: []}
    day = first
    while day <= last:
        year_end = date(day.year, 12, 31)
        month_end = next_month(day) - timedelta(days=1)
        if (day.month, day.day) == (1, 1) and year_end <= last:
            tier, end = YEAR, year_end
        elif day.day == 1 and month_end <= last:
            tier, end = MONTH, month_end
        else:
            tier, end = DAY, min(last, month_end)
        buckets[tier].append((day, end))
        day = end + timedelta(days=1)
    return buckets


# --- writing touches and buckets -----------------------------------------------------------


def _write_touches(window, district_keys):
    for source in touch_sources(window, district_keys):
        db.session.execute(insert(Touch).from_select(TOUCH_COLUMNS, source))


def _write_buckets(tier, district_key, first, last):
    """Recompute the rollup rows of one tier for the buckets within first … last (bucket-aligned)."""
    start = {DAY: Touch.day, MONTH: month_start(Touch.day), YEAR: year_start(Touch.day)}[tier]
    conditions = [Touch.day >= first, Touch.day <= last]
    if district_key is not None:
        conditions.append(Touch.district_key == district_key)
    db.session.execute(delete(Rollup).where(
        Rollup.tier == tier, Rollup.start >= first, Rollup.start <= last,
        *([Rollup.district_key == district_key] if district_key is not None else []),
    ).execution_options(synchronize_session=False))
    grouped = select(
        literal(tier), start, Touch.municipality_ags, Touch.level, Touch.channel, func.min(Touch.district_key),
        func.min(Touch.day), func.max(Touch.day), func.count(),
    ).where(*conditions).group_by(start, Touch.municipality_ags, Touch.level, Touch.channel)
    db.session.execute(insert(Rollup).from_select(ROLLUP_COLUMNS, grouped))
    _write_district_buckets(tier, district_key, first, last)


def assign_bits(district_keys=None):
    """Give every municipality without one the next free bit of its district (bits are never reused)."""
    query = select(Municipality.ags, Municipality.district_key).outerjoin(
        MunicipalityBit, MunicipalityBit.municipality_ags == Municipality.ags,
    ).where(MunicipalityBit.bit.is_(None)).order_by(Municipality.ags)
    if district_keys is not None:
        query = query.where(Municipality.district_key.in_(sorted(district_keys)))
    missing = db.session.execute(query).all()
    if not missing:
        return
    used = dict(db.session.execute(
        select(MunicipalityBit.district_key, func.max(MunicipalityBit.bit))
        .where(MunicipalityBit.district_key.in_({key for _ags, key in missing}))
        .group_by(MunicipalityBit.district_key)
    ).all())
    for ags, key in missing:
        used[key] = used.get(key, -1) + 1
        if used[key] > MAX_BIT:
            raise RuntimeError(f"district {key} has more than {MAX_BIT + 1} municipalities; reach masks can not hold it")
        db.session.add(MunicipalityBit(municipality_ags=ags, district_key=key, bit=used[key]))
    db.session.flush()


def _write_district_buckets(tier, district_key, first, last):
    """The district masks of the rollup rows just written (same tier, range and district)."""
    conditions = [Rollup.tier == tier, Rollup.start >= first, Rollup.start <= last]
    own = [DistrictRollup.district_key == district_key] if district_key is not None else []
    if district_key is not None:
        conditions.append(Rollup.district_key == district_key)
    db.session.execute(delete(DistrictRollup).where(
        DistrictRollup.tier == tier, DistrictRollup.start >= first, DistrictRollup.start <= last, *own,
    ).execution_options(synchronize_session=False))
    # Each (municipality, level, channel) occurs once per bucket, so the sum of distinct bits is their union.
    bit = literal(1, BigInteger).op("<<")(MunicipalityBit.bit)
    grouped = select(
        Rollup.tier, Rollup.start, Rollup.district_key, Rollup.level, Rollup.channel, func.sum(bit),
        func.max(Rollup.last_day),
    ).join(MunicipalityBit, MunicipalityBit.municipality_ags == Rollup.municipality_ags).where(*conditions).group_by(
        Rollup.tier, Rollup.start, Rollup.district_key, Rollup.level, Rollup.channel)
    db.session.execute(insert(DistrictRollup).from_select(DISTRICT_COLUMNS, grouped))


def _recompute(district_key, first, last):
    """Touches of one district's Berlin days first … last, then every bucket containing them."""
    db.session.execute(delete(Touch).where(
        Touch.district_key == district_key, Touch.day >= first, Touch.day <= last,
    ).execution_options(synchronize_session=False))
    _write_touches((first, last), [district_key])
    _write_buckets(DAY, district_key, first, last)
    _write_buckets(MONTH, district_key, month_of(first), next_month(last) - timedelta(days=1))
    _write_buckets(YEAR, district_key, date(first.year, 1, 1), date(last.year, 12, 31))


def _mark_refreshed(**values):
    state = db.session.get(RefreshState, 1)
    if state is None:
        db.session.add(RefreshState(id=1, **values))
    else:
        for name, value in values.items():
            setattr(state, name, value)


def pending_any(district_keys=None):
    query = select(DirtyDay.day).limit(1)
    if district_keys is not None:
        query = query.where(DirtyDay.district_key.in_(sorted(district_keys)))
    return db.session.execute(query).first() is not None


def pending(district_keys=None):
    query = select(func.count()).select_from(DirtyDay)
    if district_keys is not None:
        query = query.where(DirtyDay.district_key.in_(district_keys))
    return db.session.execute(query).scalar_one()


def refresh(district_keys=None):
    """Turn the dirty marks (of these districts; None: all) into touches and buckets. Does not commit.

    Returns the number of (district, day) marks processed.
    """
    claim = delete(DirtyDay)
    if district_keys is not None:
        claim = claim.where(DirtyDay.district_key.in_(sorted(district_keys)))
    if not pending_any(district_keys):
        return 0  # a page view then writes nothing (and takes no write lock)
    if db.engine.dialect.name == "postgresql":
        # One refresher at a time: two recomputing the same day would both insert its touches.
        db.session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK})
    marks = db.session.execute(
        claim.returning(DirtyDay.district_key, DirtyDay.day).execution_options(synchronize_session=False)
    ).all()
    days_by_district = {}
    for district_key, utc_day in marks:
        # A UTC day holds the end of its own Berlin day and the start of the next.
        days_by_district.setdefault(district_key, set()).update({utc_day, utc_day + timedelta(days=1)})
    assign_bits(sorted(days_by_district))
    for district_key, days in sorted(days_by_district.items()):
        for first, last in runs(days):
            _recompute(district_key, first, last)
    if marks:
        _mark_refreshed(refreshed_at=utcnow())
    return len(marks)


def rebuild():
    """Recompute every touch and bucket from the raw rows. Does not commit; returns the number of touches."""
    if db.engine.dialect.name == "postgresql":
        db.session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK})
    db.session.execute(delete(DirtyDay))
    db.session.execute(delete(DistrictRollup))
    db.session.execute(delete(Rollup))
    db.session.execute(delete(Touch))
    assign_bits()
    _write_touches(None, None)
    bounds = db.session.execute(select(func.min(Touch.day), func.max(Touch.day))).one()
    if bounds[0] is not None:
        first, last = date(bounds[0].year, 1, 1), date(bounds[1].year, 12, 31)
        for tier in (DAY, MONTH, YEAR):
            _write_buckets(tier, None, first, last)
    now = utcnow()
    _mark_refreshed(refreshed_at=now, rebuilt_at=now)
    return db.session.execute(select(func.count()).select_from(Touch)).scalar_one()


def last_refreshed():
    return db.session.execute(select(RefreshState.refreshed_at).where(RefreshState.id == 1)).scalar_one_or_none()

