"""The reach pages: a district's municipalities, the state's districts, what stands behind a number, exports.

Open to everyone signed in; the district scope (`core.database`) limits
coordinators and district viewers to their districts (another district's key
answers 404, on the state page they see only theirs). Viewers see what
everyone sees, except that per-municipality figures of what people did are
shown as "." below the minimum cell size.
"""
from datetime import date

from flask import Blueprint, abort, render_template, request, url_for
from flask_babel import force_locale, format_date
from flask_babel import gettext as _
from markupsafe import Markup
from sqlalchemy import select
from werkzeug.datastructures import MultiDict

from accounts.auth import login_required, principal
from core import spreadsheet
from core.collation import german_key
from core.database import load_or_404
from core.extensions import db
from directory.models import District, Municipality
from reach import exports, figures, services, svg
from reach.contacts import KIND_LABELS
from reach.definition import (
    BEHAVIOURAL,
    CHANNEL_LABELS,
    CHANNELS,
    CONTACT,
    LEVEL_BY_CODE,
    LEVEL_BY_NUMBER,
    LEVELS,
    NEWSLETTER,
)
from reach.period import PRESETS, FilterError, from_page_args
from subscribers.models import Topic

bp = Blueprint("reach", __name__)

CHANNEL_CODES = {number: code for code, number in CHANNELS.items()}

SORTS = ("name", "stufe") + tuple(level.code for level in LEVELS)
ONLY = ("nicht-erreicht", "nicht-aktiv") + tuple(level.code for level in LEVELS)
XLSX = spreadsheet.XLSX_TYPE


def is_viewer():
    user = principal()
    return user is not None and user.role == "viewer"


def read_filters():
    """(filters, error): bad parameters show the default view with the message, never a 500."""
    try:
        return from_page_args(request.args), None
    except FilterError as error:
        return from_page_args(MultiDict()), error


def topic_names():
    """Topic names of the visible districts, for the filter (one name may stand for topics of several districts)."""
    return sorted(db.session.execute(select(Topic.name).distinct()).scalars(), key=german_key)


def filter_context(filters, error):
    return {
        "filters": filters, "filter_error": error, "presets": PRESETS, "channel_labels": CHANNEL_LABELS,
        "topics": topic_names(), "query": filters.query_args(), "levels_by_number": LEVEL_BY_NUMBER,
        "share_text": figures.share_text,
    }


@bp.app_template_filter("number")
def number_filter(value):
    return svg.format_int(value)


@bp.app_template_filter("percent")
def percent_filter(value):
    return svg.format_percent(value)


def offer_link(district_key):
    """A function for the template: an offer's title, linked to its page where this user may open it."""
    def link(line):
        if line.channel == CONTACT:
            text = _("%(kind)s am %(date)s", kind=KIND_LABELS.get(line.title, line.title),
                     date=format_date(line.first, "dd.MM.yyyy"))
            url = None if is_viewer() else url_for("contacts.edit", key=district_key, id=line.offer_id)
        elif line.channel == NEWSLETTER:
            text, url = line.title, url_for("newsletters.detail", key=district_key, id=line.offer_id)
        else:
            text, url = line.title, url_for("events.detail", key=district_key, id=line.offer_id)
        return Markup('<a href="{}">{}</a>').format(url, text) if url else Markup("{}").format(text)

    return link


def sort_key(sort):
    """Rows by name, by highest level, or by a level's last touch (hidden cells sort as empty)."""
    ladder = [level.number for level in LEVELS]
    if sort == "stufe":
        return lambda row: (ladder.index(row.highest) + 1 if row.highest else 0, row.name)
    if sort in LEVEL_BY_CODE:
        number = LEVEL_BY_CODE[sort].number

        def by_level(row):
            cell = row.cells.get(number)
            if cell is None or cell.suppressed:
                return (0, date.min, 0, row.name)
            return (1, cell.last, cell.touches, row.name)

        return by_level
    return lambda row: row.name


def kept(report, only):
    if only == "nicht-erreicht":
        return [row for row in report.rows if not row.reached]
    if only == "nicht-aktiv":
        return [row for row in report.rows if not row.active]
    if only in LEVEL_BY_CODE:
        number = LEVEL_BY_CODE[only].number
        return [row for row in report.rows if number in row.cells and not row.cells[number].suppressed]
    return report.rows


