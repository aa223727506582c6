"""Service-wide pages: start page, language switch, health check."""
from flask import Blueprint, current_app, has_request_context, jsonify, redirect, request, session, url_for
from flask_login import current_user

from core import health
from core.i18n import SESSION_KEY
from core.urls import address_mismatch, apply_personal_link_headers, safe_redirect_target

bp = Blueprint("core", __name__)

# No inline scripts or styles anywhere, so the policy can be strict. Routes
# with a stricter one of their own (the outbox's mail HTML) keep theirs.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


@bp.app_context_processor
def _address_warning():
    """Admins see on every page when the service is reached under another address than BASE_URL."""
    # Mail templates render outside requests too (in the workers).
    if not has_request_context() or not (current_user and current_user.is_authenticated and current_user.is_admin):
        return {}
    return {"address_mismatch": address_mismatch()}


@bp.after_app_request
def _security_headers(response):
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return apply_personal_link_headers(response)


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
    return redirect(safe_redirect_target(request.form.get("next")) or url_for("core.index"))


@bp.get("/healthz")
def healthz():
    healthy, report = health.check()
    return jsonify(report), 200 if healthy else 503
