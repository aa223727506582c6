"""The public registration form for an event (events/public.py)."""
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from wtforms import BooleanField, EmailField, RadioField, SelectField, StringField
from wtforms.validators import DataRequired, Length, ValidationError

from core.forms import Form
from subscribers.services import SubscriberError, normalize_address

FALSE_VALUES = (False, "false", "", "0", "off", "no", "nein")


class RegisterForm(Form):
    """Name, address, municipality and, for office hours, the slot.

    Like the subscription form it may be embedded on a municipal website, so
    it takes its POST without a session CSRF token; a honeypot field and rate
    limits protect it instead. The address, the municipality and the slot are
    checked by the services (the same rules as every other way in), so their
    choices are not validated here.
    """

    class Meta:
        csrf = False

    name = StringField(_l("Name"), validators=[DataRequired(_l("Bitte geben Sie Ihren Namen ein.")),
                                               Length(max=200)], render_kw={"autocomplete": "name"})
    email = EmailField(_l("Dienstliche E-Mail-Adresse"),
                       validators=[DataRequired(_l("Bitte geben Sie Ihre E-Mail-Adresse ein."))],
                       render_kw={"autocomplete": "email"})
    municipality = SelectField(_l("Gemeinde"), validators=[DataRequired(_l("Bitte wählen Sie Ihre Gemeinde."))],
                               validate_choice=False)
    slot = RadioField(_l("Termin"), choices=[], validate_choice=False)
    privacy = BooleanField(_l("Datenschutz"), false_values=FALSE_VALUES)

    def fill_choices(self, district, slot_ids=()):
        self.municipality.choices = [("", _("– bitte wählen –"))] + [(m.ags, m.name) for m in district.municipalities]
        self.slot.choices = [(str(slot_id), str(slot_id)) for slot_id in slot_ids]

    def validate_email(self, field):
        # The services' rule, checked here too so that every mistake shows at once.
        try:
            normalize_address(field.data)
        except SubscriberError as error:
            raise ValidationError(str(error)) from None

    def validate_privacy(self, field):
        if not field.data:
            raise ValidationError(_("Bitte bestätigen Sie, dass Sie den Hinweis zum Datenschutz gelesen haben."))