@bp.get("/d/<key>/reichweite")
@login_required
def district(key):
    district = load_or_404(District, key=key)
    filters, error = read_filters()
    report = services.district_report(district, filters, for_viewer=is_viewer())
    db.session.commit()  # the refreshed rollup
    sort = request.args.get("sortierung") if request.args.get("sortierung") in SORTS else "name"
    descending = request.args.get("richtung") == "ab"
    only = request.args.get("nur") if request.args.get("nur") in ONLY else None
    report.rows.sort(key=sort_key(sort), reverse=descending)
    shown_rows = kept(report, only)

    def municipality_url(ags):
        return url_for("reach.municipality", key=key, ags=ags, **filters.query_args())

    return render_template(
        "reach/district.html", district=district, report=report, rows=shown_rows, sort=sort,
        descending=descending, only=only, levels=LEVELS, behavioural=BEHAVIOURAL, viewer=is_viewer(),
        map_svg=figures.district_map(report, href=municipality_url),
        ladder_svg=figures.ladder_chart(report.summary, report.levels),
        months_svg=figures.monthly_chart(report.months, report.summary.total),
        month_label=figures.month_label, attribution=figures.MAP_ATTRIBUTION, **filter_context(filters, error),
    ), 400 if error else 200


@bp.get("/d/<key>/reichweite/gemeinde/<ags>")
@login_required
def municipality(key, ags):
    district = load_or_404(District, key=key)
    municipality = load_or_404(Municipality, ags=ags, district_key=district.key)
    filters, error = read_filters()
    lines = services.municipality_offers(municipality, filters)
    db.session.commit()
    if is_viewer():
        minimum = services.min_cell()
        for line in lines:
            line.suppressed = line.level in BEHAVIOURAL and line.people < minimum
    return render_template(
        "reach/municipality.html", district=district, municipality=municipality, lines=lines, levels=LEVELS,
        viewer=is_viewer(), offer_link=offer_link(district.key), channel_codes=CHANNEL_CODES,
        **filter_context(filters, error),
    ), 400 if error else 200


@bp.get("/reichweite")
@login_required
def state():
    filters, error = read_filters()
    report = services.state_report(filters, scope_keys())
    db.session.commit()
    sort = request.args.get("sortierung") if request.args.get("sortierung") in ("name", "anteil", "aktiv") else "name"
    descending = request.args.get("richtung") == "ab"
    order = {
        "name": lambda line: (line.district.name, line.district.kind),
        "anteil": lambda line: (line.summary.share(line.summary.reached) or 0, line.district.name),
        "aktiv": lambda line: (line.summary.share(line.summary.active) or 0, line.district.name),
    }[sort]
    report.districts.sort(key=order, reverse=descending)

    def district_url(key):
        return url_for("reach.district", key=key, **filters.query_args())

    return render_template(
        "reach/state.html", report=report, sort=sort, descending=descending, levels=LEVELS,
        map_svg=figures.state_map(report, href=district_url),
        ladder_svg=figures.ladder_chart(report.summary, report.levels),
        attribution=figures.MAP_ATTRIBUTION, **filter_context(filters, error),
    ), 400 if error else 200


def scope_keys():
    from core.database import current_district_scope

    scope = current_district_scope()
    return None if scope is None else sorted(scope)


def download(data, content_type, name):
    return spreadsheet.download(data, content_type, name)


@bp.get("/d/<key>/reichweite.<any(csv, xlsx):extension>")
@login_required
def district_export(key, extension):
    district = load_or_404(District, key=key)
    filters, error = read_filters()
    if error:
        abort(400, error.message)
    report = services.district_report(district, filters, for_viewer=is_viewer())
    db.session.commit()
    name = exports.filename(f"reichweite-{district.key}", filters, extension)
    with force_locale("de"):  # exports speak German in every locale, as every export does
        header, rows = exports.district_table(report)
        if extension == "csv":
            return download(exports.to_csv(header, rows), spreadsheet.CSV_TYPE, name)
        title = f"Reichweite {district.display_name}"
        return download(exports.to_xlsx(header, rows, exports.describe(filters, title), "Gemeinden"), XLSX, name)


@bp.get("/reichweite.<any(csv, xlsx):extension>")
@login_required
def state_export(extension):
    filters, error = read_filters()
    if error:
        abort(400, error.message)
    report = services.state_report(filters, scope_keys())
    db.session.commit()
    name = exports.filename("reichweite-kreise", filters, extension)
    with force_locale("de"):
        header, rows = exports.state_table(report)
        if extension == "csv":
            return download(exports.to_csv(header, rows), spreadsheet.CSV_TYPE, name)
        title = "Reichweite der E-Government-Koordination Baden-Württemberg"
        return download(exports.to_xlsx(header, rows, exports.describe(filters, title), "Kreise"), XLSX, name)
