"""Accessible SVG figures rendered on the server: choropleth map, bar chart, monthly chart.

The pages run under a Content-Security-Policy without 'unsafe-inline', so the
figures use presentation attributes only (no style attribute, no <style>) and
need no script. Each figure is inlined into the page as Markup: role="img",
named by its <title> and <desc>; every data element carries a <title> with the
text a sighted user reads on hover. The pages show the same data as a table,
which stays the primary accessible form.
"""
import math
import re
from collections.abc import Mapping

from markupsafe import Markup, escape

# Sequential, lightness-monotonic teal→purple ramps (CIELAB L* 60 → 14), so the
# order survives any colour-vision deficiency. Every class after the neutral
# "nicht erreicht" has ≥ 3:1 contrast against white (3.2 … 15.6).
PALETTE_LEVELS = ["#e4e4e4", "#619e72", "#00887b", "#007084", "#005581", "#01376e", "#34144a"]
PALETTE_SHARE = ["#619e72", "#00847f", "#006587", "#004278", "#39194e"]

NO_DATA_LABEL = "keine Daten"
TEXT = 'fill="currentColor"'  # text follows the page's colour (also in forced-colours mode)
GREY = "#767676"  # 4.5:1 on white: axes, swatch outlines, hatching
BAR_COLOUR = PALETTE_SHARE[2]
WIDTH = 640
MARGIN = 12
FONT = 14
NBSP = "\u00a0"
_ID = re.compile(r"[A-Za-z][A-Za-z0-9_-]*\Z")


def format_int(n):
    """1234 → "1.234" (German thousands separator); None → "–"."""
    return "–" if n is None else f"{round(n):,}".replace(",", ".")


def format_percent(value):
    """0.853 → "85,3 %" with a non-breaking space; None → "–"."""
    if value is None:
        return "–"
    return f"{value * 100:.1f}".replace(".", ",") + NBSP + "%"


def _n(v):
    """A coordinate with one decimal, without a useless ".0" (keeps maps small)."""
    s = f"{v:.1f}".removesuffix(".0")
    return "0" if s == "-0" else s


def _svg(id, title, description, height, body):
    if not _ID.match(id):
        raise ValueError(f"invalid id prefix: {id!r}")
    return Markup(
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {_n(height)}" role="img" '
        f'aria-labelledby="{id}-title {id}-desc" focusable="false" font-size="{FONT}">'
        f'<title id="{id}-title">{escape(title)}</title><desc id="{id}-desc">{escape(description)}</desc>'
        f"{body}</svg>"
    )


def _text(x, y, content, *attrs):
    extra = "".join(f" {a}" for a in attrs)
    return f'<text x="{_n(x)}" y="{_n(y)}" {TEXT}{extra}>{escape(content)}</text>'


def _hatch(pattern_id, background, line):
    # Diagonal stripes, so that the area differs from its neighbours by more than colour.
    return (
        f'<pattern id="{pattern_id}" width="6" height="6" patternUnits="userSpaceOnUse" '
        f'patternTransform="rotate(45)"><rect width="6" height="6" fill="{escape(background)}"/>'
        f'<path d="M1.5 0V6" stroke="{line}" stroke-width="1.5"/></pattern>'
    )


def _swatch(x, y, fill, label):
    return (
        f'<rect x="{_n(x)}" y="{_n(y - 12)}" width="20" height="14" fill="{escape(fill)}" stroke="{GREY}"/>'
        + _text(x + 28, y, label)
    )


# --- choropleth ------------------------------------------------------------

def _field(feature, name):
    if isinstance(feature, Mapping):
        return feature.get(name)
    return getattr(feature, name, None)


def _polygons(geometry):
    """The polygons (lists of rings) of a Polygon or MultiPolygon; nothing for other types."""
    kind = (geometry or {}).get("type")
    if kind == "Polygon":
        return [geometry["coordinates"]]
    if kind == "MultiPolygon":
        return geometry["coordinates"]
    return []


def _projection(rings, width, max_height):
    """A lon/lat → x/y function fitting all rings into width × max_height, and the height used.

    Equirectangular with x shrunk by cos(mean latitude): at 48° N a degree of
    longitude is only two thirds of a degree of latitude; Baden-Württemberg is
    small enough for this to look right.
    """
    lons = [p[0] for ring in rings for p in ring]
    lats = [p[1] for ring in rings for p in ring]
    west, east, south, north = min(lons), max(lons), min(lats), max(lats)
    k = math.cos(math.radians((south + north) / 2))
    span_x = max((east - west) * k, 1e-9)
    span_y = max(north - south, 1e-9)
    scale = min((width - 2 * MARGIN) / span_x, (max_height - 2 * MARGIN) / span_y)
    offset = (width - span_x * scale) / 2

    def project(lon, lat):
        return offset + (lon - west) * k * scale, MARGIN + (north - lat) * scale

    return project, span_y * scale + 2 * MARGIN


