"""Forms of the coordinator pages for a district's subscriber list.

Rules the services own (address syntax, known municipality and topics,
duplicates, suppression) are not repeated here: the views call the service
and show its SubscriberError at the field it names, so a form, the API and
the import reject the same input with the same words.
"""
from flask_babel import lazy_gettext as _l
from wtforms import (
    BooleanField,
    EmailField,
    RadioField,
    SearchField,
    SelectChoice,
    SelectField,
    SelectMultipleField,
    StringField,
)
from wtforms.validators import DataRequired, Length, Optional, ValidationError

from core.collation import sorted_by_name
from core.forms import Form
from subscribers.services import STATUS_LABELS, SubscriberError, normalize_address

CONSENT_MODES = {
    "double_opt_in": _l("Bestätigungsmail senden (Double-Opt-in)"),
    "documented": _l("Einwilligung liegt vor"),
}


def _strip(value):
    return value.strip() if isinstance(value, str) else value


def municipality_choices(district, placeholder):
    return [SelectChoice("", placeholder),
            *(SelectChoice(m.ags, f"{m.name} ({m.ags})") for m in sorted_by_name(district.municipalities))]


def topic_choices(topics):
    return [SelectChoice(str(topic.id), topic.name) for topic in topics]


class SubscriberFilterForm(Form):
    """The list's search and filters, read from the query string.

    Values that are not among the choices (an old bookmark, a hand-edited
    URL) are dropped by `active_filters`, not answered with an error.
    """

    class Meta:
        csrf = False

    q = SearchField(_l("Adresse oder Name enthält"), filters=[_strip], validators=[Optional(), Length(max=200)])
    status = SelectField(_l("Status"), validate_choice=False)
    municipality = SelectField(_l("Gemeinde"), validate_choice=False)
    topic = SelectField(_l("Thema"), validate_choice=False)

    def __init__(self, district, topics, **kwargs):
        super().__init__(**kwargs)
        self.status.choices = [SelectChoice("", _l("alle")), *(SelectChoice(k, v) for k, v in STATUS_LABELS.items())]
        self.municipality.choices = municipality_choices(district, _l("alle"))
        self.topic.choices = [SelectChoice("", _l("alle")), *topic_choices(topics)]

    def active_filters(self):
        """{name: value} of the filters that are set and valid; the rest are ignored."""
        result = {}
        search = (self.q.data or "")[:200]
        if search:
            result["q"] = search
        for field in (self.status, self.municipality, self.topic):
            allowed = {choice.value for choice in field.choices if choice.value}
            if field.data in allowed:
                result[field.name] = field.data
            else:
                field.data = ""
        return result


class _SubscriberFields:
    """The person's details, shared by the add and the edit form."""

    def __init__(self, district, topics, **kwargs):
        super().__init__(**kwargs)
        self.municipality.choices = municipality_choices(district, _l("Bitte wählen"))
        self.topics.choices = topic_choices(topics)

    def validate_email(self, field):
        # The syntax check now, so it shows together with the other fields'
        # errors; duplicates and suppression are the service's to report.
        try:
            normalize_address(field.data)
        except SubscriberError as error:
            raise ValidationError(str(error)) from error


def _email_field():
    return EmailField(
        _l("E-Mail-Adresse"),
        validators=[DataRequired(_l("Bitte geben Sie eine E-Mail-Adresse ein.")), Length(max=254)],
        filters=[_strip],
    )


def _name_field():
    return StringField(_l("Name"), validators=[Optional(), Length(max=200)], filters=[_strip])


def _municipality_field():
    # The service reports an unknown municipality, naming the AGS.
    return SelectField(
        _l("Gemeinde"), validate_choice=False, validators=[DataRequired(_l("Bitte wählen Sie eine Gemeinde."))]
    )


def _department_field():
    return StringField(
        _l("Dienststelle oder Funktion"), validators=[Optional(), Length(max=200)], filters=[_strip]
    )


def _topics_field():
    # The service reports an unknown topic id (for instance one of another district).
    return SelectMultipleField(_l("Themen"), validate_choice=False)


class NewSubscriberForm(_SubscriberFields, Form):
    email = _email_field()
    name = _name_field()
    municipality = _municipality_field()
    department = _department_field()
    topics = _topics_field()
    consent_mode = RadioField(
        _l("Einwilligung"),
        choices=[SelectChoice(value, label) for value, label in CONSENT_MODES.items()],
        default="double_opt_in",
        validators=[DataRequired(_l("Bitte wählen Sie, wie die Einwilligung eingeholt wird."))],
    )
    consent_documented = BooleanField(
        _l("Die Einwilligung der Person liegt uns nachweisbar vor (zum Beispiel schriftlich oder per E-Mail) und ist dokumentiert.")
    )

    @property
    def double_opt_in(self):
        return self.consent_mode.data != "documented"

    def validate_consent_documented(self, field):
        if self.consent_mode.data == "documented" and not field.data:
            raise ValidationError(
                _l("Bitte bestätigen Sie, dass die Einwilligung dokumentiert ist, oder wählen Sie die Bestätigungsmail.")
            )


class EditSubscriberForm(_SubscriberFields, Form):
    email = _email_field()
    name = _name_field()
    municipality = _municipality_field()
    department = _department_field()
    topics = _topics_field()


class TopicForm(Form):
    name = StringField(
        _l("Name des Themas"),
        validators=[DataRequired(_l("Bitte geben Sie einen Namen für das Thema ein.")), Length(max=100)],
        filters=[_strip],
    )
