"""The definition of reach against a known history: every level, headline, month and municipality row,
for several periods and filters, from the rollup and from the raw rows alike."""
import ast
from datetime import date
from pathlib import Path

import pytest

from core.extensions import db
from reach import rollup, services
from reach.definition import ATTENDED, CLICKED, CONTACTED, DELIVERED, OPENED, REGISTERED
from reach.period import FilterError, Filters, from_api_args, from_page_args
from tests.reach_history import A, B, C, D, build_known_history

TODAY = date(2026, 12, 1)
YEAR = Filters(date(2026, 1, 1), TODAY)
JANUARY = Filters(date(2026, 1, 1), date(2026, 1, 31), "frei")
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def history(app):
    return build_known_history()


def reached_sets(filters, keys=("08115",), source="rollup"):
    cells = services.cells(filters, list(keys), source)
    levels = {}
    for ags, by_level in cells.items():
        for level in by_level:
            levels.setdefault(level, set()).add(ags)
    return cells, levels


def district(key):
    from directory.models import District

    return db.session.get(District, key)


@pytest.mark.parametrize("source", ["rollup", "raw"])
def test_levels_of_the_year(history, source):
    rollup.refresh()
    cells, levels = reached_sets(YEAR, source=source)
    assert levels == {
        DELIVERED: {A, B, D},  # C's delivery bounced
        OPENED: {A, B},  # B's January open was a machine's
        CLICKED: {A},
        REGISTERED: {A},  # D's seat was in the cancelled event
        ATTENDED: {A},
        CONTACTED: {C},
    }
    # Touches: one per person, offer and Berlin day; first and last day in Berlin time.
    assert (cells[A][DELIVERED].first, cells[A][DELIVERED].last, cells[A][DELIVERED].touches) == (
        date(2026, 1, 16), date(2026, 1, 16), 2)
    assert (cells[A][OPENED].first, cells[A][OPENED].last, cells[A][OPENED].touches) == (
        date(2026, 1, 16), date(2026, 2, 2), 3)  # two people, and a click counts as an open
    assert (cells[B][DELIVERED].first, cells[B][DELIVERED].last, cells[B][DELIVERED].touches) == (
        date(2026, 1, 15), date(2026, 3, 30), 2)  # 22:30 UTC on 29 March is the 30th in summer time
    assert cells[D][DELIVERED].first == date(2026, 3, 1)
    assert cells[C][CONTACTED].touches == 1


@pytest.mark.parametrize("source", ["rollup", "raw"])
def test_district_report_headlines_and_rows(history, source):
    report = services.district_report(district("08115"), YEAR, source=source)
    summary = report.summary
    assert (summary.total, summary.reached, summary.active, summary.listed) == (4, 4, 3, 2)
    assert summary.ladder == {DELIVERED: 3, OPENED: 2, CLICKED: 1, REGISTERED: 1, ATTENDED: 1, CONTACTED: 1}
    assert summary.last == date(2026, 5, 5)
    rows = {row.ags: row for row in report.rows}
    assert [row.name for row in report.rows] == ["Aidlingen", "Altdorf", "Bondorf", "Deckenpfronn"]
    assert {ags for ags, row in rows.items() if row.reached} == {A, B, C, D}
    assert {ags for ags, row in rows.items() if row.active} == {A, B, C}
    assert {ags for ags, row in rows.items() if row.listed} == {A, B}
    assert (rows[A].highest, rows[B].highest, rows[C].highest, rows[D].highest) == (
        ATTENDED, OPENED, CONTACTED, DELIVERED)


@pytest.mark.parametrize("source", ["rollup", "raw"])
def test_months(history, source):
    report = services.district_report(district("08115"), YEAR, source=source)
    assert len(report.months) == 12
    new = [(m.start.month, m.new["reached"], m.new["active"]) for m in report.months if any(m.new.values())]
    assert new == [(1, 2, 1), (3, 1, 1), (5, 1, 1)]
    assert [m.cumulative["reached"] for m in report.months] == [2, 2, 3, 3, 4, 4, 4, 4, 4, 4, 4, 4]
    assert [m.cumulative["active"] for m in report.months] == [1, 1, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3]