def _path_data(polygons, project):
    parts = []
    for ring in (ring for polygon in polygons for ring in polygon):
        points = []
        for lon, lat, *_ in ring:
            x, y = project(lon, lat)
            point = f"{_n(x)} {_n(y)}"
            if not points or point != points[-1]:  # rounding merges neighbours
                points.append(point)
        if len(points) > 1 and points[0] == points[-1]:
            points.pop()
        if len(points) >= 3:
            parts.append("M" + "L".join(points) + "Z")
    return "".join(parts)


def _area(feature, polygons, project, classes, id, href):
    name, cls = _field(feature, "name") or "", _field(feature, "cls")
    if cls is None:
        fill, class_label = f"url(#{id}-nodata)", NO_DATA_LABEL
    elif 0 <= cls < len(classes):
        class_label, fill = classes[cls]
    else:
        raise ValueError(f"class index {cls!r} of {name!r} outside 0..{len(classes) - 1}")
    text = f"{name}: {_field(feature, 'label') or class_label}"
    path = (
        f'<path d="{_path_data(polygons, project)}" fill="{escape(fill)}" fill-rule="evenodd">'
        f"<title>{escape(text)}</title></path>"
    )
    url = href(_field(feature, "key")) if href else None
    if url:
        return f'<a href="{escape(url)}" aria-label="{escape(text)}">{path}</a>'
    return path


def _map_legend(top, legend_title, entries):
    # Two columns fit labels up to ~30 characters; filled top to bottom so the scale reads in order.
    columns = 2 if max(len(label) for label, _ in entries) <= 30 else 1
    rows = math.ceil(len(entries) / columns)
    col_width = (WIDTH - 2 * MARGIN) / columns
    parts = [_text(MARGIN, top + FONT, legend_title, 'font-weight="bold"')]
    for i, (label, fill) in enumerate(entries):
        col, row = divmod(i, rows)
        parts.append(_swatch(MARGIN + col * col_width, top + FONT + 26 + row * 24, fill, label))
    return "".join(parts), FONT + 26 + rows * 24


def choropleth(features, classes, *, id, title, description, legend_title, attribution, href=None):
    """A map with one <path> per feature, filled by its class; Markup("") without geometry."""
    drawn = [(f, _polygons(_field(f, "geometry"))) for f in features]
    drawn = [(f, polygons) for f, polygons in drawn if polygons]
    rings = [ring for _, polygons in drawn for polygon in polygons for ring in polygon if ring]
    if not rings:
        return Markup("")
    project, map_height = _projection(rings, WIDTH, max_height=800)
    areas = "".join(_area(f, polygons, project, classes, id, href) for f, polygons in drawn)
    entries = list(classes)
    has_no_data = any(_field(f, "cls") is None for f, _ in drawn)
    if has_no_data:
        entries.append((NO_DATA_LABEL, f"url(#{id}-nodata)"))
    legend, legend_height = _map_legend(map_height + 8, legend_title, entries)
    height = map_height + 8 + legend_height + 28
    defs = f"<defs>{_hatch(f'{id}-nodata', '#f2f2f2', GREY)}</defs>" if has_no_data else ""
    body = (
        f'{defs}<g id="{id}-areas" stroke="#ffffff" stroke-width="0.75" stroke-linejoin="round">{areas}</g>'
        f'<g id="{id}-legend">{legend}</g>'
        + _text(MARGIN, height - 10, attribution, 'font-size="11"')
    )
    return _svg(id, title, description, height, body)


# --- bar chart ---------------------------------------------------------------

def _text_width(strings, per_char, limit):
    """A rough width for a text column; SVG cannot measure text on the server."""
    return min(limit, max((len(s) for s in strings), default=0) * per_char + 8)


