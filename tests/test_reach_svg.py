"""The server-rendered SVG figures: well-formed, accessible, CSP-safe, and drawing what they are given."""
import itertools
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from types import SimpleNamespace

import pytest
from markupsafe import Markup

from reach.svg import (
    PALETTE_LEVELS,
    PALETTE_SHARE,
    bar_chart,
    choropleth,
    format_int,
    format_percent,
    monthly_chart,
)

NS = "{http://www.w3.org/2000/svg}"
CLASSES = [("nicht erreicht", PALETTE_LEVELS[0]), ("zugestellt", PALETTE_LEVELS[1]), ("aktiv erreicht", PALETTE_LEVELS[5])]


def square(lon, lat, size=0.2):
    return [[lon, lat], [lon + size, lat], [lon + size, lat + size], [lon, lat + size], [lon, lat]]


def feature(key, name, geometry, cls, **extra):
    return {"key": key, "name": name, "geometry": geometry, "cls": cls, **extra}


FEATURES = [
    feature("08115", "Böblingen", {"type": "Polygon", "coordinates": [square(8.9, 48.6)]}, 2),
    # A ring inside a ring: the hole must be cut out (evenodd).
    feature("08121", "Heilbronn", {"type": "Polygon", "coordinates": [square(9.1, 49.0, 0.4), square(9.2, 49.1, 0.1)]}, 0),
    feature(
        "08335",
        "Konstanz",
        {"type": "MultiPolygon", "coordinates": [[square(8.8, 47.7)], [square(9.1, 47.6, 0.1)]]},
        None,
    ),
]


def render_map(features=FEATURES, **kwargs):
    options = {
        "id": "karte",
        "title": "Erreichte Kreise",
        "description": "2 von 3 Kreisen erreicht.",
        "legend_title": "Stufe",
        "attribution": "© GeoBasis-DE / BKG 2017, Daten verändert",
    }
    return choropleth(features, CLASSES, **(options | kwargs))


def parse(markup):
    assert isinstance(markup, Markup)
    return ET.fromstring(str(markup))


def view_box(root):
    x, y, width, height = map(float, root.get("viewBox").split())
    return x, y, width, height


def by_id(root, id):
    found = root.find(f".//*[@id='{id}']")
    assert found is not None, id
    return found


def tag(element):
    return element.tag.removeprefix(NS)


def title_of(element):
    return element.find(f"{NS}title").text


def path_points(d):
    numbers = [float(n) for n in re.findall(r"-?\d+(?:\.\d+)?", d)]
    return list(zip(numbers[::2], numbers[1::2]))


def assert_accessible(root, id, title, description):
    assert tag(root) == "svg"
    assert root.get("role") == "img"
    assert root.get("aria-labelledby") == f"{id}-title {id}-desc"
    assert root.get("focusable") == "false"
    assert root.get("width") is None and root.get("height") is None
    assert view_box(root)[2] > 0 and view_box(root)[3] > 0
    first, second = list(root)[:2]
    assert (tag(first), first.get("id"), first.text) == ("title", f"{id}-title", title)
    assert (tag(second), second.get("id"), second.text) == ("desc", f"{id}-desc", description)
    for element in root.iter():
        assert tag(element) not in ("style", "script", "foreignObject")
        assert "style" not in element.attrib
        assert not any(name.startswith("on") for name in element.attrib)
    ids = [e.get("id") for e in root.iter() if e.get("id")]
    assert len(ids) == len(set(ids)) and all(i.startswith(f"{id}-") for i in ids)


# --- number formatting ---------------------------------------------------------

@pytest.mark.parametrize(("value", "text"), [(0, "0"), (999, "999"), (1234, "1.234"), (1234567, "1.234.567"), (None, "–")])
def test_format_int_uses_german_thousands_separator(value, text):
    assert format_int(value) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [(0.853, "85,3\u00a0%"), (1, "100,0\u00a0%"), (0, "0,0\u00a0%"), (2 / 3, "66,7\u00a0%"), (None, "–")],
)
def test_format_percent_uses_decimal_comma_and_non_breaking_space(value, text):
    assert format_percent(value) == text


