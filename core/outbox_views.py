"""Pages for the mail outbox: list (searched and filtered), read, download.

Admins see every message. Coordinators see the messages of their districts
(the request's district scope, as `accounts.auth` sets it, applied to the
`X-EGov-District` header every mail of the service carries): another
district's message, and any message that names no district, answers 404
on each of its routes. Viewers see no mail at all (403): mails name persons.

A message's HTML is shown only inside `<iframe sandbox>` and served with a
Content-Security-Policy that forbids scripts, frames and remote loads, so mail
content can neither run code in the admin's session nor call home.
"""
from io import BytesIO

from flask import Blueprint, abort, current_app, render_template, request, send_file
from flask_babel import format_decimal
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import lazy_pgettext
from sqlalchemy import select
from wtforms import SearchField, SelectChoice, SelectField
from wtforms.validators import Length, Optional

from accounts.auth import personal_data_required
from core import outbox
from core.database import current_district_scope
from core.extensions import db
from core.forms import Form
from core.mail import KINDS, uses_outbox

bp = Blueprint("outbox", __name__, url_prefix="/admin/outbox")

PER_PAGE = 50
MAIL_HTML_POLICY = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; frame-ancestors 'self'; sandbox"
# Downloads are never rendered by the browser in this origin.
DOWNLOAD_POLICY = "default-src 'none'; sandbox"
MAX_SEARCH = 200

KIND_LABELS = {
    "newsletter": lazy_pgettext("Art der Mail", "Newsletter"),
    "test": lazy_pgettext("Art der Mail", "Testversand"),
    "invitation": lazy_pgettext("Art der Mail", "Veranstaltung"),
    "confirmation": lazy_pgettext("Art der Mail", "Abo-Bestätigung"),
    outbox.UNKNOWN_KIND: lazy_pgettext("Art der Mail", "unbekannt"),
}
assert set(KINDS) < set(KIND_LABELS)


def _strip(value):
    return value.strip() if isinstance(value, str) else value


class OutboxFilterForm(Form):
    """The outbox's search and kind filter, read from the query string.

    A value the form does not know (an old bookmark, a hand-edited URL) is
    named at its field and left out of the search, never an error page.
    """

    class Meta:
        csrf = False

    recipient = SearchField(_l("Empfänger enthält"), filters=[_strip], validators=[Optional(), Length(max=MAX_SEARCH)])
    subject = SearchField(_l("Betreff enthält"), filters=[_strip], validators=[Optional(), Length(max=MAX_SEARCH)])
    kind = SelectField(lazy_pgettext("Art der Mail", "Art"))

    def __init__(self, with_unknown, **kwargs):
        super().__init__(**kwargs)
        kinds = [*KINDS, outbox.UNKNOWN_KIND] if with_unknown else KINDS
        self.kind.choices = [SelectChoice("", _l("alle")), *(SelectChoice(k, KIND_LABELS[k]) for k in kinds)]

    def filters(self):
        """The valid part of the query as `outbox.Filters`; the invalid part is named at its field."""
        self.validate()
        values = {}
        for field in (self.recipient, self.subject, self.kind):
            if field.errors:
                if field is self.kind:
                    field.errors = [_("Diese Art gibt es nicht; es werden Mails jeder Art gezeigt.")]
                else:
                    field.errors = [_("Höchstens %(max)d Zeichen; ohne dieses Feld gesucht.", max=MAX_SEARCH)]
                field.data = ""
            values[field.name] = field.data or ""
        return outbox.Filters(**values)

    def arguments(self):
        """The query-string arguments of the valid filters that are set (for the pager's links)."""
        return {f.name: f.data for f in (self.recipient, self.subject, self.kind) if f.data and not f.errors}


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


def _summary_or_404(stem):
    """The message's summary when it exists and this request's user may see it, else 404."""
    summary = outbox.summarize(_directory(), stem)
    if summary is None or not outbox.visible(summary, current_district_scope()):
        abort(404)
    return summary


def _message_or_404(stem):
    _summary_or_404(stem)
    message = outbox.load_message(_directory(), stem)
    if message is None:
        abort(404)
    return message


def _districts():
    """Districts by key, as far as this request's scope lets it see them (for their names)."""
    from directory.models import District

    return {d.key: d for d in db.session.execute(select(District)).scalars()}


@bp.app_template_global()
def outbox_in_use():
    """Whether mail goes to the file outbox (no MAIL_SERVER); for the navigation."""
    return uses_outbox()


def _download(response):
    response.headers["Content-Security-Policy"] = DOWNLOAD_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.get("")
@personal_data_required
def index():
    scope = current_district_scope()
    form = OutboxFilterForm(with_unknown=scope is None, formdata=request.args)
    filters = form.filters()
    page = outbox.list_messages(
        _directory(), request.args.get("page", 1, type=int), PER_PAGE, filters, district_keys=scope
    )
    if page is None:
        abort(404)
    return render_template(
        "core/outbox.html",
        page=page,
        form=form,
        filter_args=form.arguments(),
        kind_labels=KIND_LABELS,
        districts=_districts(),
        all_districts=scope is None,
        uses_outbox=uses_outbox(),
        mail_server=current_app.config.get("MAIL_SERVER"),
    )


@bp.get("/<stem>")
@personal_data_required
def show(stem):
    summary = _summary_or_404(stem)
    message = outbox.load_message(_directory(), stem)
    if message is None:
        abort(404)  # removed since
    return render_template(
        "core/outbox_message.html",
        stem=stem,
        summary=summary,
        kind_labels=KIND_LABELS,
        districts=_districts(),
        headers=outbox.headers(message),
        text=outbox.text_body(message),
        has_html=outbox.html_body(message) is not None,
        attachments=outbox.attachments(message),
    )


@bp.get("/<stem>.eml")
@personal_data_required
def download(stem):
    _summary_or_404(stem)
    path = outbox.message_path(_directory(), stem)
    if path is None:
        abort(404)
    response = send_file(path, mimetype="message/rfc822", as_attachment=True, download_name=outbox.file_name(stem))
    return _download(response)


@bp.get("/<stem>/html")
@personal_data_required
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
@personal_data_required
def attachment(stem, index):
    found = outbox.attachments(_message_or_404(stem))
    if index >= len(found):
        abort(404)
    item = found[index]
    response = send_file(
        BytesIO(item.data), mimetype=item.content_type, as_attachment=True, download_name=item.name
    )
    return _download(response)
