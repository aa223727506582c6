"""Coordinator pages for a district's subscriber list: list, figures, add, edit,
unsubscribe, erase, the person's data export, topics, and the embeddable form.

Every page loads its district with `load_or_404`, and a subscriber or topic
by id *and* district key, so the district scope answers 404 for another
district's rows, and a row of an allowed district can not be reached
through another allowed district's URL either. Viewers see the figures
(per municipality, per topic) and the embeddable form; the list, a person's
page and every write take an editor (`personal_data_required`).
"""
import json

from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import case, func, select
from sqlalchemy.exc import IntegrityError

from accounts.auth import (
    can_edit,
    editor_required,
    login_required,
    personal_data_required,
)
from core.collation import sorted_by_name
from core.database import load_or_404
from core.extensions import db
from core.forms import show_error
from core.paging import paginate
from core.urls import external_url
from directory.models import District
from reach import services as reach_services
from subscribers import privacy, services
from subscribers.consent import (
    MAIL_CONSENT_VERSION,
    consent_text,
    current_consent_version,
)
from subscribers.forms import (
    EditSubscriberForm,
    NewSubscriberForm,
    SubscriberFilterForm,
    TopicForm,
)
from subscribers.jobs import enqueue_subscription_mails
from subscribers.models import Subscriber, Topic, subscriber_topics

bp = Blueprint("manage", __name__)

PER_PAGE = 50
# Statuses a coordinator can end with "abmelden"; the others have left already.
ON_LIST = ("pending", "active")


@bp.context_processor
def _labels():
    return {
        "status_labels": services.STATUS_LABELS,
        "source_labels": services.SOURCE_LABELS,
        "can_edit": can_edit,
    }



def _subscriber_or_404(key, id):
    return load_or_404(Subscriber, id=id, district_key=key)


def _commit_or_duplicate(form):
    """Commit; a concurrent insert of the same address ends as the form error, not a 500."""
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        form.email.errors = [*form.email.errors, _("Diese Adresse steht bereits in der Liste.")]
        return False
    return True


# --- the list ------------------------------------------------------------------


@bp.get("/d/<key>/subscribers")
@personal_data_required
def subscribers(key):
    district = load_or_404(District, key=key)
    topics = services.district_topics(key)
    form = SubscriberFilterForm(district, topics, formdata=request.args)
    chosen = form.active_filters()
    filters = services.SubscriberFilter(
        status=chosen.get("status"),
        municipality=chosen.get("municipality"),
        topic=int(chosen["topic"]) if "topic" in chosen else None,
        search=chosen.get("q"),
    )
    page = paginate(services.subscriber_query(key, filters), request.args.get("page", 1, type=int), PER_PAGE)
    return render_template(
        "subscribers/manage/list.html",
        district=district,
        form=form,
        filter_args=chosen,
        page=page,
        counts=services.status_counts(key),
        reached=reach_services.listed_count(key),
        municipality_total=len(district.municipalities),
    )


@bp.get("/d/<key>/subscribers/municipalities")
@login_required
def municipalities(key):
    district = load_or_404(District, key=key)
    coverage = services.municipality_coverage(key)
    return render_template(
        "subscribers/manage/municipalities.html",
        district=district,
        coverage=coverage,
        reached=reach_services.listed_count(key),
        municipality_total=len(coverage),
    )


# --- one subscriber ---------------------------------------------------------------


@bp.route("/d/<key>/subscribers/new", methods=["GET", "POST"])
@editor_required
def new_subscriber(key):
    district = load_or_404(District, key=key)
    form = NewSubscriberForm(district, services.district_topics(key))
    if form.validate_on_submit():
        double_opt_in = form.double_opt_in
        try:
            subscriber = services.add_subscriber(
                district,
                form.email.data,
                form.name.data or "",
                form.municipality.data,
                topics=services.topics_by_id(key, form.topics.data),
                department=form.department.data or "",
                source="admin",
                double_opt_in=double_opt_in,
                consent_version=MAIL_CONSENT_VERSION if double_opt_in else "",
            )
        except services.SubscriberError as error:
            db.session.rollback()
            show_error(form, error)
        else:
            if _commit_or_duplicate(form):
                if double_opt_in:
                    enqueue_subscription_mails([subscriber.id])
                    flash(_("%(email)s wurde eingetragen; die Bestätigungsmail wird verschickt.", email=subscriber.email),
                          "success")
                else:
                    flash(_("%(email)s wurde als aktiv eingetragen.", email=subscriber.email), "success")
                return redirect(url_for("manage.subscriber", key=key, id=subscriber.id))
    return render_template("subscribers/manage/new.html", district=district, form=form)