# --- palettes ------------------------------------------------------------------

def luminance(colour):
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    r, g, b = (c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast_with_white(colour):
    return 1.05 / (luminance(colour) + 0.05)


def test_palettes_are_sequential_and_contrast_with_white():
    assert len(PALETTE_LEVELS) == 7 and len(PALETTE_SHARE) == 5
    for palette in (PALETTE_LEVELS, PALETTE_SHARE):
        lum = [luminance(c) for c in palette]
        assert lum == sorted(lum, reverse=True), "light → dark"
        assert all(a / b > 1.25 for a, b in itertools.pairwise(lum)), "neighbouring classes distinguishable"
    neutral = PALETTE_LEVELS[0]
    assert neutral[1:3] == neutral[3:5] == neutral[5:7] and luminance(neutral) > 0.7
    for colour in PALETTE_LEVELS[1:] + PALETTE_SHARE:
        assert contrast_with_white(colour) >= 3


# --- choropleth ------------------------------------------------------------------

def test_map_is_accessible_and_csp_safe():
    assert_accessible(parse(render_map()), "karte", "Erreichte Kreise", "2 von 3 Kreisen erreicht.")


def test_map_draws_one_path_per_feature_with_its_title():
    areas = by_id(parse(render_map()), "karte-areas")
    paths = list(areas.iter(f"{NS}path"))
    assert [title_of(p) for p in paths] == ["Böblingen: aktiv erreicht", "Heilbronn: nicht erreicht", "Konstanz: keine Daten"]
    assert [p.get("fill") for p in paths] == [PALETTE_LEVELS[5], PALETTE_LEVELS[0], "url(#karte-nodata)"]
    assert all(p.get("fill-rule") == "evenodd" for p in paths)
    assert areas.get("stroke") == "#ffffff"


def test_map_uses_the_feature_label_and_accepts_objects():
    district = SimpleNamespace(
        key="08115",
        name="Böblingen",
        cls=2,
        label="aktiv erreicht, 12 Berührungen",
        geometry={"type": "Polygon", "coordinates": [square(8.9, 48.6)]},
    )
    path = by_id(parse(render_map([district])), "karte-areas").find(f"{NS}path")
    assert title_of(path) == "Böblingen: aktiv erreicht, 12 Berührungen"


def test_holes_and_multipolygons_are_drawn_as_subpaths():
    paths = list(by_id(parse(render_map()), "karte-areas").iter(f"{NS}path"))
    subpaths = [p.get("d").count("M") for p in paths]
    assert subpaths == [1, 2, 2]
    assert all(p.get("d").count("Z") == n for p, n in zip(paths, subpaths))


def test_projection_fits_the_viewbox_north_up_with_shrunk_longitude():
    root = parse(render_map())
    _, _, width, height = view_box(root)
    paths = list(by_id(root, "karte-areas").iter(f"{NS}path"))
    for path in paths:
        point = r"\d+(?:\.\d)? \d+(?:\.\d)?"
        assert re.fullmatch(rf"(M{point}(L{point})+Z)+", path.get("d")), "one decimal at most"
        for x, y in path_points(path.get("d")):
            assert 0 <= x <= width and 0 <= y <= height
    boeblingen = path_points(paths[0].get("d"))
    konstanz = path_points(paths[2].get("d"))
    assert max(y for _, y in boeblingen) < min(y for _, y in konstanz), "north is up"
    xs, ys = [x for x, _ in boeblingen], [y for _, y in boeblingen]
    ratio = (max(xs) - min(xs)) / (max(ys) - min(ys))
    assert ratio == pytest.approx(0.66, abs=0.02), "a degree of longitude is cos(48.6°) of one of latitude"


def test_legend_lists_the_classes_and_no_data_only_when_used():
    legend = by_id(parse(render_map()), "karte-legend")
    texts = [t.text for t in legend.iter(f"{NS}text")]
    assert texts == ["Stufe", "nicht erreicht", "zugestellt", "aktiv erreicht", "keine Daten"]
    swatches = [r.get("fill") for r in legend.iter(f"{NS}rect")]
    assert swatches == [c for _, c in CLASSES] + ["url(#karte-nodata)"]

    root = parse(render_map(FEATURES[:2]))
    texts = [t.text for t in by_id(root, "karte-legend").iter(f"{NS}text")]
    assert texts == ["Stufe", "nicht erreicht", "zugestellt", "aktiv erreicht"]
    assert root.find(f".//{NS}pattern") is None


def test_no_data_pattern_is_defined():
    pattern = by_id(parse(render_map()), "karte-nodata")
    assert tag(pattern) == "pattern"
    assert len(list(pattern)) == 2


def test_attribution_is_shown():
    texts = [t.text for t in parse(render_map()).iter(f"{NS}text")]
    assert texts[-1] == "© GeoBasis-DE / BKG 2017, Daten verändert"


def test_links_wrap_the_areas_that_have_a_url():
    def href(key):
        return None if key == "08121" else f"/reach/kreis/{key}?a=1&b=2"

    root = parse(render_map(href=href))
    links = list(by_id(root, "karte-areas").iter(f"{NS}a"))
    assert [a.get("href") for a in links] == ["/reach/kreis/08115?a=1&b=2", "/reach/kreis/08335?a=1&b=2"]
    assert [a.get("aria-label") for a in links] == ["Böblingen: aktiv erreicht", "Konstanz: keine Daten"]
    assert all(len(a.findall(f"{NS}path")) == 1 for a in links)
    assert len(list(by_id(root, "karte-areas").iter(f"{NS}path"))) == 3
    assert "&amp;b=2" in str(render_map(href=href))


def test_text_is_escaped():
    nasty = 'Kreis <b> & "Co" \'x\''
    features = [feature("k", nasty, FEATURES[0]["geometry"], 0, label="<i>&")]
    markup = render_map(features, title=nasty, description=nasty, legend_title=nasty, attribution=nasty, href=lambda k: '"><script>')
    root = parse(markup)
    assert "<b>" not in str(markup) and "<script>" not in str(markup) and "<i>" not in str(markup)
    assert root.find(f"{NS}title").text == nasty
    link = root.find(f".//{NS}a")
    assert link.get("href") == '"><script>' and link.get("aria-label") == f"{nasty}: <i>&"
    assert title_of(link.find(f"{NS}path")) == f"{nasty}: <i>&"
    assert nasty in [t.text for t in root.iter(f"{NS}text")]


def test_map_without_geometry_is_empty():
    assert render_map([]) == Markup("")
    assert render_map([feature("k", "Ohne Umriss", None, 1)]) == Markup("")
    assert isinstance(render_map([]), Markup)


def test_map_skips_features_without_geometry():
    features = FEATURES + [feature("k", "Ohne Umriss", None, 1)]
    assert len(list(by_id(parse(render_map(features)), "karte-areas").iter(f"{NS}path"))) == 3


def test_invalid_class_and_id_are_refused():
    with pytest.raises(ValueError):
        render_map([feature("k", "X", FEATURES[0]["geometry"], 3)])
    with pytest.raises(ValueError):
        render_map(id='x" onload="alert(1)')


def test_map_of_the_44_districts():
    # The outlines ship with the package (directory/data), so this never needs ../shared.
    path = Path(__file__).resolve().parents[1] / "directory" / "data" / "bw_districts.geojson"
    collection = json.loads(path.read_text(encoding="utf-8"))
    features = [
        feature(f["properties"]["district_key"], f["properties"]["district_key"], f["geometry"], i % len(CLASSES))
        for i, f in enumerate(collection["features"])
    ]
    markup = render_map(features, href=lambda key: f"/reach/kreis/{key}")
    root = parse(markup)
    assert_accessible(root, "karte", "Erreichte Kreise", "2 von 3 Kreisen erreicht.")
    paths = list(by_id(root, "karte-areas").iter(f"{NS}path"))
    assert len(paths) == 44
    assert len(markup.encode()) < 200_000
    _, _, width, height = view_box(root)
    assert all(0 <= x <= width and 0 <= y <= height for p in paths for x, y in path_points(p.get("d")))


# --- bar chart -------------------------------------------------------------------

LADDER = [("zugestellt", 26, "26 von 26 (100,0 %)"), ("geöffnet", 18, "18 von 26 (69,2 %)"), ("Kontakt", 0, "0 von 26 (0,0 %)")]


def render_bars(bars=LADDER, **kwargs):
    options = {"id": "leiter", "title": "Leiter", "description": "Stufen", "max_value": 26, "value_label": "Kreise"}
    return bar_chart(bars, **(options | kwargs))


def bar_rects(root):
    return [r for g in by_id(root, "leiter-bars") for r in g.iter(f"{NS}rect")]


def test_bar_chart_is_accessible_and_labelled():
    root = parse(render_bars())
    assert_accessible(root, "leiter", "Leiter", "Stufen")
    assert [title_of(r) for r in bar_rects(root)] == [f"{label}: {text}" for label, _, text in LADDER]
    texts = [t.text for t in root.iter(f"{NS}text")]
    assert all(label in texts and text in texts for label, _, text in LADDER)
    assert "Kreise" in texts


def test_bar_widths_are_proportional():
    widths = [float(r.get("width")) for r in bar_rects(parse(render_bars()))]
    assert widths[1] / widths[0] == pytest.approx(18 / 26, abs=0.01)
    assert widths[2] == 0
    clamped = [float(r.get("width")) for r in bar_rects(parse(render_bars([("x", 40, "40"), ("y", 26, "26")])))]
    assert clamped[0] == clamped[1]


def test_bar_text_follows_its_bar():
    root = parse(render_bars())
    for group in by_id(root, "leiter-bars"):
        rect, label_text = group.find(f"{NS}rect"), group.findall(f"{NS}text")[1]
        assert float(label_text.get("x")) > float(rect.get("x")) + float(rect.get("width"))


def test_empty_bar_chart():
    assert render_bars([]) == Markup("")


# --- monthly chart -------------------------------------------------------------------

def months(n):
    return [f"{i % 12 + 1:02d}.{2026 + i // 12}" for i in range(n)]


def render_monthly(n=3, series=None, **kwargs):
    series = series or [
        {"name": "erreicht", "colour": PALETTE_SHARE[2], "new": [6, 2, 4][:n], "cumulative_share": [0.2308, 0.3077, 0.4615][:n]},
        {"name": "aktiv", "colour": "#b35806", "new": [1, 0, 3][:n], "cumulative_share": [0.0385, 0.0385, 0.1538][:n]},
    ]
    options = {"id": "verlauf", "title": "Verlauf", "description": "Je Monat", "y_max": 6}
    return monthly_chart(months(n), series, **(options | kwargs))


def test_monthly_chart_is_accessible():
    assert_accessible(parse(render_monthly()), "verlauf", "Verlauf", "Je Monat")


def test_monthly_chart_has_one_column_group_per_month():
    groups = list(by_id(parse(render_monthly()), "verlauf-columns"))
    assert len(groups) == 3
    assert [len(g.findall(f"{NS}rect")) for g in groups] == [2, 2, 2]
    assert title_of(groups[2][0]) == "03.2026 – erreicht: 4 neu, kumuliert 46,2\u00a0%"
    assert title_of(groups[2][1]) == "03.2026 – aktiv: 3 neu, kumuliert 15,4\u00a0%"
    heights = [float(g[0].get("height")) for g in groups]
    assert heights[1] / heights[0] == pytest.approx(2 / 6, abs=0.01)


def test_monthly_chart_draws_the_cumulative_points():
    root = parse(render_monthly())
    first, second = by_id(root, "verlauf-line0"), by_id(root, "verlauf-line1")
    assert len(first.findall(f"{NS}circle")) == 3 and len(second.findall(f"{NS}rect")) == 3
    assert title_of(first.findall(f"{NS}circle")[2]) == "03.2026 – erreicht: kumuliert 46,2\u00a0%"
    line = first.findall(f"{NS}polyline")[-1]
    ys = [float(p.split(",")[1]) for p in line.get("points").split()]
    assert ys == sorted(ys, reverse=True), "a growing share rises"
    assert second.findall(f"{NS}polyline")[-1].get("stroke-dasharray"), "series differ by more than colour"


def test_monthly_chart_legend_and_axes_name_everything():
    root = parse(render_monthly())
    legend = [t.text for t in by_id(root, "verlauf-legend").iter(f"{NS}text")]
    assert legend == ["erreicht – neu erreicht", "erreicht – Anteil kumuliert", "aktiv – neu erreicht", "aktiv – Anteil kumuliert"]
    axes = [t.text for t in by_id(root, "verlauf-axes").iter(f"{NS}text")]
    assert {"0", "2", "4", "6", "0\u00a0%", "100\u00a0%", "01.2026", "03.2026"} <= set(axes)
    assert "neu erreicht (Anzahl)" in axes and "Anteil kumuliert" in axes


def test_monthly_chart_with_one_series_and_a_gap():
    series = [{"name": "erreicht", "colour": "#00628c", "new": [1, 0, 2, 1], "cumulative_share": [0.1, None, 0.3, 0.4]}]
    root = parse(render_monthly(4, series, y_max=2))
    line = by_id(root, "verlauf-line0")
    assert len(line.findall(f"{NS}circle")) == 3
    assert root.find(f".//{NS}pattern") is None
    assert len(list(by_id(root, "verlauf-columns"))) == 4


@pytest.mark.parametrize("n", [1, 12, 13, 60])
def test_monthly_chart_scales_to_many_months(n):
    series = [
        {"name": "erreicht", "colour": "#00628c", "new": [i % 7 for i in range(n)], "cumulative_share": [i / n for i in range(n)]},
        {"name": "aktiv", "colour": "#b35806", "new": [i % 3 for i in range(n)], "cumulative_share": [i / n / 2 for i in range(n)]},
    ]
    root = parse(render_monthly(n, series, y_max=6))
    groups = list(by_id(root, "verlauf-columns"))
    assert len(groups) == n
    assert all(title_of(r).startswith(m) for g, m in zip(groups, months(n)) for r in g)
    _, _, width, height = view_box(root)
    for element in root.iter():
        for name in ("x", "y", "cx", "cy"):
            if element.get(name) is not None:
                limit = height if name.endswith("y") else width
                assert 0 <= float(element.get(name)) <= limit
    labels = [t for t in by_id(root, "verlauf-axes").iter(f"{NS}text") if re.fullmatch(r"\d\d\.\d{4}", t.text)]
    if n > 12:
        assert all(t.get("transform", "").startswith("rotate(") for t in labels)
        assert labels[0].text == "01.2026" and len(labels) <= 24
    else:
        assert len(labels) == n


def test_monthly_chart_without_months_is_empty():
    assert monthly_chart([], [], id="v", title="t", description="d", y_max=5) == Markup("")
    assert monthly_chart(["01.2026"], [], id="v", title="t", description="d", y_max=5) == Markup("")


def test_monthly_chart_refuses_series_of_the_wrong_length():
    with pytest.raises(ValueError):
        render_monthly(3, [{"name": "x", "colour": "#000000", "new": [1], "cumulative_share": [0.1, 0.2, 0.3]}])