def bar_chart(bars, *, id, title, description, max_value, value_label):
    """Horizontal bars (label, value, text): bar length value / max_value, text after the bar."""
    if not bars:
        return Markup("")
    max_value = max(max_value, 1)
    label_width = _text_width([b[0] for b in bars], 8, 240)
    text_width = _text_width([b[2] for b in bars], 7.5, 200)
    x0 = MARGIN + label_width
    span = WIDTH - x0 - text_width - MARGIN
    parts = []
    for i, (label, value, text) in enumerate(bars):
        y = MARGIN + i * 28
        width = span * min(max(value or 0, 0), max_value) / max_value
        parts.append(
            "<g>" + _text(x0 - 8, y + 14, label, 'text-anchor="end"')
            + f'<rect x="{_n(x0)}" y="{_n(y)}" width="{_n(width)}" height="18" fill="{BAR_COLOUR}">'
            f"<title>{escape(label)}: {escape(text)}</title></rect>"
            + _text(x0 + width + 6, y + 14, text) + "</g>"
        )
    bottom = MARGIN + len(bars) * 28
    axis = (
        f'<path d="M{_n(x0)} {MARGIN - 4}V{_n(bottom + 4)}H{_n(x0 + span)}" fill="none" stroke="{GREY}"/>'
        + _text(x0, bottom + 20, "0", 'text-anchor="middle"')
        + _text(x0 + span, bottom + 20, format_int(max_value), 'text-anchor="middle"')
        + _text(x0 + span / 2, bottom + 20, value_label, 'text-anchor="middle"')
    )
    body = f'<g id="{id}-bars">{"".join(parts)}</g><g id="{id}-axis">{axis}</g>'
    return _svg(id, title, description, bottom + 32, body)


# --- monthly chart -------------------------------------------------------------

PLOT_LEFT, PLOT_RIGHT, PLOT_TOP, PLOT_HEIGHT = 64, WIDTH - 64, 16, 240


def _nice_step(top, max_ticks=5):
    for magnitude in (10**e for e in range(10)):
        for factor in (1, 2, 5):
            if top / (factor * magnitude) <= max_ticks:
                return factor * magnitude
    return 10**10


def _y_axes(top):
    bottom = PLOT_TOP + PLOT_HEIGHT
    parts = []
    step = _nice_step(top)
    for tick in range(0, top + 1, step):
        y = bottom - PLOT_HEIGHT * tick / top
        parts.append(f'<path d="M{PLOT_LEFT} {_n(y)}H{PLOT_RIGHT}" stroke="#d0d0d0"/>')
        parts.append(_text(PLOT_LEFT - 6, y + 5, format_int(tick), 'text-anchor="end"'))
    for pct in range(0, 101, 25):
        y = bottom - PLOT_HEIGHT * pct / 100
        parts.append(f'<path d="M{PLOT_RIGHT} {_n(y)}h5" stroke="{GREY}"/>')
        parts.append(_text(PLOT_RIGHT + 8, y + 5, f"{pct}{NBSP}%"))
    parts.append(f'<path d="M{PLOT_LEFT} {PLOT_TOP}V{bottom}H{PLOT_RIGHT}V{PLOT_TOP}" fill="none" stroke="{GREY}"/>')
    middle = PLOT_TOP + PLOT_HEIGHT / 2
    parts.append(_text(16, middle, "neu erreicht (Anzahl)", 'text-anchor="middle"', f'transform="rotate(-90 16 {_n(middle)})"'))
    parts.append(_text(WIDTH - 12, middle, "Anteil kumuliert", 'text-anchor="middle"', f'transform="rotate(90 {WIDTH - 12} {_n(middle)})"'))
    return "".join(parts)


def _month_labels(months, slot):
    # Labels that do not fit side by side are rotated, and thinned out when even that is too tight.
    rotate = max(len(m) for m in months) * 7 > slot
    step = math.ceil(22 / slot) if rotate else 1
    y = PLOT_TOP + PLOT_HEIGHT + 18
    parts = []
    for i in range(0, len(months), step):
        x = PLOT_LEFT + (i + 0.5) * slot
        if rotate:
            parts.append(_text(x + 4, y - 4, months[i], 'text-anchor="end"', f'transform="rotate(-45 {_n(x + 4)} {_n(y - 4)})"'))
        else:
            parts.append(_text(x, y, months[i], 'text-anchor="middle"'))
    return "".join(parts), (60 if rotate else 28)


def _column_fill(id, index, colour):
    return f"url(#{id}-s{index})" if index else escape(colour)


