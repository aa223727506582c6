"""Reading the directory: the districts a user may see, their municipalities, the outlines for maps."""
import json

from sqlalchemy import func, select

from core.collation import sorted_by_name
from core.extensions import db
from directory.models import District, Municipality, Outline


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
    return sorted_by_name(district for district, _ in rows)


def outlines_for_district(district_key):
    """The outlines of a district's municipalities and unincorporated areas, by key; [] when none are loaded.

    Each is {"key", "name", "kind", "geometry"} with the GeoJSON geometry
    parsed. Names are the directory's where it has the row (the table next to
    the map shows the same), else the name stored with the outline.
    """
    rows = db.session.execute(
        select(Outline, Municipality.name)
        .outerjoin(Municipality, Municipality.ags == Outline.key)
        .where(Outline.district_key == district_key, Outline.kind.in_(("municipality", "area")))
        .order_by(Outline.key)
    ).all()
    return [outline_dict(outline, name) for outline, name in rows]


def district_outlines():
    """The districts' outlines, by key; [] when none are loaded.

    Outlines are public geodata, so this is every district, also for a
    coordinator; a district outside their scope keeps the name stored with
    its outline ("Landkreis Böblingen").
    """
    rows = db.session.execute(
        select(Outline, District)
        .outerjoin(District, District.key == Outline.key)
        .where(Outline.kind == "district")
        .order_by(Outline.key)
    ).all()
    return [outline_dict(outline, district.display_name if district else None) for outline, district in rows]


def outline_dict(outline, name=None):
    return {"key": outline.key, "name": name or outline.name, "kind": outline.kind,
            "geometry": json.loads(outline.geometry)}
