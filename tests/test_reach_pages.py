"""The reach pages, exports and their figures, as coordinators, viewers and another district's coordinator see them."""
import csv
import io
import re
import xml.etree.ElementTree as ET

import pytest

from core.extensions import db
from tests.reach_history import A, B, C, D, build_known_history

PERIOD = "?zeitraum=frei&von=2026-01-01&bis=2026-12-01"
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture
def history(app):
    return build_known_history()


@pytest.fixture
def coordinator(history, make_user, sign_in):
    return sign_in(make_user())


def svg_of(html, id):
    match = re.search(r'<svg[^>]*aria-labelledby="%s-title %s-desc".*?</svg>' % (id, id), html, re.S)
    assert match, f"no SVG {id}"
    return ET.fromstring(match.group(0))


def table_rows(html, id):
    match = re.search(r'<table[^>]*id="%s".*?</table>' % id, html, re.S)
    assert match, f"no table {id}"
    body = match.group(0).split("<tbody>")[1]
    return [[re.sub(r"[ \t\r\n]+", " ", re.sub(r"<[^>]+>", " ", cell)).strip() for cell in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)]
            for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S)]


def test_district_page(coordinator):
    response = coordinator.get("/d/08115/reichweite" + PERIOD)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "4 von 4 (100,0\u00a0%)" in html and "3 von 4 (75,0\u00a0%)" in html
    ladder = table_rows(html, "ladder-table")
    assert [row[:2] for row in ladder] == [["zugestellt", "3"], ["geöffnet", "2"], ["geklickt", "1"],
                                            ["angemeldet", "1"], ["teilgenommen", "1"], ["Kontakt", "1"]]
    rows = table_rows(html, "municipalities-table")
    assert [row[0] for row in rows] == ["Aidlingen", "Altdorf", "Bondorf", "Deckenpfronn"]
    months = table_rows(html, "months-table")
    assert len(months) == 12 and months[0][:2] == ["01.2026", "2"]


def test_other_district_is_404(history, make_user, sign_in):
    client = sign_in(make_user("k@lkes.de", districts=("08116",)))
    for url in ("/d/08115/reichweite", "/d/08115/reichweite.csv", "/d/08115/reichweite.xlsx",
                f"/d/08115/reichweite/gemeinde/{A}"):
        assert client.get(url).status_code == 404, url
    state = client.get("/reichweite" + PERIOD).get_data(as_text=True)
    assert "Esslingen" in state and "Böblingen" not in table_rows(state, "districts-table").__repr__()


def test_exports(coordinator):
    data = coordinator.get("/d/08115/reichweite.csv" + PERIOD).data
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(data[3:].decode("utf-8")), delimiter=";"))
    assert rows[0][:6] == ["AGS", "Gemeinde", "im Verteiler", "erreicht", "aktiv erreicht", "höchste Stufe"]
    assert [row[0] for row in rows[1:]] == [A, B, C, D]
    xlsx = coordinator.get("/d/08115/reichweite.xlsx" + PERIOD)
    assert xlsx.status_code == 200 and xlsx.data[:2] == b"PK"
    state = coordinator.get("/reichweite.csv" + PERIOD)
    assert state.status_code == 200


def test_bad_filters_answer_400_with_a_message(coordinator):
    response = coordinator.get("/d/08115/reichweite?zeitraum=frei&von=2026-02-30")
    assert response.status_code == 400
    assert "kein gültiges Datum" in response.get_data(as_text=True)
    assert coordinator.get("/d/08115/reichweite.csv?kanal=fax").status_code == 400


def test_municipality_page(coordinator):
    html = coordinator.get(f"/d/08115/reichweite/gemeinde/{A}" + PERIOD).get_data(as_text=True)
    assert "Januar" in html and "Workshop E-Rechnung" in html


def test_api(history, make_user, make_token, client):
    headers = make_token(make_user())
    data = client.get("/api/v1/districts/08115/reach?from=2026-01-01&to=2026-12-01", headers=headers).get_json()
    assert data["totals"]["reached"] == 4 and data["totals"]["active"] == 3 and data["totals"]["municipalities"] == 4
    assert data["totals"]["ladder"] == {"delivered": 3, "opened": 2, "clicked": 1, "registered": 1, "attended": 1,
                                        "contacted": 1}
    rows = {row["ags"]: row for row in data["municipalities"]}
    assert rows[A]["levels"]["opened"] == {"first": "2026-01-16", "last": "2026-02-02", "count": 3,
                                           "suppressed": False}
    assert rows[D]["highest_level"] == "delivered" and len(data["months"]) == 12
    state = client.get("/api/v1/reach?from=2026-01-01&to=2026-12-01&channel=event", headers=headers).get_json()
    assert [line["district"]["key"] for line in state["districts"]] == ["08115"]  # the coordinator's scope
    assert state["totals"]["reached"] == 2
    bad = client.get("/api/v1/districts/08115/reach?from=2026-03-01&to=2026-02-01", headers=headers)
    assert bad.status_code == 422 and "to" in bad.get_json()["errors"]["query"]
    assert client.get("/api/v1/districts/08115/reach?channel=fax", headers=headers).status_code == 422
    assert client.get("/api/v1/districts/08116/reach?from=nonsense", headers=headers).status_code == 404
    assert client.get("/api/v1/districts/08115/reach").status_code == 401


