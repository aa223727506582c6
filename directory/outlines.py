"""The geometry of a map outline: checking a GeoJSON (Multi)Polygon and storing it compactly.

Browsers draw outlines straight from the stored text, so only what a renderer
can draw goes in: a Polygon or MultiPolygon of closed rings of [longitude,
latitude] in WGS84 degrees. Positions must lie in and around Germany; that
catches swapped latitude/longitude and projected coordinates (Gauss-Krüger,
UTM), the usual mistakes of an export.
"""
import json
import math

from flask_babel import gettext as _

GEOMETRY_TYPES = ("Polygon", "MultiPolygon")
# Germany with a margin, in WGS84 degrees.
LONGITUDE = (5.0, 16.0)
LATITUDE = (47.0, 56.0)


def geometry_problems(geometry):
    """The first reason why `geometry` (parsed GeoJSON) is no drawable outline, as a list; [] when it is one."""
    if not isinstance(geometry, dict):
        return [_("Das Feature hat keine Geometrie.")]
    kind = geometry.get("type")
    if kind not in GEOMETRY_TYPES:
        return [_("Geometrietyp %(type)s statt Polygon oder MultiPolygon.", type=repr(kind))]
    coordinates = geometry.get("coordinates")
    if not isinstance(coordinates, list) or not coordinates:
        return [_("Die Koordinaten fehlen.")]
    polygons = [coordinates] if kind == "Polygon" else coordinates
    for polygon in polygons:
        reason = polygon_problem(polygon)
        if reason:
            return [reason]
    return []


def polygon_problem(polygon):
    if not isinstance(polygon, list) or not polygon:
        return _("Ein Polygon hat keinen Ring.")
    for ring in polygon:
        if not isinstance(ring, list) or len(ring) < 4:
            return _("Ein Ring hat weniger als 4 Punkte.")
        for position in ring:
            reason = position_problem(position)
            if reason:
                return reason
        if ring[0] != ring[-1]:
            return _("Ein Ring ist nicht geschlossen (erster und letzter Punkt verschieden).")
    return None


def position_problem(position):
    if not (isinstance(position, list) and len(position) in (2, 3) and all(map(is_number, position))):
        return _("Die Koordinate %(position)s ist kein Zahlenpaar [Länge, Breite].", position=shorten(position))
    longitude, latitude = position[:2]
    if not (LONGITUDE[0] <= longitude <= LONGITUDE[1] and LATITUDE[0] <= latitude <= LATITUDE[1]):
        return _(
            "Die Koordinate %(position)s liegt nicht in Deutschland; erwartet werden WGS84-Grad "
            "[Länge, Breite] (vertauscht oder projiziert?).", position=shorten(position),
        )
    return None


def is_number(value):
    # bool is an int to Python, and json.loads reads NaN and Infinity.
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def shorten(value):
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "…"


def compact(geometry):
    """The stored text of a checked geometry: type and coordinates only, without spaces."""
    return json.dumps(
        {"type": geometry["type"], "coordinates": geometry["coordinates"]}, separators=(",", ":"), ensure_ascii=False
    )
