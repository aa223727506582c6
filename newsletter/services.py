"""Rules about newsletters: write, compile, test, send, pause, resume, cancel.

Views, API and CLI call these; none commits. Content is compiled at every
save; content that does not compile is refused with the line of the error
and nothing is saved, so every stored newsletter can be sent.
"""
from types import SimpleNamespace

from flask_babel import gettext as _
from sqlalchemy import select

from core.extensions import db
from directory.models import Municipality
from newsletter import compose, sending
from newsletter.compose import ContentError  # noqa: F401  (callers catch it from here)
from newsletter.models import BODY_FORMATS, Newsletter
from subscribers import services as subscriber_services
from subscribers.models import utcnow

EDITABLE = ("draft", "scheduled")


class NewsletterError(ValueError):
    """A rule was broken; the message is fit to show. `field` names the form field, if any."""

    def __init__(self, message, field=None):
        super().__init__(message)
        self.field = field


def _audience(newsletter, topic_ids, municipality_ags):
    if topic_ids is not None:
        try:
            newsletter.topics = subscriber_services.topics_by_id(newsletter.district_key, topic_ids)
        except subscriber_services.SubscriberError as error:
            raise NewsletterError(str(error), "topics") from error
    if municipality_ags is not None:
        wanted = set(municipality_ags)
        found = db.session.execute(
            select(Municipality).where(Municipality.district_key == newsletter.district_key, Municipality.ags.in_(wanted))
        ).scalars().all()
        if len(found) != len(wanted):
            missing = ", ".join(sorted(wanted - {m.ags for m in found}))
            raise NewsletterError(_("Unbekannte Gemeinde: %(ags)s", ags=missing), "municipalities")
        newsletter.municipalities = found


def set_published(newsletter, published):
    """Show the newsletter in the public archive, or take it out; allowed in every state.

    Only a newsletter whose sending began is actually shown (`archive.PUBLISHED`);
    the choice made before sending waits for it.
    """
    newsletter.published_in_archive = bool(published)
    db.session.flush()


def _content(newsletter, subject, preheader, body_format, body, tracking):
    if subject is not None:
        subject = " ".join(subject.split())
        if not subject or len(subject) > 200:
            raise NewsletterError(_("Der Betreff muss 1 bis 200 Zeichen lang sein."), "subject")
        newsletter.subject = subject
    if preheader is not None:
        if len(preheader) > 200:
            raise NewsletterError(_("Der Vorschautext darf höchstens 200 Zeichen lang sein."), "preheader")
        newsletter.preheader = preheader.strip()
    if body_format is not None:
        if body_format not in BODY_FORMATS:
            raise NewsletterError(_("Unbekanntes Format: %(format)s", format=body_format), "body_format")
        newsletter.body_format = body_format
    if body is not None:
        newsletter.body = body
    if tracking is not None:
        newsletter.tracking = bool(tracking)


def create_newsletter(district, subject, body, body_format="markdown", preheader="", tracking=True,
                      topic_ids=(), municipality_ags=(), author=None, published_in_archive=False):
    """A new draft; ContentError or NewsletterError leave nothing behind (the caller rolls back)."""
    newsletter = Newsletter(district_key=district.key, subject="", body="",
                            created_by_id=getattr(author, "id", None))
    db.session.add(newsletter)
    _content(newsletter, subject, preheader, body_format, body, tracking)
    newsletter.published_in_archive = bool(published_in_archive)
    _audience(newsletter, list(topic_ids), list(municipality_ags))
    db.session.flush()
    compose.compile_newsletter(newsletter)
    db.session.flush()
    return newsletter


def update_newsletter(newsletter, subject=None, body=None, body_format=None, preheader=None, tracking=None,
                      topic_ids=None, municipality_ags=None, published_in_archive=None):
    if newsletter.status not in EDITABLE:
        raise NewsletterError(_("Ein Newsletter, dessen Versand begonnen hat, kann nicht mehr geändert werden."))
    _content(newsletter, subject, preheader, body_format, body, tracking)
    if published_in_archive is not None:
        newsletter.published_in_archive = bool(published_in_archive)
    _audience(newsletter, topic_ids, municipality_ags)
    compose.compile_newsletter(newsletter)
    db.session.flush()


def send_now(newsletter):
    """Write the delivery rows; the caller commits, then `jobs.enqueue_senders(newsletter.id)`."""
    if newsletter.status not in EDITABLE:
        raise NewsletterError(_("Dieser Newsletter wird bereits versendet oder ist abgeschlossen."))
    return sending.start_sending(newsletter)


def schedule(newsletter, at):
    if at.tzinfo is None:
        raise NewsletterError(_("Der Zeitpunkt braucht eine Zeitzone."), "at")
    if at <= utcnow():
        raise NewsletterError(_("Der Zeitpunkt muss in der Zukunft liegen."), "at")
    if newsletter.status not in EDITABLE:
        raise NewsletterError(_("Dieser Newsletter wird bereits versendet oder ist abgeschlossen."))
    sending.schedule(newsletter, at)


def _transition(action, newsletter, message):
    try:
        action(newsletter)
    except sending.SendingError as error:
        raise NewsletterError(message) from error


def pause(newsletter):
    _transition(sending.pause, newsletter, _("Nur ein laufender Versand kann angehalten werden."))


def resume(newsletter):
    _transition(sending.resume, newsletter, _("Nur ein angehaltener Versand kann fortgesetzt werden."))


def cancel(newsletter):
    _transition(sending.cancel, newsletter, _("Nur ein geplanter, laufender oder angehaltener Versand kann abgebrochen werden."))


def send_test(newsletter, addresses):
    """Send the newsletter to these addresses now, marked as a test; no delivery row, not counted.

    Returns the normalised addresses. Links to preferences and unsubscribe
    lead nowhere in a test mail (there is no subscriber behind it).
    """
    recipients = []
    for raw in addresses:
        try:
            recipients.append(subscriber_services.normalize_address(raw)[0])
        except subscriber_services.SubscriberError as error:
            raise NewsletterError(str(error), "addresses") from error
    if not recipients or len(recipients) > 10:
        raise NewsletterError(_("Bitte 1 bis 10 Adressen angeben."), "addresses")
    from core.mail import raw_connection

    batch = sending.Batch(newsletter)
    batch.subject = "[TEST] " + newsletter.subject
    batch.kind = "test"
    with raw_connection() as connection:
        for email in recipients:
            person = SimpleNamespace(public_id="test", name="Erika Mustermann", email=email)
            data = batch.build(0, person, "Musterstadt")[1]
            connection.send_raw(batch.envelope_from, email, data)
    return recipients
