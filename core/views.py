"""Service-wide pages: start page, language switch, health check."""
from flask import Blueprint, current_app, jsonify, redirect, request, session, url_for
from flask_login import current_user

from core import health
from core.i18n import SESSION_KEY

bp = Blueprint("core", __name__)


@bp.get("/")
def index():
    if current_user.is_authenticated:
        return redirect(url_for("subscribers.districts"))
    return redirect(url_for("accounts.login"))


@bp.post("/language")
def set_language():
    lang = request.form.get("lang")
    if lang in current_app.config["LANGUAGES"]:
        session[SESSION_KEY] = lang
    target = request.form.get("next") or ""
    # Only same-site paths: never an open redirect.
    if not target.startswith("/") or target.startswith("//"):
        target = url_for("core.index")
    return redirect(target)


@bp.get("/healthz")
def healthz():
    healthy, report = health.check()
    return jsonify(report), 200 if healthy else 503
