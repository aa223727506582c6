"""Coordinator pages for CSV import (with preview) and export of a district's list.

The uploaded file waits between preview and confirmation in Redis (one hour,
under a random id, bound to the uploader and the district), not in the
session cookie, which is too small and only signed. Confirming parses it
again, since the list may have changed since the preview.

Both need an editor (coordinator or admin): the file holds names and
addresses, which viewers do not see.
"""
import re
import secrets
from datetime import datetime
from zoneinfo import ZoneInfo

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from flask_wtf.file import FileField, FileRequired
from sqlalchemy.exc import IntegrityError
from wtforms import BooleanField

from accounts.auth import editor_required, personal_data_required, principal
from core.database import load_or_404
from core.extensions import db
from core.forms import Form
from core.queue import get_redis
from directory.models import District
from subscribers import csvio, jobs

bp = Blueprint("transfer", __name__)

UPLOAD_TTL = 3600  # seconds an upload waits for its confirmation
UPLOAD_KEY = "subscriber-import:{}"
UPLOAD_ID = re.compile(r"[A-Za-z0-9_-]{20,64}")
PREVIEW_ROWS = 20


class ImportForm(Form):
    file = FileField(_l("CSV-Datei"), validators=[FileRequired(_l("Bitte wählen Sie eine CSV-Datei aus."))])
    opt_in = BooleanField(_l("Opt-in-Mail senden statt direkt aktivieren"))


# --- the upload waiting for confirmation -----------------------------------


def store_upload(district, data, opt_in):
    upload_id = secrets.token_urlsafe(24)
    key = UPLOAD_KEY.format(upload_id)
    with get_redis().pipeline() as pipe:
        pipe.hset(key, mapping={
            "user": str(principal().id), "district": district.key, "opt_in": "1" if opt_in else "",
            "data": data,
        })
        pipe.expire(key, UPLOAD_TTL)
        pipe.execute()
    return upload_id


def load_upload(district, upload_id):
    """(data, opt_in) of this user's upload for this district, else 404."""
    if not UPLOAD_ID.fullmatch(upload_id):
        abort(404)
    stored = get_redis().hgetall(UPLOAD_KEY.format(upload_id))
    if not stored or stored.get(b"user", b"").decode() != str(principal().id) \
            or stored.get(b"district", b"").decode() != district.key:
        abort(404)
    return stored[b"data"], stored.get(b"opt_in") == b"1"


def claim_upload(upload_id):
    """Delete the upload; False when another request confirmed it first."""
    return get_redis().delete(UPLOAD_KEY.format(upload_id)) == 1


def read_upload(storage):
    """The uploaded bytes, or None when the file is larger than allowed."""
    data = storage.stream.read(csvio.MAX_UPLOAD_BYTES + 1)
    return None if len(data) > csvio.MAX_UPLOAD_BYTES else data


# --- pages -----------------------------------------------------------------


@bp.route("/d/<key>/subscribers/import", methods=["GET", "POST"])
@editor_required
def upload(key):
    district = load_or_404(District, key=key)
    form = ImportForm()
    if form.validate_on_submit():
        data = read_upload(form.file.data)
        if data is None:
            form.file.errors.append(_(
                "Die Datei ist größer als %(mb)d MB. Bitte teilen Sie sie auf.", mb=csvio.MAX_UPLOAD_BYTES // 2**20
            ))
        else:
            plan = csvio.read_import(district, data)
            if not plan.readable:
                form.file.errors.append(plan.error)
            else:
                filename = form.file.data.filename or ""
                # Nothing to confirm when no row is valid: the page only lists the problems.
                upload_id = store_upload(district, data, form.opt_in.data) if plan.rows else None
                return render_template(
                    "subscribers/transfer/preview.html", district=district, plan=plan, upload_id=upload_id,
                    opt_in=form.opt_in.data, filename=filename, preview_rows=plan.rows[:PREVIEW_ROWS],
                    municipality_names={m.ags: m.name for m in district.municipalities},
                )
    return render_template("subscribers/transfer/upload.html", district=district, form=form,
                           max_mb=csvio.MAX_UPLOAD_BYTES // 2**20)


@bp.post("/d/<key>/subscribers/import/<upload_id>")
@editor_required
def confirm(key, upload_id):
    district = load_or_404(District, key=key)
    data, opt_in = load_upload(district, upload_id)
    if not claim_upload(upload_id):
        abort(404)
    result = csvio.import_subscribers(district, data, opt_in=opt_in)
    if not result.plan.readable:  # cannot happen for a file the preview read, unless the code changed
        flash(result.plan.error, "error")
        return redirect(url_for("transfer.upload", key=key))
    try:
        db.session.commit()
    except IntegrityError:
        # Someone added one of the addresses between the parse and the commit.
        db.session.rollback()
        flash(_("Die Liste wurde gerade geändert; es wurde nichts importiert. Bitte laden Sie die Datei erneut hoch."),
              "error")
        return redirect(url_for("transfer.upload", key=key))
    if opt_in:
        jobs.enqueue_subscription_mails([subscriber.id for subscriber in result.added])
    current_app.logger.info("import into %s by user %s: %d added, %d rows skipped",
                            district.key, principal().id, result.imported, result.plan.rejected_lines)
    if opt_in:
        flash(ngettext("%(num)d Adresse importiert; sie erhält eine Mail, mit der sie ihre Anmeldung bestätigt.",
                       "%(num)d Adressen importiert; sie erhalten eine Mail, mit der sie ihre Anmeldung bestätigen.",
                       result.imported), "success")
    else:
        flash(ngettext("%(num)d Adresse importiert.", "%(num)d Adressen importiert.", result.imported), "success")
    if result.plan.problems:
        flash(ngettext("%(num)d Zeile wurde wegen eines Problems nicht importiert.",
                       "%(num)d Zeilen wurden wegen Problemen nicht importiert.", result.plan.rejected_lines), "info")
    return redirect(url_for("manage.subscribers", key=key))


@bp.get("/d/<key>/subscribers/export.csv")
@personal_data_required
def export(key):
    district = load_or_404(District, key=key)
    data = csvio.export_csv(district)
    today = datetime.now(ZoneInfo(current_app.config["BABEL_DEFAULT_TIMEZONE"])).date()
    response = current_app.response_class(data, mimetype="text/csv")
    response.headers["Content-Type"] = "text/csv; charset=utf-8"
    response.headers["Content-Disposition"] = f'attachment; filename="{csvio.export_filename(district, today)}"'
    response.headers["Cache-Control"] = "no-store"  # personal data
    return response
