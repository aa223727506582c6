"""Public pages for municipal staff: subscribe, confirm, preferences, unsubscribe.

No login: the signed token in the link is the authority. A GET from a link
never changes anything (mail gateways fetch links to scan them); the page it
shows has a button that POSTs. The one exception to "no POST without a page
first" is RFC 8058's one-click unsubscribe, which mail clients POST directly,
so the unsubscribe URL takes a POST without a CSRF token.

The subscription form may be embedded on a municipal website as plain HTML,
so it takes its POST without a session CSRF token too; a honeypot field and
rate limits (per client and per address entered) protect it instead.

Every page under a token link is `personal_link` (core.urls): kept out of
caches (`no-store`) and out of Referer headers.
"""
import json

from flask import (
    Blueprint,
    abort,
    current_app,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from wtforms import (
    BooleanField,
    EmailField,
    SelectField,
    SelectMultipleField,
    StringField,
)
from wtforms.validators import DataRequired, Length, Optional, ValidationError

from core.database import load_or_404, set_district_scope
from core.extensions import csrf, db, limiter
from core.forms import Form, show_error
from core.tokens import ExpiredToken, InvalidToken, read_token
from core.urls import personal_link
from directory.models import District
from subscribers import privacy, services
from subscribers.consent import consent_text, current_consent_version
from subscribers.jobs import enqueue_subscription_mail
from subscribers.mail import manage_token, unsubscribe_token
from subscribers.models import Subscriber

bp = Blueprint("public", __name__)

HONEYPOT = "website"
TRUE_VALUES = ("1", "on", "true", "yes", "y", "ja")


@bp.before_request
def _unscoped():
    # These pages serve anyone with the link, including staff who are signed
    # in as coordinators of another district and subscribed to this one.
    set_district_scope(None)


@bp.context_processor
def _labels():
    return {"status_labels": services.STATUS_LABELS}


# --- forms -------------------------------------------------------------------


class DetailsForm(Form):
    name = StringField(_l("Name"), validators=[Optional(), Length(max=200)], render_kw={"autocomplete": "name"})
    municipality = SelectField(_l("Gemeinde"), validators=[DataRequired(_l("Bitte wählen Sie Ihre Gemeinde."))])
    department = StringField(_l("Dienststelle oder Funktion (freiwillig)"), validators=[Optional(), Length(max=200)],
                             render_kw={"autocomplete": "organization-title"})
    # Ids from our form, or names from a hand-written embedded form: the
    # service resolves them against the district's topics.
    topics = SelectMultipleField(_l("Themen"), choices=[], validate_choice=False)

    def fill_choices(self, district, topics):
        self.municipality.choices = [("", _("– bitte wählen –"))] + [(m.ags, m.name) for m in district.municipalities]
        self.topics.choices = [(str(t.id), t.name) for t in topics]


class SubscribeForm(DetailsForm):
    class Meta:
        csrf = False  # embeddable on other websites; honeypot and rate limits instead

    email = EmailField(_l("E-Mail-Adresse"), validators=[DataRequired(_l("Bitte geben Sie Ihre E-Mail-Adresse ein."))],
                       render_kw={"autocomplete": "email"})
    consent = BooleanField(_l("Einwilligung"), false_values=(False, "false", "", "0", "off", "no", "nein"))

    def validate_consent(self, field):
        if not field.data:
            raise ValidationError(_("Bitte stimmen Sie dem Empfang zu, sonst können wir Sie nicht aufnehmen."))


class PreferencesForm(DetailsForm):
    pass


# --- helpers -----------------------------------------------------------------


def selected_topics(district_key, values):
    """Topics from form values: ids, or names from a hand-written embedded form."""
    ids = [v for v in values if str(v).isdigit()]
    names = [v for v in values if not str(v).isdigit()]
    return services.topics_by_id(district_key, ids) + services.topics_by_name(district_key, names)


def subscriber_from(purpose, token):
    """The subscriber a link is for; a bad link answers 404 (410 when only its time is up)."""
    try:
        payload = read_token(purpose, token)
    except ExpiredToken:
        abort(410, _("Dieser Link ist abgelaufen. Bitte melden Sie sich erneut an."))
    except InvalidToken:
        abort(404, _("Dieser Link ist ungültig. Bitte verwenden Sie den vollständigen Link aus Ihrer E-Mail."))
    public_id = payload.get("s") if isinstance(payload, dict) else None
    subscriber = None
    if isinstance(public_id, str):
        subscriber = db.session.execute(select(Subscriber).filter_by(public_id=public_id)).scalar_one_or_none()
    if subscriber is None:
        abort(404, _("Zu diesem Link gibt es keine Anmeldung (mehr)."))
    return subscriber, payload


def submitted_address():
    # Keyed by the address entered (hashed: no address lands in Redis).
    # Never empty: Flask-Limiter would skip the limit.
    raw = (request.form.get("email") or "").strip().lower()
    return "subscribe-address:" + services.address_hash(raw)


def subscribe_limit():
    return current_app.config["SUBSCRIBE_RATE_LIMIT"]


def address_limit():
    return current_app.config["SUBSCRIBE_ADDRESS_RATE_LIMIT"]


def _public_page(template, status=200, **context):
    return render_template(f"subscribers/public/{template}.html", **context), status


# --- subscribe and confirm ------------------------------------------------------


@bp.route("/d/<key>/subscribe", methods=["GET", "POST"])
@csrf.exempt
@limiter.limit(subscribe_limit, methods=["POST"])
@limiter.limit(address_limit, methods=["POST"], key_func=submitted_address)
def subscribe(key):
    district = load_or_404(District, key=key)
    topics = services.district_topics(district.key)
    form = SubscribeForm()
    form.fill_choices(district, topics)
    if request.method == "POST" and request.form.get(HONEYPOT):
        # A bot filled the invisible field: answer as if all went well.
        return redirect(url_for("public.check_inbox", key=district.key))
    if form.validate_on_submit():
        try:
            subscriber = services.request_subscription(
                district, form.email.data, form.name.data, form.municipality.data,
                selected_topics(district.key, form.topics.data or []), current_consent_version(),
                department=form.department.data,
            )
        except services.SubscriberError as error:
            db.session.rollback()
            show_error(form, error)
        else:
            db.session.commit()
            enqueue_subscription_mail(subscriber)
            # The same answer for new, pending and active addresses.
            return redirect(url_for("public.check_inbox", key=district.key))
    status = 400 if request.method == "POST" else 200
    return _public_page(
        "subscribe", status, form=form, district=district, consent=consent_text(current_consent_version()),
        honeypot=HONEYPOT,
    )


@bp.get("/d/<key>/subscribe/check-inbox")
def check_inbox(key):
    district = load_or_404(District, key=key)
    return _public_page("check_inbox", district=district)


@bp.route("/confirm/<token>", methods=["GET", "POST"])
@csrf.exempt  # the token is the proof; the page may be opened in a browser without our cookie
@personal_link
def confirm(token):
    subscriber, payload = subscriber_from("subscription-confirm", token)
    district = subscriber.municipality.district
    if subscriber.status == "active" and not subscriber.confirm_nonce:
        return _public_page("confirmed", district=district, subscriber=subscriber, already=True,
                            preferences_token=manage_token(subscriber))
    if subscriber.confirm_nonce != payload.get("n"):
        abort(404, _("Dieser Bestätigungslink ist nicht mehr gültig. Bitte verwenden Sie den Link aus Ihrer neuesten E-Mail."))
    if request.method == "GET":
        return _public_page("confirm", district=district, subscriber=subscriber)
    services.confirm_subscription(subscriber, payload.get("n"))
    db.session.commit()
    return _public_page("confirmed", district=district, subscriber=subscriber, already=False,
                        preferences_token=manage_token(subscriber))


# --- unsubscribe ----------------------------------------------------------------


@bp.route("/unsubscribe/<token>", methods=["GET", "POST"])
@csrf.exempt  # RFC 8058: mail clients POST List-Unsubscribe=One-Click without any page
@personal_link
def unsubscribe(token):
    subscriber, _payload = subscriber_from("subscriber-unsubscribe", token)
    district = subscriber.municipality.district
    if request.method == "GET":
        return _public_page("unsubscribe", district=district, subscriber=subscriber,
                            preferences_token=manage_token(subscriber))
    services.unsubscribe(subscriber)
    db.session.commit()
    return _public_page("unsubscribed", district=district, subscriber=subscriber,
                        preferences_token=manage_token(subscriber))


# --- preferences and data-protection rights -----------------------------------


@bp.route("/preferences/<token>", methods=["GET", "POST"])
@personal_link
def preferences(token):
    subscriber, _payload = subscriber_from("subscriber-manage", token)
    district = subscriber.municipality.district
    topics = services.district_topics(district.key)
    form = PreferencesForm(obj=None if request.method == "POST" else subscriber)
    form.fill_choices(district, topics)
    if request.method == "GET":
        form.municipality.data = subscriber.municipality_ags
        form.topics.data = [str(t.id) for t in subscriber.topics]
    if form.validate_on_submit():
        try:
            services.update_preferences(
                subscriber, form.name.data, form.municipality.data,
                selected_topics(district.key, form.topics.data or []), department=form.department.data,
            )
        except services.SubscriberError as error:
            db.session.rollback()
            show_error(form, error)
        else:
            db.session.commit()
            return _public_page("preferences", district=district, subscriber=subscriber, form=form, token=token,
                                saved=True, unsubscribe_token=unsubscribe_token(subscriber))
    status = 400 if request.method == "POST" else 200
    return _public_page("preferences", status, district=district, subscriber=subscriber, form=form, token=token,
                        saved=False, unsubscribe_token=unsubscribe_token(subscriber))


@bp.post("/preferences/<token>/resubscribe")
@personal_link
def resubscribe(token):
    """Back onto the list after leaving it: only through a new confirmation (double opt-in)."""
    subscriber, _payload = subscriber_from("subscriber-manage", token)
    district = subscriber.municipality.district
    if subscriber.status != "active":
        services.restart_opt_in(subscriber, source="form", consent_version=current_consent_version())
        db.session.commit()
        enqueue_subscription_mail(subscriber)
    return redirect(url_for("public.check_inbox", key=district.key))


@bp.post("/preferences/<token>/export")
@personal_link
def export(token):
    subscriber, _payload = subscriber_from("subscriber-manage", token)
    document = json.dumps(privacy.export_subscriber(subscriber), ensure_ascii=False, indent=2)
    response = current_app.response_class(document, mimetype="application/json")
    response.headers["Content-Disposition"] = 'attachment; filename="meine-daten.json"'
    return response


@bp.route("/preferences/<token>/delete", methods=["GET", "POST"])
@personal_link
def delete(token):
    subscriber, _payload = subscriber_from("subscriber-manage", token)
    district = subscriber.municipality.district
    if request.method == "GET":
        return _public_page("delete", district=district, subscriber=subscriber, token=token)
    privacy.erase_subscriber(subscriber)
    db.session.commit()
    return _public_page("deleted", district=district)
