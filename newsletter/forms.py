"""Forms of the coordinator pages for newsletters.

The content rules (template syntax, known placeholders, MJML, audience of the
district) are the services' to check: the views call them and show their
error at the field it names, so the pages and the API refuse the same input
with the same words. The forms only check what a browser might leave out.
"""
import re

from flask_babel import lazy_gettext as _l
from wtforms import (
    BooleanField,
    DateField,
    RadioField,
    SelectChoice,
    SelectMultipleField,
    StringField,
    TextAreaField,
    TimeField,
)
from wtforms.validators import DataRequired, InputRequired, Length, Optional

from core.forms import Form

FORMAT_LABELS = {
    "markdown": _l("Markdown (im Layout des Kreises)"),
    "mjml": _l("MJML (volle Kontrolle über die Abschnitte)"),
}
MAX_TEST_ADDRESSES = 10
# Commas, semicolons and any whitespace (line breaks) separate test addresses.
ADDRESS_SEPARATORS = re.compile(r"[,;\s]+")


def _strip(value):
    return value.strip() if isinstance(value, str) else value


class NewsletterForm(Form):
    """Content and audience; the field names are the ones the services name in their errors."""

    subject = StringField(
        _l("Betreff"), filters=[_strip],
        validators=[DataRequired(_l("Bitte geben Sie einen Betreff ein.")), Length(max=200)],
    )
    preheader = StringField(_l("Vorschautext"), filters=[_strip], validators=[Optional(), Length(max=200)])
    body_format = RadioField(
        _l("Format"), choices=[SelectChoice(value, label) for value, label in FORMAT_LABELS.items()],
        default="markdown", validators=[InputRequired(_l("Bitte wählen Sie ein Format."))],
    )
    body = TextAreaField(_l("Inhalt"), validators=[DataRequired(_l("Bitte geben Sie einen Inhalt ein."))])
    tracking = BooleanField(_l("Öffnungen und Klicks zählen"), default=True)
    published_in_archive = BooleanField(_l("Im Archiv veröffentlichen"), default=False)
    # The services report an unknown topic or municipality (for instance one of another district).
    topics = SelectMultipleField(_l("Themen"), validate_choice=False)
    municipalities = SelectMultipleField(_l("Gemeinden"), validate_choice=False)

    def __init__(self, district, topics, **kwargs):
        super().__init__(**kwargs)
        self.topics.choices = [SelectChoice(str(topic.id), topic.name) for topic in topics]
        self.municipalities.choices = [SelectChoice(m.ags, m.name) for m in district.municipalities]

    def service_fields(self):
        """The keyword arguments of create_newsletter / update_newsletter."""
        return {
            "subject": self.subject.data or "",
            "preheader": self.preheader.data or "",
            "body_format": self.body_format.data,
            "body": (self.body.data or "").replace("\r\n", "\n"),
            "tracking": bool(self.tracking.data),
            "published_in_archive": bool(self.published_in_archive.data),
            "topic_ids": list(self.topics.data or ()),
            "municipality_ags": list(self.municipalities.data or ()),
        }

    @classmethod
    def data_of(cls, newsletter):
        return {
            "subject": newsletter.subject,
            "preheader": newsletter.preheader,
            "body_format": newsletter.body_format,
            "body": newsletter.body,
            "tracking": newsletter.tracking,
            "published_in_archive": newsletter.published_in_archive,
            "topics": [str(topic.id) for topic in newsletter.topics],
            "municipalities": [m.ags for m in newsletter.municipalities],
        }


class PublishForm(Form):
    """The archive switch of the detail page; it works before and after sending."""

    published_in_archive = BooleanField(_l("Im Archiv veröffentlichen"))


class TestSendForm(Form):
    addresses = TextAreaField(
        _l("Adressen für den Testversand"),
        validators=[DataRequired(_l("Bitte geben Sie mindestens eine Adresse ein."))],
    )

    def address_list(self):
        return [part for part in ADDRESS_SEPARATORS.split(self.addresses.data or "") if part]


class SendNowForm(Form):
    confirm = BooleanField(
        _l("Ich habe die Vorschau geprüft und möchte den Newsletter jetzt an alle Empfängerinnen und Empfänger senden."),
        validators=[DataRequired(_l("Bitte bestätigen Sie den Versand."))],
    )


class ScheduleForm(Form):
    """Date and time as the coordinator reads them: in Europe/Berlin."""

    date = DateField(_l("Datum"), validators=[InputRequired(_l("Bitte geben Sie ein gültiges Datum ein."))])
    time = TimeField(_l("Uhrzeit"), validators=[InputRequired(_l("Bitte geben Sie eine gültige Uhrzeit ein."))])
