"""API: reach of the state (with one row per district) and of a district (with one row per municipality).

Same figures as the pages, from `reach.services`; same filters (`from`, `to`,
`topic`, `channel`). Viewers may read both; per-municipality cells of what
people did are `suppressed` for them below the minimum cell size. A district
outside the caller's scope answers 404.
"""
from flask import request
from flask_smorest import Blueprint, abort

from accounts.auth import login_required, principal
from core.api import require_token
from core.database import current_district_scope, load_or_404
from core.extensions import db
from directory.models import District
from reach import services
from reach.definition import LEVEL_BY_NUMBER
from reach.period import FilterError, from_api_args
from reach.schemas import DistrictReachSchema, ReachQuerySchema, StateReachSchema

blp = Blueprint("reach_api", __name__, url_prefix="/api/v1",
                description="Reichweite: erreichte Gemeinden je Stufe, Kreis und Land")
blp.before_request(require_token)

NO_DISTRICT = {"response": "DEFAULT_ERROR", "description": "Kreis unbekannt oder nicht freigegeben"}


@blp.before_request
def _district_first():
    # Another district's key answers 404 before the query is validated (422).
    if principal() is not None and "key" in (request.view_args or {}):
        load_or_404(District, key=request.view_args["key"])


def filters_or_422():
    try:
        return from_api_args(request.args)
    except FilterError as error:
        abort(422, message=error.message, errors={"query": {error.field: [error.message]}})


def period_json(filters):
    return {"first": filters.first, "last": filters.last, "topic": filters.topic, "channels": list(filters.channels)}


def summary_json(summary):
    return {
        "municipalities": summary.total, "reached": summary.reached, "active": summary.active,
        "listed": summary.listed, "reached_share": summary.share(summary.reached),
        "active_share": summary.share(summary.active), "listed_share": summary.share(summary.listed),
        "ladder": {LEVEL_BY_NUMBER[level].code: count for level, count in summary.ladder.items()},
        "last_activity": summary.last,
    }


def district_json(district):
    return {"key": district.key, "name": district.name, "kind": district.kind}


def cell_json(cell):
    if cell.suppressed:
        return {"first": None, "last": None, "count": None, "suppressed": True}
    return {"first": cell.first, "last": cell.last, "count": cell.touches, "suppressed": False}


def row_json(row):
    return {
        "ags": row.ags, "name": row.name, "listed": row.listed, "reached": row.reached,
        "active": None if row.active_suppressed else row.active,
        "highest_level": LEVEL_BY_NUMBER[row.highest].code if row.highest else None,
        "levels": {LEVEL_BY_NUMBER[level].code: cell_json(cell) for level, cell in row.cells.items()},
    }


@blp.route("/reach")
@blp.arguments(ReachQuerySchema, location="query", as_kwargs=True)
@blp.response(200, StateReachSchema)
@login_required
def state_reach(**_args):
    """Reichweite des Landes: Summen und eine Zeile je Kreis (bei Kreisbeschränkung: nur die eigenen Kreise)."""
    filters = filters_or_422()
    scope = current_district_scope()
    report = services.state_report(filters, None if scope is None else sorted(scope))
    db.session.commit()
    return {
        "period": period_json(filters), "totals": summary_json(report.summary),
        "districts": [{"district": district_json(line.district), **summary_json(line.summary)}
                      for line in report.districts],
    }


@blp.route("/districts/<string:key>/reach")
@blp.arguments(ReachQuerySchema, location="query", as_kwargs=True)
@blp.response(200, DistrictReachSchema)
@blp.alt_response(404, **NO_DISTRICT)
@login_required
def district_reach(key, **_args):
    """Reichweite eines Kreises: Summen, Stufen, Monate und je Gemeinde erste/letzte Berührung und Anzahl je Stufe."""
    district = load_or_404(District, key=key)
    filters = filters_or_422()
    user = principal()
    report = services.district_report(district, filters, for_viewer=user.role == "viewer")
    db.session.commit()
    return {
        "district": district_json(district), "period": period_json(filters), "totals": summary_json(report.summary),
        "months": [{"month": month.start.strftime("%Y-%m"), "new_reached": month.new["reached"],
                    "cumulative_reached": month.cumulative["reached"], "new_active": month.new["active"],
                    "cumulative_active": month.cumulative["active"]} for month in report.months],
        "municipalities": [row_json(row) for row in report.rows],
    }
