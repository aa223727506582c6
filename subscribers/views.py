"""District pages: the overview of the districts one may see, and each district's dashboard.

Also provides the navigation's data to every template, since the navigation
is made of districts.
"""
from flask import Blueprint, redirect, render_template, url_for
from flask_babel import gettext, lazy_gettext
from flask_login import current_user

from accounts.auth import login_required
from accounts.services import coordinators_of
from core.database import load_or_404
from directory import services as directory_services
from directory.models import District
from reach import services as reach_services
from reach.period import this_year
from subscribers import services

bp = Blueprint("subscribers", __name__)

# More districts than this and the navigation links to the overview instead.
MAX_NAV_DISTRICTS = 5

KIND_LABELS = {"Landkreis": lazy_gettext("Landkreis"), "Stadtkreis": lazy_gettext("Stadtkreis")}


@bp.app_template_filter("district_kind")
def district_kind(kind):
    return KIND_LABELS.get(kind, kind)


@bp.app_template_filter("of_district")
def of_district(district):
    """The district in the genitive, declined: "des Landkreises Böblingen", "des Stadtkreises Stuttgart"."""
    if district.kind == "Stadtkreis":
        return gettext("des Stadtkreises %(name)s", name=district.name)
    return gettext("des Landkreises %(name)s", name=district.name)


def nav_districts():
    """The districts to link directly, or None when the overview page is the better link."""
    if not current_user.is_authenticated or current_user.district_keys is None:
        return None
    districts = current_user.districts
    return districts if len(districts) <= MAX_NAV_DISTRICTS else None


@bp.app_context_processor
def _navigation():
    # Functions, not values: error pages render this too, and must not query
    # anything they do not show.
    return {"nav_districts": nav_districts}


@bp.get("/districts")
@login_required
def districts():
    visible = directory_services.districts_with_counts()
    if len(visible) == 1:
        return redirect(url_for("subscribers.dashboard", key=visible[0].key))
    return render_template("subscribers/districts.html", districts=visible)


@bp.get("/d/<key>/")
@login_required
def dashboard(key):
    district = load_or_404(District, key=key)
    return render_template(
        "subscribers/dashboard.html",
        district=district,
        coordinators=coordinators_of(district),
        municipalities=district.municipalities,
        status_counts=services.status_counts(district.key),
        listed=reach_services.listed_count(district.key),
        reach=reach_services.district_summary(district.key, this_year()),
    )
