"""Reading the directory: the districts a user may see, their municipalities."""
from sqlalchemy import func, select

from core.extensions import db
from directory.models import District, Municipality


def districts_with_counts():
    """The visible districts, each with `municipality_count` set, ordered by name."""
    rows = db.session.execute(
        select(District, func.count(Municipality.ags))
        .outerjoin(Municipality, Municipality.district_key == District.key)
        .group_by(District.key)
        .order_by(District.name)
    ).all()
    for district, count in rows:
        district.municipality_count = count
    return [district for district, _ in rows]
