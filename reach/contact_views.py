"""Coordinator pages for logged contacts (Kontakte): list with filters, new, edit,
delete, CSV import with preview, CSV export.

Every page needs an editor: viewers see reach only as aggregates, never the
single contacts. A contact is loaded by id *and* district key, so the
district scope answers 404 for another district's contacts, and ids beyond
what the database holds answer 404 rather than an overflow. Services never
commit: a view commits; a refused change (`ContactError`) is rolled back and
shown at its field.

The CSV upload waits between preview and confirmation in Redis, as the
subscriber import's does (`subscribers.transfer`): one hour, bound to the
uploader and the district, parsed again on confirmation.
"""
import secrets

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
from flask_babel import ngettext
from sqlalchemy.exc import IntegrityError

from accounts.auth import editor_required, principal
from core import spreadsheet
from core.database import load_or_404
from core.extensions import db
from core.forms import show_error
from core.paging import paginate
from core.queue import get_redis
from directory.models import District
from reach import contacts, contacts_csv
from reach.contacts import KIND_LABELS, ContactError
from reach.forms import ContactFilterForm, ContactForm, ContactImportForm
from reach.models import Contact
from subscribers import transfer
from subscribers.csvio import MAX_UPLOAD_BYTES
from subscribers.services import district_topics

bp = Blueprint("contacts", __name__)

PER_PAGE = 50
UPLOAD_KEY = "contact-import:{}"
PREVIEW_ROWS = 20
SHOWN_SKIPPED_LINES = 20


@bp.context_processor
def _labels():
    return {"kind_labels": KIND_LABELS}


def _contact_or_404(key, id):
    return load_or_404(Contact, id=id, district_key=key)


def _list_url(key):
    return url_for("contacts.index", key=key)


# --- the list ------------------------------------------------------------------------


def _filters(district):
    form = ContactFilterForm(district, district_topics(district.key), formdata=request.args)
    chosen = form.active_filters()
    return form, chosen, form.filter_of(chosen)


@bp.get("/d/<key>/kontakte")
@editor_required
def index(key):
    district = load_or_404(District, key=key)
    form, chosen, filters = _filters(district)
    page = paginate(contacts.contact_query(key, filters), request.args.get("page", 1, type=int), PER_PAGE)
    return render_template("reach/contacts/list.html", district=district, form=form, filter_args=chosen, page=page)


# --- new, edit, delete ---------------------------------------------------------------


def _form_page(district, form, contact_id=None, status=200):
    return render_template("reach/contacts/form.html", district=district, form=form, contact_id=contact_id), status


def _contact_form(district, stored, save, done, contact_id=None):
    """Show the form filled with `stored` (GET), or `save` the posted values, commit and go to the list."""
    topics = district_topics(district.key)
    if request.method == "GET":
        return _form_page(district, ContactForm(district, topics, formdata=None, data=stored), contact_id)
    form = ContactForm(district, topics)
    if not form.validate_on_submit():
        return _form_page(district, form, contact_id, status=400)
    try:
        save(form.contact_data())
    except ContactError as error:
        db.session.rollback()
        show_error(form, error)
        return _form_page(district, form, contact_id, status=422)
    db.session.commit()
    flash(done, "success")
    return redirect(_list_url(district.key))


@bp.route("/d/<key>/kontakte/neu", methods=["GET", "POST"])
@editor_required
def new(key):
    district = load_or_404(District, key=key)
    return _contact_form(district, {"date": contacts.today().isoformat()},
                         lambda data: contacts.create_contact(key, data, created_by=principal()),
                         _("Der Kontakt ist erfasst."))


@bp.route("/d/<key>/kontakte/<int:id>/bearbeiten", methods=["GET", "POST"])
@editor_required
def edit(key, id):
    district = load_or_404(District, key=key)
    contact = _contact_or_404(key, id)
    return _contact_form(district, ContactForm.data_of(contact), lambda data: contacts.update_contact(contact, data),
                         _("Die Änderungen sind gespeichert."), id)


@bp.route("/d/<key>/kontakte/<int:id>/loeschen", methods=["GET", "POST"])
@editor_required
def delete(key, id):
    district = load_or_404(District, key=key)
    contact = _contact_or_404(key, id)
    if request.method == "GET":
        return render_template("reach/contacts/delete.html", district=district, contact=contact)
    contacts.delete_contact(contact)
    db.session.commit()
    flash(_("Der Kontakt ist gelöscht."), "success")
    return redirect(_list_url(key))