def _edit_form(district, subscriber):
    return EditSubscriberForm(
        district,
        services.district_topics(district.key),
        formdata=None,
        data={
            "email": subscriber.email,
            "name": subscriber.name,
            "municipality": subscriber.municipality_ags,
            "department": subscriber.department,
            "topics": [str(topic.id) for topic in subscriber.topics],
        },
    )


def _detail_page(district, subscriber, form=None):
    if form is None and can_edit():
        form = _edit_form(district, subscriber)
    return render_template(
        "subscribers/manage/detail.html",
        district=district,
        subscriber=subscriber,
        form=form,
        on_list=subscriber.status in ON_LIST,
    )


@bp.get("/d/<key>/subscribers/<int:id>")
@personal_data_required
def subscriber(key, id):
    district = load_or_404(District, key=key)
    return _detail_page(district, _subscriber_or_404(key, id))


@bp.post("/d/<key>/subscribers/<int:id>")
@editor_required
def edit_subscriber(key, id):
    district = load_or_404(District, key=key)
    subscriber = _subscriber_or_404(key, id)
    form = EditSubscriberForm(district, services.district_topics(key))
    if form.validate_on_submit():
        try:
            services.change_subscriber(
                subscriber,
                email=form.email.data,
                name=form.name.data or "",
                ags=form.municipality.data,
                topics=services.topics_by_id(key, form.topics.data),
                department=form.department.data or "",
            )
            db.session.flush()
        except services.SubscriberError as error:
            db.session.rollback()
            show_error(form, error)
        else:
            if _commit_or_duplicate(form):
                flash(_("Die Angaben wurden gespeichert."), "success")
                return redirect(url_for("manage.subscriber", key=key, id=subscriber.id))
    return _detail_page(district, subscriber, form=form)


@bp.post("/d/<key>/subscribers/<int:id>/unsubscribe")
@editor_required
def unsubscribe(key, id):
    subscriber = _subscriber_or_404(key, id)
    changed = services.unsubscribe(subscriber)
    db.session.commit()
    if changed:
        flash(_("%(email)s wurde abgemeldet und erhält keine Listenmails mehr.", email=subscriber.email), "success")
    else:
        flash(_("%(email)s stand schon nicht mehr auf der Liste.", email=subscriber.email), "info")
    return redirect(url_for("manage.subscriber", key=key, id=subscriber.id))


@bp.post("/d/<key>/subscribers/<int:id>/resend")
@editor_required
def resend(key, id):
    subscriber = _subscriber_or_404(key, id)
    target = url_for("manage.subscriber", key=key, id=subscriber.id)
    try:
        services.restart_opt_in(subscriber, "admin")
    except services.SubscriberError as error:
        db.session.rollback()
        flash(str(error), "error")
        return redirect(target)
    # The same daily limit per address as the public form: a coordinator's
    # button must not flood an inbox either.
    if not services.confirmation_mail_allowed(key, subscriber.email_key):
        db.session.rollback()
        flash(_("An diese Adresse gingen heute schon genug Bestätigungsmails. Bitte versuchen Sie es morgen wieder."),
              "error")
        return redirect(target)
    db.session.commit()
    enqueue_subscription_mails([subscriber.id])
    flash(_("Eine neue Bestätigungsmail an %(email)s wird verschickt.", email=subscriber.email), "success")
    return redirect(target)


@bp.route("/d/<key>/subscribers/<int:id>/erase", methods=["GET", "POST"])
@editor_required
def erase(key, id):
    district = load_or_404(District, key=key)
    subscriber = _subscriber_or_404(key, id)
    if request.method == "GET":
        return render_template("subscribers/manage/erase.html", district=district, subscriber=subscriber)
    privacy.erase_subscriber(subscriber)
    db.session.commit()
    # No address in the message: flashes travel in the (signed, not encrypted) session cookie.
    flash(_("Die Daten der Person wurden gelöscht. Ihre Adresse steht nur noch als Prüfsumme auf der Sperrliste."),
          "success")
    return redirect(url_for("manage.subscribers", key=key))