def _columns(months, series, top, slot, id):
    group_width = slot * 0.7
    col_width = group_width / len(series)
    bottom = PLOT_TOP + PLOT_HEIGHT
    groups = []
    for i, month in enumerate(months):
        rects = []
        for j, s in enumerate(series):
            new = s["new"][i] or 0
            height = PLOT_HEIGHT * min(new, top) / top
            x = PLOT_LEFT + i * slot + (slot - group_width) / 2 + j * col_width
            label = f"{month} – {s['name']}: {format_int(new)} neu, kumuliert {format_percent(s['cumulative_share'][i])}"
            rects.append(
                f'<rect x="{_n(x)}" y="{_n(bottom - height)}" width="{_n(col_width)}" height="{_n(height)}" '
                f'fill="{_column_fill(id, j, s["colour"])}"><title>{escape(label)}</title></rect>'
            )
        groups.append(f"<g>{''.join(rects)}</g>")
    return f'<g id="{id}-columns">{"".join(groups)}</g>'


def _marker(index, x, y, colour, size=3.5, label=None):
    # Second series: squares and a dashed line, so the series differ by shape, not only colour.
    title = f"<title>{escape(label)}</title>" if label else ""
    if index:
        return (
            f'<rect x="{_n(x - size)}" y="{_n(y - size)}" width="{_n(2 * size)}" height="{_n(2 * size)}" '
            f'fill="{colour}" stroke="#ffffff">{title}</rect>'
        )
    return f'<circle cx="{_n(x)}" cy="{_n(y)}" r="{_n(size)}" fill="{colour}" stroke="#ffffff">{title}</circle>'


def _line(index, points, colour):
    # A white halo keeps the line visible where it crosses columns of the same colour.
    dash = ' stroke-dasharray="6 3"' if index else ""
    coords = " ".join(f"{_n(x)},{_n(y)}" for x, y in points)
    return (
        f'<polyline points="{coords}" fill="none" stroke="#ffffff" stroke-width="5"/>'
        f'<polyline points="{coords}" fill="none" stroke="{colour}" stroke-width="2.5"{dash}/>'
    )


def _share_lines(months, series, slot, id):
    bottom = PLOT_TOP + PLOT_HEIGHT
    groups = []
    for j, s in enumerate(series):
        colour = escape(s["colour"])
        segments, markers = [[]], []
        for i, (month, share) in enumerate(zip(months, s["cumulative_share"])):
            if share is None:  # a gap in the data is a gap in the line
                segments.append([])
                continue
            x, y = PLOT_LEFT + (i + 0.5) * slot, bottom - PLOT_HEIGHT * min(max(share, 0), 1)
            segments[-1].append((x, y))
            label = f"{month} – {s['name']}: kumuliert {format_percent(share)}"
            markers.append(_marker(j, x, y, colour, min(3.5, slot / 3), label))
        lines = "".join(_line(j, points, colour) for points in segments if points)
        groups.append(f'<g id="{id}-line{j}">{lines}{"".join(markers)}</g>')
    return "".join(groups)


def _series_legend(series, top, id):
    parts = []
    for j, s in enumerate(series):
        y = top + 14 + j * 24
        colour = escape(s["colour"])
        parts.append(_swatch(PLOT_LEFT, y, _column_fill(id, j, s["colour"]), f"{s['name']} – neu erreicht"))
        x = PLOT_LEFT + (PLOT_RIGHT - PLOT_LEFT) / 2
        parts.append(_line(j, [(x, y - 5), (x + 24, y - 5)], colour) + _marker(j, x + 12, y - 5, colour))
        parts.append(_text(x + 32, y, f"{s['name']} – Anteil kumuliert"))
    return f'<g id="{id}-legend">{"".join(parts)}</g>', 14 + len(series) * 24


def monthly_chart(months, series, *, id, title, description, y_max):
    """Columns of newly reached per month (left axis) and the cumulative share as a line (right axis)."""
    if not months or not series:
        return Markup("")
    for s in series:
        if len(s["new"]) != len(months) or len(s["cumulative_share"]) != len(months):
            raise ValueError(f"series {s['name']!r} needs one value per month")
    step = _nice_step(max(y_max, 1))
    top = step * math.ceil(max(y_max, 1) / step)  # the axis ends on a tick
    slot = (PLOT_RIGHT - PLOT_LEFT) / len(months)
    labels, labels_height = _month_labels(months, slot)
    legend_top = PLOT_TOP + PLOT_HEIGHT + labels_height
    legend, legend_height = _series_legend(series, legend_top, id)
    patterns = "".join(_hatch(f"{id}-s{j}", s["colour"], "#ffffff") for j, s in enumerate(series) if j)
    body = (
        (f"<defs>{patterns}</defs>" if patterns else "")
        + f'<g id="{id}-axes">{_y_axes(top)}{labels}</g>'
        + _columns(months, series, top, slot, id)
        + _share_lines(months, series, slot, id)
        + legend
    )
    return _svg(id, title, description, legend_top + legend_height + 8, body)
