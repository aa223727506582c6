"""District pages (being written)."""
from flask import Blueprint

bp = Blueprint("subscribers", __name__)


@bp.get("/districts")
def districts():
    return "districts"
