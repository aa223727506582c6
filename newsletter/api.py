"""API: newsletters of the caller's districts: write, send or schedule, pause, resume, cancel, test.

Errors: 422 for content and field errors (`errors` names the field, the
message names the line of a template or MJML error), 409 when the
newsletter's state does not allow the action (changing a sent newsletter,
pausing a draft), 404 for another district's newsletter, 403 for viewers.
"""
import smtplib

from flask import request, url_for
from flask.views import MethodView
from flask_babel import gettext as _
from flask_smorest import abort

from accounts.auth import editor_required, principal
from core.api import Blueprint, require_token
from core.database import load_or_404
from core.extensions import db
from directory.models import District
from newsletter import jobs, sending, services
from newsletter.models import Newsletter
from newsletter.schemas import (
    NewsletterCreateSchema,
    NewsletterDetailSchema,
    NewsletterSchema,
    NewsletterUpdateSchema,
    SendSchema,
    TestSendResultSchema,
    TestSendSchema,
)
from newsletter.services import ContentError, NewsletterError
from subscribers import services as subscriber_services

blp = Blueprint(
    "newsletters_api", __name__, url_prefix="/api/v1",
    description="Newsletter: schreiben, testen, senden oder planen, anhalten, fortsetzen, abbrechen",
)
blp.before_request(require_token)

FORBIDDEN = {"response": "DEFAULT_ERROR", "description": "Nur Administration und Koordination"}
NOT_FOUND = {"response": "DEFAULT_ERROR", "description": "Unbekannt oder aus einem nicht freigegebenen Kreis"}
CONFLICT = {"response": "DEFAULT_ERROR", "description": "Im jetzigen Zustand des Newsletters nicht möglich"}


@blp.before_request
def _district_first():
    # Another district's key or newsletter answers 404 before the body is validated (422).
    args = request.view_args or {}
    if "key" in args:
        load_or_404(District, key=args["key"])
    if "id" in args:
        load_or_404(Newsletter, id=args["id"])


def _refuse(error):
    """Answer a broken rule, having changed nothing.

    An error that names a field is an invalid value (422); one without is
    the newsletter's state refusing the action (409).
    """
    db.session.rollback()
    field = getattr(error, "field", None)
    if field is None and not isinstance(error, ContentError):
        abort(409, message=str(error))
    abort(422, message=str(error), errors={"json": {field or "_schema": [str(error)]}})


def _topic_ids(district_key, names):
    if names is None:
        return None
    try:
        return [topic.id for topic in subscriber_services.topics_by_name(district_key, names)]
    except subscriber_services.SubscriberError as error:
        raise NewsletterError(str(error), "topics") from error


def _fields(district_key, data):
    """The service's keyword arguments from the fields sent."""
    names = ("subject", "body", "body_format", "preheader", "tracking", "published_in_archive")
    values = {name: data[name] for name in names if name in data}
    if "topics" in data:
        values["topic_ids"] = _topic_ids(district_key, data["topics"])
    if "municipalities" in data:
        values["municipality_ags"] = data["municipalities"]
    return values


def _detail(newsletter):
    from newsletter.tracking import newsletter_stats

    newsletter.stats = newsletter_stats(newsletter)
    newsletter.audience_size = (
        sending.audience_size(newsletter) if newsletter.status in services.EDITABLE else None
    )
    return newsletter


@blp.route("/districts/<string:key>/newsletters")
class DistrictNewsletters(MethodView):
    @blp.alt_response(404, response="DEFAULT_ERROR", description="Kreis unbekannt oder nicht freigegeben")
    @blp.response(200, NewsletterSchema(many=True))
    def get(self, key):
        """Die Newsletter eines Kreises, die neuesten zuerst."""
        district = load_or_404(District, key=key)
        return db.session.execute(
            db.select(Newsletter).where(Newsletter.district_key == district.key)
            .order_by(Newsletter.created_at.desc(), Newsletter.id.desc())
        ).scalars().all()

    @editor_required
    @blp.arguments(NewsletterCreateSchema)
    @blp.alt_response(403, **FORBIDDEN)
    @blp.alt_response(404, response="DEFAULT_ERROR", description="Kreis unbekannt oder nicht freigegeben")
    @blp.response(201, NewsletterDetailSchema)
    def post(self, data, key):
        """Einen Newsletter als Entwurf anlegen.

        Der Inhalt wird sofort geprüft und übersetzt; eine Vorlage oder ein
        MJML mit Fehler wird mit 422 abgelehnt, die Meldung nennt die Zeile.
        """
        district = load_or_404(District, key=key)
        try:
            newsletter = services.create_newsletter(district, author=principal(), **_fields(district.key, data))
        except (NewsletterError, ContentError) as error:
            _refuse(error)
        db.session.commit()
        return _detail(newsletter), {"Location": url_for("newsletters_api.newsletter", id=newsletter.id)}