def test_api_for_viewers_suppresses_small_cells(history, make_user, make_token, client):
    headers = make_token(make_user("ministerium@im.bwl.de", role="viewer", districts=()))
    data = client.get("/api/v1/districts/08115/reach?from=2026-01-01&to=2026-12-01", headers=headers).get_json()
    rows = {row["ags"]: row for row in data["municipalities"]}
    assert rows[A]["levels"]["opened"] == {"first": None, "last": None, "count": None, "suppressed": True}
    assert rows[B]["levels"]["delivered"]["suppressed"] is False
    assert data["totals"]["active"] == 3
    state = client.get("/api/v1/reach", headers=headers).get_json()
    assert {line["district"]["key"] for line in state["districts"]} == {"08115", "08116"}


def square(x, y):
    """A small square outline near Böblingen (lon/lat)."""
    return {"type": "Polygon", "coordinates": [[[x, y], [x + 0.05, y], [x + 0.05, y + 0.05], [x, y + 0.05], [x, y]]]}


@pytest.fixture
def outlines(history):
    import json

    from directory.models import Outline

    for i, ags in enumerate((A, B, C, D)):
        db.session.add(Outline(key=ags, kind="municipality", district_key="08115", name=ags,
                               geometry=json.dumps(square(8.9 + 0.05 * i, 48.6))))
    for i, key in enumerate(("08115", "08116")):
        db.session.add(Outline(key=key, kind="district", district_key=key, name=key,
                               geometry=json.dumps(square(9.0 + 0.1 * i, 48.7))))
    db.session.commit()


def titles(element, tag):
    return [node.find(f"{SVG}title").text for node in element.iter(f"{SVG}{tag}") if node.find(f"{SVG}title") is not None]


def test_district_figures_say_what_their_tables_say(coordinator, outlines):
    html = coordinator.get("/d/08115/reichweite" + PERIOD).get_data(as_text=True)
    for id in ("ladder", "months", "map"):
        figure = svg_of(html, id)
        assert figure.get("role") == "img"
        assert figure.find(f"{SVG}title").text and figure.find(f"{SVG}desc").text
    ladder = table_rows(html, "ladder-table")
    assert titles(svg_of(html, "ladder"), "rect") == [
        f"{level}: {count} von 4 ({share})" for level, count, share in ladder]
    months = table_rows(html, "months-table")
    chart = svg_of(html, "months")
    columns = titles(next(g for g in chart.iter(f"{SVG}g") if g.get("id") == "months-columns"), "rect")
    expected = []
    for month, new, cumulative, new_active, cumulative_active in months:
        expected.append(f"{month} – erreicht: {new} neu, kumuliert {cumulative.split('(')[1].rstrip(')')}")
        expected.append(f"{month} – aktiv erreicht: {new_active} neu, kumuliert "
                        f"{cumulative_active.split('(')[1].rstrip(')')}")
    assert columns == expected
    rows = {row[0]: row[4] for row in table_rows(html, "municipalities-table")}
    areas = titles(svg_of(html, "map"), "path")
    assert sorted(areas) == sorted(
        f"{name}: " + (f"höchste Stufe: {highest}" if highest != "–" else "höchste Stufe: nicht erreicht")
        for name, highest in rows.items())
    assert "© GeoBasis-DE / BKG 2017, Daten verändert" in html


def test_state_figures_say_what_their_tables_say(history, outlines, make_user, sign_in):
    client = sign_in(make_user("ministerium@im.bwl.de", role="viewer", districts=()))
    html = client.get("/reichweite" + PERIOD).get_data(as_text=True)
    figure = svg_of(html, "map")
    assert figure.find(f"{SVG}title").text and figure.find(f"{SVG}desc").text
    rows = table_rows(html, "districts-table")
    assert sorted(titles(figure, "path")) == sorted(f"{row[0]}: erreicht: {row[2]}" for row in rows)
    ladder = table_rows(html, "ladder-table")
    assert titles(svg_of(html, "ladder"), "rect") == [
        f"{level}: {count} von 6 ({share})" for level, count, share in ladder]


def test_viewer_sees_dots_where_cells_are_small(history, make_user, sign_in):
    client = sign_in(make_user("ministerium@im.bwl.de", role="viewer", districts=()))
    html = client.get("/d/08115/reichweite" + PERIOD).get_data(as_text=True)
    rows = {row[0]: row for row in table_rows(html, "municipalities-table")}
    # Columns: name, listed, reached, active, highest, delivered, opened, clicked, registered, attended, contacted.
    assert rows["Aidlingen"][6] == "." and rows["Aidlingen"][8] == "." and rows["Aidlingen"][9] == "."
    assert rows["Aidlingen"][5].startswith("16.01.2026")  # delivered is not behavioural
    assert rows["Bondorf"][10].startswith("05.05.2026")  # nor are contacts
    assert rows["Aidlingen"][4] == "zugestellt"  # the highest level shown, not a hidden one
    assert rows["Altdorf"][3] == "."  # active only through a hidden cell
    csv_rows = list(csv.reader(io.StringIO(client.get("/d/08115/reichweite.csv" + PERIOD).data[3:].decode()),
                               delimiter=";"))
    assert csv_rows[1][4] == "." and csv_rows[1][9:12] == [".", ".", "."]  # Aidlingen: active only by hidden cells
    assert "Januar" in client.get(f"/d/08115/reichweite/gemeinde/{A}" + PERIOD).get_data(as_text=True)