@bp.get("/d/<key>/subscribers/<int:id>/export.json")
@personal_data_required
def export_person(key, id):
    subscriber = _subscriber_or_404(key, id)
    body = json.dumps(privacy.export_subscriber(subscriber), ensure_ascii=False, indent=2)
    response = current_app.response_class(body + "\n", mimetype="application/json")
    response.headers["Content-Disposition"] = f'attachment; filename="abonnent-{key}-{subscriber.id}.json"'
    response.headers["Cache-Control"] = "no-store"
    return response


# --- topics --------------------------------------------------------------------------


def topic_counts(district_key):
    """[(topic, active subscribers, all subscribers)] of the district, by name."""
    rows = db.session.execute(
        select(
            Topic,
            func.coalesce(func.sum(case((Subscriber.status == "active", 1), else_=0)), 0),
            func.count(Subscriber.id),
        )
        .outerjoin(subscriber_topics, subscriber_topics.c.topic_id == Topic.id)
        .outerjoin(Subscriber, Subscriber.id == subscriber_topics.c.subscriber_id)
        .where(Topic.district_key == district_key)
        .group_by(Topic.id)
    ).all()
    return sorted_by_name([(topic, int(active), int(total)) for topic, active, total in rows], lambda row: row[0].name)


def _topics_page(district, form=None, rename_errors=None, status=200):
    return render_template(
        "subscribers/manage/topics.html",
        district=district,
        topics=topic_counts(district.key),
        form=form or TopicForm(formdata=None),
        rename_errors=rename_errors or {},
    ), status


@bp.get("/d/<key>/topics")
@login_required
def topics(key):
    return _topics_page(load_or_404(District, key=key))


@bp.post("/d/<key>/topics")
@editor_required
def create_topic(key):
    district = load_or_404(District, key=key)
    form = TopicForm()
    if form.validate_on_submit():
        try:
            topic = services.create_topic(key, form.name.data)
        except services.SubscriberError as error:
            db.session.rollback()
            show_error(form, error)
        else:
            db.session.commit()
            flash(_("Das Thema „%(name)s“ wurde angelegt.", name=topic.name), "success")
            return redirect(url_for("manage.topics", key=key))
    return _topics_page(district, form=form, status=400)


@bp.post("/d/<key>/topics/<int:topic_id>")
@editor_required
def rename_topic(key, topic_id):
    district = load_or_404(District, key=key)
    topic = load_or_404(Topic, id=topic_id, district_key=key)
    try:
        services.rename_topic(topic, request.form.get("name", ""))
    except services.SubscriberError as error:
        db.session.rollback()
        return _topics_page(district, rename_errors={topic.id: str(error)}, status=400)
    db.session.commit()
    flash(_("Das Thema heißt jetzt „%(name)s“.", name=topic.name), "success")
    return redirect(url_for("manage.topics", key=key))


@bp.route("/d/<key>/topics/<int:topic_id>/delete", methods=["GET", "POST"])
@editor_required
def delete_topic(key, topic_id):
    district = load_or_404(District, key=key)
    topic = load_or_404(Topic, id=topic_id, district_key=key)
    if request.method == "GET":
        count = next((total for t, _active, total in topic_counts(key) if t.id == topic.id), 0)
        return render_template("subscribers/manage/topic_delete.html", district=district, topic=topic, count=count)
    name = topic.name
    services.delete_topic(topic)
    db.session.commit()
    flash(_("Das Thema „%(name)s“ wurde gelöscht.", name=name), "success")
    return redirect(url_for("manage.topics", key=key))


# --- the embeddable form ------------------------------------------------------------


def embed_snippet(district, topics, action):
    """Plain HTML of the subscription form for a municipal website.

    Always in German: the public form records the consent text of the
    default language for a POST without a session, and the snippet must
    show that very text.
    """
    with force_locale("de"):
        return render_template(
            "subscribers/manage/embed_snippet.html",
            district=district,
            topics=topics,
            action=action,
            consent=consent_text(current_consent_version()),
        ).strip()


@bp.get("/d/<key>/subscribers/embed")
@login_required
def embed(key):
    district = load_or_404(District, key=key)
    # BASE_URL, not the request's host: the form is posted from other websites.
    action = external_url("public.subscribe", key=key)
    return render_template(
        "subscribers/manage/embed.html",
        district=district,
        action=action,
        snippet=embed_snippet(district, services.district_topics(key), action),
    )
