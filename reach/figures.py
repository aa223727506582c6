"""The charts and maps of the reach pages, and the tables that say the same in text.

Every figure is drawn from the same numbers as the table next to it (the
page template shows both), so a screen reader, a printout and the chart
agree; `tests/test_reach_pages.py` compares them.
"""
from flask_babel import gettext as _

from directory import services as directory_services
from reach import svg
from reach.definition import HEADLINE_LABELS, LEVEL_BY_NUMBER, LEVELS

MAP_ATTRIBUTION = "© GeoBasis-DE / BKG 2017, Daten verändert"
SHARE_CLASSES = 5  # 0–20 %, 20–40 %, … 80–100 %


def share_text(count, total):
    return _("%(count)s von %(total)s (%(share)s)", count=svg.format_int(count), total=svg.format_int(total),
             share=svg.format_percent(count / total if total else None))


def ladder_chart(summary, levels, id="ladder"):
    bars = [(str(LEVEL_BY_NUMBER[level].label), summary.ladder.get(level, 0),
             share_text(summary.ladder.get(level, 0), summary.total)) for level in levels]
    return svg.bar_chart(
        bars, id=id, title=_("Erreichte Gemeinden je Stufe"),
        description=_("Balken je Stufe: Zahl der Gemeinden mit mindestens einer Berührung dieser Stufe im "
                      "Zeitraum, von %(total)s Gemeinden. Dieselben Zahlen stehen in der Tabelle darunter.",
                      total=svg.format_int(summary.total)),
        max_value=max(summary.total, 1), value_label=_("Gemeinden"),
    )


def month_label(month):
    return month.start.strftime("%m.%Y")


def monthly_chart(months, total, id="months"):
    if not months:
        return svg.monthly_chart([], [], id=id, title="", description="", y_max=1)
    series = []
    for name, colour in (("reached", svg.PALETTE_LEVELS[2]), ("active", svg.PALETTE_LEVELS[5])):
        series.append({
            "name": str(HEADLINE_LABELS[name]), "colour": colour,
            "new": [month.new[name] for month in months],
            "cumulative_share": [month.cumulative[name] / total if total else None for month in months],
        })
    return svg.monthly_chart(
        [month_label(month) for month in months], series, id=id,
        title=_("Neu erreichte Gemeinden je Monat und Anteil kumuliert"),
        description=_("Säulen: Gemeinden, die im Monat zum ersten Mal im Zeitraum erreicht bzw. aktiv erreicht "
                      "wurden; Linien: Anteil der bis dahin erreichten Gemeinden. Die Tabelle darunter enthält "
                      "dieselben Zahlen."),
        y_max=max([1] + [month.new[name] for month in months for name in ("reached", "active")]),
    )


def level_classes(levels):
    """Map classes: not reached, then each level shown, light to dark."""
    classes = [(_("nicht erreicht"), svg.PALETTE_LEVELS[0])]
    for level in LEVELS:
        if level.number in levels:
            classes.append((str(level.label), svg.PALETTE_LEVELS[LEVELS.index(level) + 1]))
    return classes


def district_map(report, href=None, id="map"):
    outlines = directory_services.outlines_for_district(report.district.key)
    if not outlines:
        return svg.choropleth([], [], id=id, title="", description="", legend_title="", attribution="")
    rows = {row.ags: row for row in report.rows}
    shown = [level for level in report.levels]
    index = {level: position + 1 for position, level in enumerate(shown)}
    features = []
    for outline in outlines:
        row = rows.get(outline["key"])
        if row is None:  # an unincorporated area: no municipality, no figures
            features.append({**outline, "cls": None, "label": _("gemeindefreies Gebiet")})
            continue
        cls = index.get(row.highest, 0)
        label = str(LEVEL_BY_NUMBER[row.highest].label) if row.highest else _("nicht erreicht")
        features.append({**outline, "cls": cls, "label": _("höchste Stufe: %(level)s", level=label)})
    return svg.choropleth(
        features, level_classes(shown), id=id,
        title=_("Karte: höchste erreichte Stufe je Gemeinde"),
        description=_("Gemeinden des Kreises %(name)s, gefärbt nach der höchsten im Zeitraum erreichten Stufe. "
                      "Die Tabelle der Gemeinden darunter enthält dieselben Angaben.", name=report.district.name),
        legend_title=_("Höchste erreichte Stufe"), attribution=MAP_ATTRIBUTION,
        href=(lambda key: href(key) if key in rows else None) if href else None,
    )


def share_class(share):
    """0: none reached; then one class per 20 percentage points."""
    if share is None:
        return None
    if share == 0:
        return 0
    return 1 + min(int(share * SHARE_CLASSES), SHARE_CLASSES - 1)


def share_classes():
    step = 100 // SHARE_CLASSES
    return [(_("keine"), svg.PALETTE_LEVELS[0])] + [
        (f"{low}–{low + step} %", colour) for low, colour in zip(range(0, 100, step), svg.PALETTE_SHARE)]


def state_map(report, href=None, id="map"):
    outlines = directory_services.district_outlines()
    if not outlines:
        return svg.choropleth([], [], id=id, title="", description="", legend_title="", attribution="")
    lines = {line.district.key: line for line in report.districts}
    features = []
    for outline in outlines:
        line = lines.get(outline["key"])
        if line is None:  # outside what this user may see
            features.append({**outline, "cls": None, "label": _("keine Daten")})
            continue
        share = line.summary.share(line.summary.reached)
        features.append({**outline, "name": line.district.display_name, "cls": share_class(share),
                         "label": _("erreicht: %(share)s", share=share_text(line.summary.reached,
                                                                             line.summary.total))})
    return svg.choropleth(
        features, share_classes(), id=id, title=_("Karte: Anteil erreichter Gemeinden je Kreis"),
        description=_("Die 44 Stadt- und Landkreise, gefärbt nach dem Anteil ihrer Gemeinden, die im Zeitraum "
                      "erreicht wurden. Die Tabelle der Kreise darunter enthält dieselben Zahlen."),
        legend_title=_("Anteil erreichter Gemeinden"), attribution=MAP_ATTRIBUTION,
        href=(lambda key: href(key) if key in lines else None) if href else None,
    )