# --- import --------------------------------------------------------------------------


def _store_upload(district, data):
    upload_id = secrets.token_urlsafe(24)
    key = UPLOAD_KEY.format(upload_id)
    owner = {"user": str(principal().id), "district": district.key}
    with get_redis().pipeline() as pipe:
        pipe.hset(key, mapping={**owner, "data": data})
        pipe.expire(key, transfer.UPLOAD_TTL)
        pipe.execute()
    return upload_id


def _claim_upload(district, upload_id):
    """The bytes of this user's upload for this district, removed so it is imported once; else 404."""
    if not transfer.UPLOAD_ID.fullmatch(upload_id):
        abort(404)
    redis = get_redis()
    key = UPLOAD_KEY.format(upload_id)
    stored = redis.hgetall(key)
    owner = (stored.get(b"user", b"").decode(), stored.get(b"district", b"").decode())
    # The delete decides between two confirmations of the same upload.
    if owner != (str(principal().id), district.key) or redis.delete(key) != 1:
        abort(404)
    return stored[b"data"]


def _upload_page(district, form):
    return render_template("reach/contacts/import.html", district=district, form=form,
                           max_mb=MAX_UPLOAD_BYTES // 2**20)


@bp.route("/d/<key>/kontakte/import", methods=["GET", "POST"])
@editor_required
def upload(key):
    district = load_or_404(District, key=key)
    form = ContactImportForm()
    if not form.validate_on_submit():
        return _upload_page(district, form)
    data = transfer.read_upload(form.file.data)
    plan = contacts_csv.read_import(district, data) if data is not None else None
    if plan is None or not plan.readable:
        form.file.errors.append(plan.error if plan else _(
            "Die Datei ist größer als %(mb)d MB. Bitte teilen Sie sie auf.", mb=MAX_UPLOAD_BYTES // 2**20))
        return _upload_page(district, form)
    # Nothing to confirm when no row is valid: the page only lists the problems.
    upload_id = _store_upload(district, data) if plan.rows else None
    return render_template("reach/contacts/preview.html", district=district, plan=plan, upload_id=upload_id,
                           filename=form.file.data.filename or "", preview_rows=plan.rows[:PREVIEW_ROWS])


@bp.post("/d/<key>/kontakte/import/<upload_id>")
@editor_required
def confirm(key, upload_id):
    district = load_or_404(District, key=key)
    data = _claim_upload(district, upload_id)
    result = contacts_csv.import_contacts(district, data, created_by=principal())
    if not result.plan.readable:  # the preview read it; only a changed program reads it differently
        flash(result.plan.error, "error")
        return redirect(url_for("contacts.upload", key=key))
    try:
        db.session.commit()
    except IntegrityError:
        # A municipality or topic of the file was removed between the parse and the commit.
        db.session.rollback()
        flash(_("Gemeinden oder Themen wurden gerade geändert; es wurde nichts importiert. Bitte laden Sie die "
                "Datei erneut hoch."), "error")
        return redirect(url_for("contacts.upload", key=key))
    current_app.logger.info("contact import into %s by user %s: %d added, %d rows skipped",
                            district.key, principal().id, result.imported, result.plan.rejected_lines)
    flash(ngettext("%(num)d Kontakt importiert.", "%(num)d Kontakte importiert.", result.imported), "success")
    if result.plan.problems:
        lines = sorted({problem.line for problem in result.plan.problems})
        shown = ", ".join(map(str, lines[:SHOWN_SKIPPED_LINES])) + (" …" if len(lines) > SHOWN_SKIPPED_LINES else "")
        flash(ngettext("%(num)d Zeile wurde wegen eines Problems nicht importiert (Zeile %(lines)s).",
                       "%(num)d Zeilen wurden wegen Problemen nicht importiert (Zeilen %(lines)s).",
                       len(lines), lines=shown), "info")
    return redirect(_list_url(key))


# --- export ----------------------------------------------------------------------------


@bp.get("/d/<key>/kontakte.<any(csv, xlsx):extension>")
@editor_required
def export(key, extension):
    district = load_or_404(District, key=key)
    _form, _chosen, filters = _filters(district)
    filename = contacts_csv.export_filename(key, contacts.today(), extension)
    data = contacts_csv.export_file(key, filters, extension)
    content_type = spreadsheet.XLSX_TYPE if extension == "xlsx" else spreadsheet.CSV_TYPE
    return spreadsheet.download(data, content_type, filename)  # no-store: work records of the district
