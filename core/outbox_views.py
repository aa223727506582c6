"""Admin pages for the mail outbox: list, read, download.

A message's HTML is shown only inside `<iframe sandbox>` and served with a
Content-Security-Policy that forbids scripts, frames and remote loads, so mail
content can neither run code in the admin's session nor call home.
"""
from io import BytesIO

from flask import Blueprint, abort, current_app, render_template, request, send_file
from flask_babel import format_decimal
from flask_babel import gettext as _

from accounts.auth import admin_required
from core import outbox
from core.mail import uses_outbox

bp = Blueprint("outbox", __name__, url_prefix="/admin/outbox")

PER_PAGE = 50
MAIL_HTML_POLICY = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; frame-ancestors 'self'; sandbox"
# Downloads are never rendered by the browser in this origin.
DOWNLOAD_POLICY = "default-src 'none'; sandbox"


@bp.app_template_filter("filesize")
def filesize(size):
    """Bytes as B, kB or MB with the locale's decimal mark (1,5 kB)."""
    if size < 1000:
        return _("%(n)s B", n=format_decimal(size))
    if size < 1000 * 1000:
        return _("%(n)s kB", n=format_decimal(round(size / 1000, 1)))
    return _("%(n)s MB", n=format_decimal(round(size / 1000 / 1000, 1)))


def _directory():
    return current_app.config["OUTBOX_DIR"]


def _message_or_404(stem):
    message = outbox.load_message(_directory(), stem)
    if message is None:
        abort(404)
    return message


def _download(response):
    response.headers["Content-Security-Policy"] = DOWNLOAD_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.get("")
@admin_required
def index():
    page = outbox.list_messages(_directory(), request.args.get("page", 1, type=int), PER_PAGE)
    if page is None:
        abort(404)
    return render_template(
        "core/outbox.html", page=page, uses_outbox=uses_outbox(), mail_server=current_app.config.get("MAIL_SERVER")
    )


@bp.get("/<stem>")
@admin_required
def show(stem):
    message = _message_or_404(stem)
    summary = outbox.summarize(_directory(), stem)
    if summary is None:
        abort(404)  # deleted since it was loaded
    return render_template(
        "core/outbox_message.html",
        stem=stem,
        summary=summary,
        headers=outbox.headers(message),
        text=outbox.text_body(message),
        has_html=outbox.html_body(message) is not None,
        attachments=outbox.attachments(message),
    )


@bp.get("/<stem>.eml")
@admin_required
def download(stem):
    path = outbox.message_path(_directory(), stem)
    if path is None:
        abort(404)
    response = send_file(path, mimetype="message/rfc822", as_attachment=True, download_name=outbox.file_name(stem))
    return _download(response)


@bp.get("/<stem>/html")
@admin_required
def html(stem):
    body = outbox.html_body(_message_or_404(stem))
    if body is None:
        abort(404)
    response = current_app.response_class(body, mimetype="text/html")
    response.headers["Content-Security-Policy"] = MAIL_HTML_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@bp.get("/<stem>/attachments/<int:index>")
@admin_required
def attachment(stem, index):
    found = outbox.attachments(_message_or_404(stem))
    if index >= len(found):
        abort(404)
    item = found[index]
    response = send_file(
        BytesIO(item.data), mimetype=item.content_type, as_attachment=True, download_name=item.name
    )
    return _download(response)
