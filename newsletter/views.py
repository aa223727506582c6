"""Coordinator pages for newsletters: list, compose, preview, test, send, schedule,
pause, resume, cancel, and the progress of a send.

Every page loads its district with `load_or_404` and a newsletter by id *and*
district key, so another district's newsletter answers 404. Viewers read;
writing and sending take an editor. The preview is its own document, shown
in a sandboxed frame under a policy that lets nothing run; the pages
themselves load no inline script (the progress bar polls from a static file
and the page works without it).
"""
import smtplib
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from flask import (
    Blueprint,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import format_datetime, lazy_gettext
from flask_babel import gettext as _
from sqlalchemy import func, select

from accounts.auth import can_edit, editor_required, login_required, principal
from core.database import load_or_404
from core.extensions import db
from core.forms import show_error
from directory.models import District
from newsletter import compose, jobs, sending, services
from newsletter.forms import (
    MAX_TEST_ADDRESSES,
    NewsletterForm,
    PublishForm,
    ScheduleForm,
    SendNowForm,
    TestSendForm,
)
from newsletter.archive import PUBLISHED as ARCHIVE_STATES
from newsletter.models import DELIVERY_STATES, Delivery, Newsletter
from newsletter.services import ContentError, NewsletterError
from subscribers.services import district_topics

bp = Blueprint("newsletters", __name__)

STATUS_LABELS = {
    "draft": lazy_gettext("Entwurf"),
    "scheduled": lazy_gettext("geplant"),
    "sending": lazy_gettext("wird versendet"),
    "paused": lazy_gettext("angehalten"),
    "sent": lazy_gettext("versendet"),
    "cancelled": lazy_gettext("abgebrochen"),
}
DELIVERY_LABELS = {
    "queued": lazy_gettext("wartend"),
    "sending": lazy_gettext("in Arbeit"),
    "sent": lazy_gettext("gesendet"),
    "deferred": lazy_gettext("zurückgestellt"),
    "failed": lazy_gettext("fehlgeschlagen"),
    "bounced": lazy_gettext("unzustellbar"),
    "suppressed": lazy_gettext("übersprungen"),
}
# Rows still to be sent: the progress bar moves until none is left.
PENDING_DELIVERIES = ("queued", "sending", "deferred")
# What a service may raise for input or state; anything else is a bug and may be a 500.
REFUSALS = (NewsletterError, ContentError, sending.SendingError)


@bp.context_processor
def _labels():
    return {"status_labels": STATUS_LABELS, "delivery_labels": DELIVERY_LABELS, "can_edit": can_edit,
            "archive_states": ARCHIVE_STATES}



def _newsletter_or_404(key, id):
    return load_or_404(Newsletter, id=id, district_key=key)


def _detail_url(newsletter):
    return url_for("newsletters.detail", key=newsletter.district_key, id=newsletter.id)


def local_zone():
    return ZoneInfo(current_app.config["BABEL_DEFAULT_TIMEZONE"])


def progress_of(counts):
    """The figures of the progress bar from {delivery status: count}."""
    total = sum(counts.values())
    done = total - sum(counts[status] for status in PENDING_DELIVERIES)
    return {
        "total": total,
        "done": done,
        "sent": counts["sent"],
        "pending": total - done,
        "percent": round(100 * done / total) if total else 0,
        "counts": counts,
    }


def progress_by_newsletter(district_key):
    """{newsletter id: progress} of the district's newsletters that have delivery rows, in one query."""
    counts = {}
    for newsletter_id, status, count in db.session.execute(
        select(Delivery.newsletter_id, Delivery.status, func.count())
        .where(Delivery.district_key == district_key)
        .group_by(Delivery.newsletter_id, Delivery.status)
    ):
        counts.setdefault(newsletter_id, dict.fromkeys(DELIVERY_STATES, 0))[status] = count
    return {newsletter_id: progress_of(by_status) for newsletter_id, by_status in counts.items()}


# --- list and compose ---------------------------------------------------------------


@bp.get("/d/<key>/newsletters/manage")
@login_required
def index(key):
    district = load_or_404(District, key=key)
    newsletters = db.session.execute(
        select(Newsletter).where(Newsletter.district_key == key)
        .order_by(Newsletter.created_at.desc(), Newsletter.id.desc())
    ).scalars().all()
    return render_template(
        "newsletter/list.html", district=district, newsletters=newsletters, progress=progress_by_newsletter(key)
    )


def _compose_page(district, form, newsletter=None, status=200):
    return render_template(
        "newsletter/compose.html", district=district, form=form, newsletter=newsletter,
        placeholders=compose.PLACEHOLDERS,
    ), status


@bp.route("/d/<key>/newsletters/new", methods=["GET", "POST"])
@editor_required
def new(key):
    district = load_or_404(District, key=key)
    form = NewsletterForm(district, district_topics(key))
    if form.validate_on_submit():
        try:
            newsletter = services.create_newsletter(district, author=principal(), **form.service_fields())
        except REFUSALS as error:
            db.session.rollback()
            show_error(form, error)
        else:
            db.session.commit()
            flash(_("Der Newsletter wurde als Entwurf gespeichert."), "success")
            return redirect(_detail_url(newsletter))
    return _compose_page(district, form, status=400 if form.is_submitted() else 200)


@bp.route("/d/<key>/newsletters/<int:id>/edit", methods=["GET", "POST"])
@editor_required
def edit(key, id):
    district = load_or_404(District, key=key)
    newsletter = _newsletter_or_404(key, id)
    if newsletter.status not in services.EDITABLE:
        flash(_("Ein Newsletter, dessen Versand begonnen hat, kann nicht mehr geändert werden."), "error")
        return redirect(_detail_url(newsletter))
    topics = district_topics(key)
    if request.method == "GET":
        form = NewsletterForm(district, topics, formdata=None, data=NewsletterForm.data_of(newsletter))
        return _compose_page(district, form, newsletter)
    form = NewsletterForm(district, topics)
    if form.validate_on_submit():
        try:
            services.update_newsletter(newsletter, **form.service_fields())
        except REFUSALS as error:
            db.session.rollback()
            show_error(form, error)
        else:
            db.session.commit()
            flash(_("Die Änderungen wurden gespeichert."), "success")
            return redirect(_detail_url(newsletter))
    return _compose_page(district, form, newsletter, status=400)


# --- one newsletter ---------------------------------------------------------------


def _schedule_form(newsletter):
    if newsletter.status == "scheduled" and newsletter.scheduled_at:
        local = newsletter.scheduled_at.astimezone(local_zone())
        return ScheduleForm(formdata=None, data={"date": local.date(), "time": local.time().replace(second=0)})
    return ScheduleForm(formdata=None)


def _detail_page(district, newsletter, status=200, **forms):
    from newsletter.tracking import newsletter_stats

    counts = sending.progress(newsletter.id)
    before_sending = newsletter.status in services.EDITABLE
    forms.setdefault("test_form", TestSendForm(formdata=None))
    forms.setdefault("send_form", SendNowForm(formdata=None))
    forms.setdefault("schedule_form", _schedule_form(newsletter))
    forms.setdefault("publish_form", PublishForm(formdata=None))
    try:
        sample_subject, _html, sample_text = compose.preview(newsletter)
        preview_error = None
    except ContentError as error:
        sample_subject = sample_text = None
        preview_error = str(error)
    return render_template(
        "newsletter/detail.html",
        district=district,
        newsletter=newsletter,
        audience_size=sending.audience_size(newsletter) if before_sending else None,
        before_sending=before_sending,
        progress=progress_of(counts),
        stats=None if before_sending else newsletter_stats(newsletter),
        max_test_addresses=MAX_TEST_ADDRESSES,
        sample_subject=sample_subject,
        sample_text=sample_text,
        preview_error=preview_error,
        **forms,
    ), status


@bp.get("/d/<key>/newsletters/<int:id>/manage")
@login_required
def detail(key, id):
    district = load_or_404(District, key=key)
    return _detail_page(district, _newsletter_or_404(key, id))


@bp.get("/d/<key>/newsletters/<int:id>/preview.html")
@login_required
def preview(key, id):
    newsletter = _newsletter_or_404(key, id)
    try:
        html = compose.preview(newsletter)[1]
    except ContentError as error:
        # Stored content always compiled once; a changed layout may still break it.
        html = render_template("newsletter/preview_error.html", message=str(error))
    response = current_app.response_class(html, mimetype="text/html")
    # The mail's own document: its inline styles and remote images may load,
    # nothing may run, and only our own pages may frame it.
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; font-src https:; "
        "frame-ancestors 'self'; sandbox"
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/d/<key>/newsletters/<int:id>/progress.json")
@login_required
def progress(key, id):
    newsletter = _newsletter_or_404(key, id)
    figures = progress_of(sending.progress(newsletter.id))
    figures["counts"] = {status: figures["counts"][status] for status in DELIVERY_STATES}
    figures.update(
        status=newsletter.status,
        status_label=str(STATUS_LABELS[newsletter.status]),
        finished=newsletter.status not in ("scheduled", "sending"),
    )
    response = jsonify(figures)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/d/<key>/newsletters/<int:id>/test")
@editor_required
def send_test(key, id):
    district = load_or_404(District, key=key)
    newsletter = _newsletter_or_404(key, id)
    form = TestSendForm()
    if form.validate_on_submit():
        try:
            recipients = services.send_test(newsletter, form.address_list())
        except REFUSALS as error:
            db.session.rollback()
            show_error(form, error)
        except (smtplib.SMTPException, OSError):
            current_app.logger.exception("test send of newsletter %s failed", newsletter.id)
            message = _("Der Mailserver hat den Testversand nicht angenommen. Bitte später erneut versuchen.")
            form.addresses.errors = [*form.addresses.errors, message]
        else:
            # No addresses in the message: flashes travel in the (signed, not encrypted) session cookie.
            flash(_("Der Testversand an %(count)d Adressen ist verschickt.", count=len(recipients)), "success")
            return redirect(_detail_url(newsletter) + "#test-heading")
    return _detail_page(district, newsletter, status=400, test_form=form)


@bp.post("/d/<key>/newsletters/<int:id>/send")
@editor_required
def send_now(key, id):
    district = load_or_404(District, key=key)
    newsletter = _newsletter_or_404(key, id)
    form = SendNowForm()
    if form.validate_on_submit():
        try:
            written = services.send_now(newsletter)
        except REFUSALS as error:
            return _refused(newsletter, error)
        else:
            db.session.commit()
            jobs.enqueue_senders(newsletter.id)
            flash(_("Der Versand an %(count)d Empfängerinnen und Empfänger hat begonnen.", count=written), "success")
            return redirect(_detail_url(newsletter))
    return _detail_page(district, newsletter, status=400, send_form=form)


@bp.post("/d/<key>/newsletters/<int:id>/schedule")
@editor_required
def schedule(key, id):
    district = load_or_404(District, key=key)
    newsletter = _newsletter_or_404(key, id)
    form = ScheduleForm()
    if form.validate_on_submit():
        local = datetime.combine(form.date.data, form.time.data.replace(second=0, microsecond=0), tzinfo=local_zone())
        try:
            services.schedule(newsletter, local.astimezone(timezone.utc))
        except REFUSALS as error:
            if getattr(error, "field", None) != "at":
                return _refused(newsletter, error)
            db.session.rollback()
            form.date.errors = [*form.date.errors, str(error)]
        else:
            db.session.commit()
            when = format_datetime(newsletter.scheduled_at, "dd.MM.yyyy HH:mm")
            flash(_("Der Versand ist geplant für %(when)s.", when=when), "success")
            return redirect(_detail_url(newsletter))
    return _detail_page(district, newsletter, status=400, schedule_form=form)


@bp.post("/d/<key>/newsletters/<int:id>/publish")
@editor_required
def publish(key, id):
    """The archive switch: works before, during and after sending."""
    newsletter = _newsletter_or_404(key, id)
    # CSRFProtect has checked the token; the checkbox is either sent (on) or not (off).
    form = PublishForm()
    services.set_published(newsletter, form.published_in_archive.data)
    db.session.commit()
    if not newsletter.published_in_archive:
        message = _("Der Newsletter ist nicht mehr im öffentlichen Archiv.")
    elif newsletter.status in ARCHIVE_STATES:
        message = _("Der Newsletter ist im öffentlichen Archiv veröffentlicht.")
    else:
        message = _("Der Newsletter erscheint nach dem Versand im öffentlichen Archiv.")
    flash(message, "success")
    return redirect(_detail_url(newsletter) + "#archive-heading")


def _refused(newsletter, error):
    """The newsletter's state refuses the action (a second click, another tab): say so on its page."""
    db.session.rollback()
    flash(str(error), "error")
    return redirect(_detail_url(newsletter))


def _change_state(key, id, action, done_message, enqueue=False):
    newsletter = _newsletter_or_404(key, id)
    try:
        action(newsletter)
    except REFUSALS as error:
        return _refused(newsletter, error)
    else:
        db.session.commit()
        if enqueue:
            jobs.enqueue_senders(newsletter.id)
        flash(done_message, "success")
    return redirect(_detail_url(newsletter))


@bp.post("/d/<key>/newsletters/<int:id>/pause")
@editor_required
def pause(key, id):
    return _change_state(key, id, services.pause,
                         _("Der Versand ist angehalten. Bereits gesendete Mails bleiben gesendet."))


@bp.post("/d/<key>/newsletters/<int:id>/resume")
@editor_required
def resume(key, id):
    return _change_state(key, id, services.resume, _("Der Versand wird fortgesetzt."), enqueue=True)


@bp.post("/d/<key>/newsletters/<int:id>/cancel")
@editor_required
def cancel(key, id):
    return _change_state(key, id, services.cancel,
                         _("Der Versand ist abgebrochen. Noch nicht gesendete Mails werden nicht mehr verschickt."))