@blp.route("/newsletters/<int:id>", endpoint="newsletter")
class NewsletterResource(MethodView):
    @blp.alt_response(404, **NOT_FOUND)
    @blp.response(200, NewsletterDetailSchema)
    def get(self, id):
        """Ein Newsletter mit Zahlen je Zustellstatus, Öffnungen, Klicks und erreichten Gemeinden.

        `audience_size` nennt vor dem Versand, an wie viele Empfänger der
        Newsletter jetzt ginge.
        """
        return _detail(load_or_404(Newsletter, id=id))

    @editor_required
    @blp.arguments(NewsletterUpdateSchema)
    @blp.alt_response(403, **FORBIDDEN)
    @blp.alt_response(404, **NOT_FOUND)
    @blp.alt_response(409, response="DEFAULT_ERROR", description="Versand hat begonnen oder ist abgeschlossen")
    @blp.response(200, NewsletterDetailSchema)
    def patch(self, data, id):
        """Inhalt oder Empfänger ändern (nur Entwurf oder geplanter Newsletter); nur gesendete Felder ändern sich.

        `published_in_archive` allein lässt sich in jedem Zustand ändern,
        also auch nach dem Versand.
        """
        newsletter = load_or_404(Newsletter, id=id)
        try:
            if newsletter.status not in services.EDITABLE:
                if set(data) == {"published_in_archive"}:
                    services.set_published(newsletter, data["published_in_archive"])
                    db.session.commit()
                    return _detail(newsletter)
                # The state first: a sent newsletter refuses any other change, valid or not.
                services.update_newsletter(newsletter)
            services.update_newsletter(newsletter, **_fields(newsletter.district_key, data))
        except (NewsletterError, ContentError) as error:
            _refuse(error)
        db.session.commit()
        return _detail(newsletter)


def _act(id, action):
    newsletter = load_or_404(Newsletter, id=id)
    try:
        action(newsletter)
    except (NewsletterError, ContentError, sending.SendingError) as error:
        _refuse(error)
    db.session.commit()
    return newsletter


@blp.route("/newsletters/<int:id>/send")
class Send(MethodView):
    @editor_required
    @blp.arguments(SendSchema)
    @blp.alt_response(403, **FORBIDDEN)
    @blp.alt_response(404, **NOT_FOUND)
    @blp.alt_response(409, **CONFLICT)
    @blp.response(202, NewsletterDetailSchema)
    def post(self, data, id):
        """Jetzt senden oder, mit `at`, den Versand planen.

        Ohne `at` werden die Zustellungen sofort angelegt und der Versand
        beginnt; der Fortschritt steht in `stats`. Mit `at` (ISO 8601 mit
        Zeitzone, in der Zukunft) ist der Newsletter `scheduled`; ein
        geplanter Newsletter lässt sich so auch umplanen oder sofort senden.
        """
        at = data.get("at")
        if at is not None:
            return _detail(_act(id, lambda newsletter: services.schedule(newsletter, at)))
        newsletter = _act(id, services.send_now)
        jobs.enqueue_senders(newsletter.id)
        return _detail(newsletter)


@blp.route("/newsletters/<int:id>/pause")
class Pause(MethodView):
    @editor_required
    @blp.alt_response(403, **FORBIDDEN)
    @blp.alt_response(404, **NOT_FOUND)
    @blp.alt_response(409, **CONFLICT)
    @blp.response(200, NewsletterDetailSchema)
    def post(self, id):
        """Einen laufenden Versand anhalten; bereits gesendete Mails bleiben gesendet."""
        return _detail(_act(id, services.pause))


@blp.route("/newsletters/<int:id>/resume")
class Resume(MethodView):
    @editor_required
    @blp.alt_response(403, **FORBIDDEN)
    @blp.alt_response(404, **NOT_FOUND)
    @blp.alt_response(409, **CONFLICT)
    @blp.response(200, NewsletterDetailSchema)
    def post(self, id):
        """Einen angehaltenen Versand fortsetzen; keine Mail geht doppelt."""
        newsletter = _act(id, services.resume)
        jobs.enqueue_senders(newsletter.id)
        return _detail(newsletter)


@blp.route("/newsletters/<int:id>/cancel")
class Cancel(MethodView):
    @editor_required
    @blp.alt_response(403, **FORBIDDEN)
    @blp.alt_response(404, **NOT_FOUND)
    @blp.alt_response(409, **CONFLICT)
    @blp.response(200, NewsletterDetailSchema)
    def post(self, id):
        """Einen geplanten, laufenden oder angehaltenen Versand endgültig abbrechen; Ungesendetes entfällt."""
        return _detail(_act(id, services.cancel))


@blp.route("/newsletters/<int:id>/test")
class TestSend(MethodView):
    @editor_required
    @blp.arguments(TestSendSchema)
    @blp.alt_response(403, **FORBIDDEN)
    @blp.alt_response(404, **NOT_FOUND)
    @blp.alt_response(503, response="DEFAULT_ERROR", description="Der Mailserver hat die Testmail nicht angenommen")
    @blp.response(200, TestSendResultSchema)
    def post(self, data, id):
        """Den Newsletter an bis zu 10 Adressen senden, mit [TEST] im Betreff; zählt nicht zum Versand."""
        newsletter = load_or_404(Newsletter, id=id)
        try:
            recipients = services.send_test(newsletter, data["addresses"])
        except (NewsletterError, ContentError) as error:
            _refuse(error)
        except (smtplib.SMTPException, OSError):
            abort(503, message=_("Der Mailserver hat den Testversand nicht angenommen. Bitte später erneut versuchen."))
        return {"sent_to": recipients}