@pytest.mark.parametrize("source", ["rollup", "raw"])
def test_january(history, source):
    report = services.district_report(district("08115"), JANUARY, source=source)
    summary = report.summary
    # D unsubscribed only in June, so D was on the list at the end of January; C bounced on the 20th.
    assert (summary.reached, summary.active, summary.listed) == (2, 1, 3)
    assert summary.ladder[OPENED] == 1
    assert {row.ags: row.cells[OPENED].touches for row in report.rows if OPENED in row.cells} == {A: 2}


@pytest.mark.parametrize("source", ["rollup", "raw"])
def test_topic_and_channel_filters(history, source):
    rollup.refresh()
    service_bw = Filters(YEAR.first, YEAR.last, topic="service-bw")
    _, levels = reached_sets(service_bw, source=source)
    assert levels == {DELIVERED: {A, B}, OPENED: {A}, CLICKED: {A}, CONTACTED: {C}}
    events = Filters(YEAR.first, YEAR.last, channels=("event",))
    _, levels = reached_sets(events, source=source)
    assert levels == {DELIVERED: {D}, REGISTERED: {A}, ATTENDED: {A}}
    report = services.district_report(district("08115"), events, source=source)
    assert (report.summary.reached, report.summary.active) == (2, 1)
    assert report.levels == [DELIVERED, REGISTERED, ATTENDED]
    mails_and_contacts = Filters(YEAR.first, YEAR.last, channels=("newsletter", "contact"))
    _, levels = reached_sets(mails_and_contacts, source=source)
    assert levels == {DELIVERED: {A, B}, OPENED: {A, B}, CLICKED: {A}, CONTACTED: {C}}


@pytest.mark.parametrize("source", ["rollup", "raw"])
def test_state_report(history, source):
    report = services.state_report(YEAR, source=source)
    lines = {line.district.key: line.summary for line in report.districts}
    assert (lines["08115"].reached, lines["08115"].active, lines["08115"].total) == (4, 3, 4)
    assert (lines["08116"].reached, lines["08116"].active, lines["08116"].total) == (2, 2, 2)
    assert lines["08116"].ladder[CONTACTED] == 2
    state = report.summary
    assert (state.total, state.reached, state.active, state.listed) == (6, 6, 5, 3)
    assert state.last == date(2026, 6, 10)


def test_erasure_changes_no_figure(history, app):
    from subscribers import privacy

    before = services.district_report(district("08115"), YEAR)
    before_cells = {row.ags: row.cells for row in before.rows}
    privacy.erase_subscriber(history.rows["b1"])
    privacy.erase_subscriber(history.rows["d1"])
    db.session.commit()
    assert rollup.pending() > 0  # the erasure changed who the touches count for
    after = services.district_report(district("08115"), YEAR)
    db.session.commit()
    assert {row.ags: row.cells for row in after.rows} == before_cells
    assert (after.summary.reached, after.summary.active) == (before.summary.reached, before.summary.active)
    assert services.cells(YEAR, ["08115"]) == services.cells(YEAR, ["08115"], source="raw")


def test_changes_reach_the_report(history):
    """A bounce, a check-in and a cancellation after the first report show in the next one."""
    services.district_report(district("08115"), YEAR)
    db.session.commit()
    assert rollup.pending(["08115"]) == 0 and rollup.pending(["08116"]) > 0  # only what the report needed
    history.rows["n1 b1"].status = "bounced"
    workshop = history.rows["workshop"]
    workshop.status = "cancelled"
    db.session.commit()
    report = services.district_report(district("08115"), YEAR)
    assert {row.ags for row in report.rows if REGISTERED in row.cells} == set()
    assert report.rows[1].cells[DELIVERED].first == date(2026, 3, 30)  # B: only the March delivery is left


def test_rebuild_equals_refresh(history, runner):
    rollup.refresh()
    db.session.commit()
    refreshed = services.cells(YEAR)
    since_start = Filters(date(2022, 7, 1), TODAY)
    refreshed_long = services.cells(since_start)
    result = runner.invoke(args=["reach", "rebuild"])
    assert result.exit_code == 0, result.output
    assert "Berührungen" in result.output
    assert services.cells(YEAR) == refreshed
    assert services.cells(since_start) == refreshed_long == services.cells(since_start, source="raw")


