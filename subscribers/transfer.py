"""Coordinator pages for CSV import (with preview) and export of a district's list.

The uploaded file waits between preview and confirmation in Redis (one hour,
under a random id, bound to the uploader and the district), not in the
session cookie, which is too small and only signed. The column mapping the
coordinator chooses on the preview page (a plain form, no script) is kept
with it, so the import reads the file as the last preview did. Confirming
parses it again, since the list may have changed since the preview; the
confirmation says whether unknown topics are created or left out.

Both need an editor (coordinator or admin): the file holds names and
addresses, which viewers do not see.
"""
import json
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from flask_wtf.file import FileField, FileRequired
from sqlalchemy.exc import IntegrityError
from wtforms import BooleanField

from accounts.auth import editor_required, personal_data_required, principal
from core import spreadsheet
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
            "mapping": "", "data": data,
        })
        pipe.expire(key, UPLOAD_TTL)
        pipe.execute()
    return upload_id


@dataclass
class Upload:
    id: str
    data: bytes
    opt_in: bool
    mapping: dict | None  # None: guessed from the header


def load_upload(district, upload_id):
    """This user's upload for this district, else 404."""
    if not UPLOAD_ID.fullmatch(upload_id):
        abort(404)
    stored = get_redis().hgetall(UPLOAD_KEY.format(upload_id))
    if not stored or stored.get(b"user", b"").decode() != str(principal().id) \
            or stored.get(b"district", b"").decode() != district.key:
        abort(404)
    mapping = stored.get(b"mapping", b"").decode()
    return Upload(upload_id, stored[b"data"], stored.get(b"opt_in") == b"1", json.loads(mapping) if mapping else None)


def store_mapping(upload_id, mapping):
    """Keep the chosen column mapping with the upload; the import uses what the last preview showed."""
    get_redis().hset(UPLOAD_KEY.format(upload_id), "mapping", json.dumps(mapping))


def claim_upload(upload_id):
    """Delete the upload; False when another request confirmed it first."""
    return get_redis().delete(UPLOAD_KEY.format(upload_id)) == 1


def read_upload(storage):
    """The uploaded bytes, or None when the file is larger than allowed."""
    data = storage.stream.read(csvio.MAX_UPLOAD_BYTES + 1)
    return None if len(data) > csvio.MAX_UPLOAD_BYTES else data


def mapping_from_form(form):
    """{field: column index or None} from the preview's selects; None when a value is not a column number."""
    mapping = {}
    for name in csvio.FIELDS:
        value = form.get(f"column-{name}", "")
        if value == "":
            mapping[name] = None
        elif value.isascii() and value.isdigit() and len(value) < 6:
            mapping[name] = int(value)
        else:
            return None
    return mapping


def render_preview(district, upload, plan, filename="", status=200):
    # The confirmation is offered when rows can be imported; the mapping form whenever the header was read.
    return render_template(
        "subscribers/transfer/preview.html", district=district, plan=plan, upload_id=upload.id,
        can_import=plan.readable and bool(plan.rows), opt_in=upload.opt_in, filename=filename,
        preview_rows=plan.rows[:PREVIEW_ROWS], fields=csvio.FIELDS, field_labels=csvio.FIELD_LABELS,
        required_fields=csvio.REQUIRED_FIELDS, mapping=plan.mapping or upload.mapping or {},
        municipality_names={m.ags: m.name for m in district.municipalities},
    ), status


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
            if not plan.mappable:
                form.file.errors.append(plan.error)
            else:
                upload_id = store_upload(district, data, form.opt_in.data)
                return render_preview(district, Upload(upload_id, data, form.opt_in.data, None), plan,
                                      filename=form.file.data.filename or "")
    return render_template("subscribers/transfer/upload.html", district=district, form=form,
                           max_mb=csvio.MAX_UPLOAD_BYTES // 2**20)


@bp.post("/d/<key>/subscribers/import/<upload_id>/mapping")
@editor_required
def remap(key, upload_id):
    """Preview again with the columns the coordinator chose; the mapping is kept for the import."""
    district = load_or_404(District, key=key)
    upload = load_upload(district, upload_id)
    mapping = mapping_from_form(request.form)
    if mapping is None:
        abort(400)
    plan = csvio.read_import(district, upload.data, mapping=mapping)
    store_mapping(upload.id, mapping)
    upload.mapping = mapping
    return render_preview(district, upload, plan, status=200 if plan.readable else 422)


@bp.post("/d/<key>/subscribers/import/<upload_id>")
@editor_required
def confirm(key, upload_id):
    district = load_or_404(District, key=key)
    upload = load_upload(district, upload_id)
    topic_choice = request.form.get("unknown_topics", "skip")
    if topic_choice not in ("create", "skip"):
        abort(400)
    if not claim_upload(upload_id):
        abort(404)
    result = csvio.import_subscribers(district, upload.data, opt_in=upload.opt_in, mapping=upload.mapping,
                                      create_topics=topic_choice == "create")
    if not result.plan.readable:  # the stored mapping no longer fits; cannot happen for a previewed file
        flash(result.plan.error, "error")
        return redirect(url_for("transfer.upload", key=key))
    try:
        db.session.commit()
    except IntegrityError:
        # Someone added one of the addresses (or topics) between the parse and the commit.
        db.session.rollback()
        flash(_("Die Liste wurde gerade geändert; es wurde nichts importiert. Bitte laden Sie die Datei erneut hoch."),
              "error")
        return redirect(url_for("transfer.upload", key=key))
    if upload.opt_in:
        jobs.enqueue_subscription_mails([subscriber.id for subscriber in result.added])
    current_app.logger.info("import into %s by user %s: %d added, %d rows skipped",
                            district.key, principal().id, result.imported, result.plan.rejected_lines)
    if upload.opt_in:
        flash(ngettext("%(num)d Adresse importiert; sie erhält eine Mail, mit der sie ihre Anmeldung bestätigt.",
                       "%(num)d Adressen importiert; sie erhalten eine Mail, mit der sie ihre Anmeldung bestätigen.",
                       result.imported), "success")
    else:
        flash(ngettext("%(num)d Adresse importiert.", "%(num)d Adressen importiert.", result.imported), "success")
    unknown = list(result.plan.unknown_topics)
    if unknown and topic_choice == "create":
        flash(ngettext("Neues Thema angelegt: %(names)s", "Neue Themen angelegt: %(names)s", len(unknown),
                       names=", ".join(unknown)), "info")
    elif unknown:
        flash(ngettext("Ohne das unbekannte Thema importiert: %(names)s",
                       "Ohne die unbekannten Themen importiert: %(names)s", len(unknown),
                       names=", ".join(unknown)), "info")
    if result.plan.problems:
        flash(ngettext("%(num)d Zeile wurde wegen eines Problems nicht importiert.",
                       "%(num)d Zeilen wurden wegen Problemen nicht importiert.", result.plan.rejected_lines), "info")
    return redirect(url_for("manage.subscribers", key=key))


@bp.get("/d/<key>/subscribers/export.<any(csv, xlsx):extension>")
@personal_data_required
def export(key, extension):
    district = load_or_404(District, key=key)
    data = csvio.export_xlsx(district) if extension == "xlsx" else csvio.export_csv(district)
    today = datetime.now(ZoneInfo(current_app.config["BABEL_DEFAULT_TIMEZONE"])).date()
    content_type = spreadsheet.XLSX_TYPE if extension == "xlsx" else spreadsheet.CSV_TYPE
    # no-store: personal data
    return spreadsheet.download(data, content_type, csvio.export_filename(district, today, extension))