def test_viewer_cells_are_suppressed_below_the_minimum(history, app):
    app.config["REACH_MIN_CELL"] = 2
    report = services.district_report(district("08115"), YEAR, for_viewer=True)
    rows = {row.ags: row for row in report.rows}
    assert not rows[A].cells[OPENED].suppressed and rows[A].cells[OPENED].people == 2
    assert rows[A].cells[CLICKED].suppressed and rows[A].cells[REGISTERED].suppressed
    assert rows[B].cells[OPENED].suppressed
    assert not rows[B].cells[DELIVERED].suppressed and not rows[C].cells[CONTACTED].suppressed  # not behavioural
    assert rows[B].active_suppressed and not rows[A].active_suppressed and not rows[C].active_suppressed
    assert rows[B].highest == DELIVERED  # the map must not show what the table hides
    assert report.summary.active == 3  # totals are never suppressed


def test_period_presets_and_errors(app):
    from werkzeug.datastructures import MultiDict

    def page(**args):
        return from_page_args(MultiDict(args), today=TODAY)

    assert (page().first, page().last) == (date(2026, 1, 1), TODAY)
    assert (page(zeitraum="12monate").first, page(zeitraum="12monate").last) == (date(2025, 12, 2), TODAY)
    assert (page(zeitraum="quartal").first, page(zeitraum="quartal").last) == (date(2026, 7, 1), date(2026, 9, 30))
    assert page(zeitraum="programm").first == date(2022, 7, 1)
    custom = page(von="21.11.2025", bis="2026-01-31", kanal="event", thema="service-bw")
    assert (custom.first, custom.last, custom.channels, custom.topic) == (
        date(2025, 11, 21), date(2026, 1, 31), ("event",), "service-bw")
    assert from_page_args(custom_args := MultiDict(custom.query_args()), today=TODAY) == custom, custom_args
    for bad, field in ((dict(zeitraum="morgen"), "zeitraum"), (dict(von="31.02.2026"), "von"),
                       (dict(von="2026-03-01", bis="2026-02-01"), "bis"), (dict(kanal="fax"), "kanal"),
                       (dict(von="1999-12-31"), "von"), (dict(thema="x" * 101), "thema")):
        with pytest.raises(FilterError) as error:
            page(**bad)
        assert error.value.field == field
    api = from_api_args(MultiDict({"from": "2026-01-01", "to": "2026-01-31", "channel": "newsletter,contact"}))
    assert (api.first, api.last, api.channels) == (date(2026, 1, 1), date(2026, 1, 31), ("newsletter", "contact"))


def test_buckets_cover_every_day_once():
    for first, last in ((date(2022, 7, 1), date(2026, 12, 1)), (date(2025, 12, 2), date(2026, 12, 1)),
                        (date(2026, 3, 5), date(2026, 3, 9)), (date(2024, 1, 1), date(2024, 12, 31)),
                        (date(2024, 2, 29), date(2025, 3, 1))):
        covered = []
        for ranges in rollup.decompose(first, last).values():
            for start, end in ranges:
                covered += [start.toordinal() + i for i in range(end.toordinal() - start.toordinal() + 1)]
        assert sorted(covered) == list(range(first.toordinal(), last.toordinal() + 1))


def test_no_module_but_app_imports_app():
    """The import graph reads app → domains → core: packages never import the app module."""
    offenders = []
    for path in ROOT.rglob("*.py"):
        relative = path.relative_to(ROOT)
        if relative.parts[0] in (".venv", "build") or relative.name == "app.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module]
                entry_point = relative.parts[0] in ("tests", "bench") or relative.name == "worker.py"
                if node.module == "app" and entry_point and [a.name for a in node.names] == ["create_app"]:
                    continue  # entry points build the app; they import nothing else from it
            if "app" in names:
                offenders.append(f"{relative}:{node.lineno}")
    assert offenders == []
