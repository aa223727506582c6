"""Forms of the login and account pages. Field rules that the services own are
checked by calling those services, so a form and the CLI reject the same input."""
from flask_babel import lazy_gettext as _l
from wtforms import (
    BooleanField,
    EmailField,
    PasswordField,
    SelectChoice,
    SelectField,
    SelectMultipleField,
    StringField,
)
from wtforms.validators import DataRequired, EqualTo, Length, Optional, ValidationError

from accounts.admin import all_districts
from core.forms import Form
from accounts.models import ROLES
from accounts.services import (
    MIN_PASSWORD_LENGTH,
    AccountError,
    find_user,
    normalize_email,
    role_districts,
)

ROLE_LABELS = {
    "admin": _l("Administration"),
    "coordinator": _l("Koordination"),
    "viewer": _l("Lesezugriff"),
}

# Argon2 hashes any length, but nobody needs a novel as a password.
MAX_PASSWORD_LENGTH = 1024


class LoginForm(Form):
    email = EmailField(
        _l("E-Mail-Adresse"),
        validators=[DataRequired(_l("Bitte geben Sie Ihre E-Mail-Adresse ein."))],
        render_kw={"autocomplete": "username"},
    )
    password = PasswordField(
        _l("Passwort"),
        validators=[DataRequired(_l("Bitte geben Sie Ihr Passwort ein."))],
        render_kw={"autocomplete": "current-password"},
    )


class PasswordChangeForm(Form):
    current_password = PasswordField(
        _l("Aktuelles Passwort"),
        validators=[DataRequired(_l("Bitte geben Sie Ihr aktuelles Passwort ein."))],
        render_kw={"autocomplete": "current-password"},
    )
    new_password = PasswordField(
        _l("Neues Passwort"),
        validators=[
            DataRequired(_l("Bitte geben Sie ein neues Passwort ein.")),
            Length(
                min=MIN_PASSWORD_LENGTH,
                max=MAX_PASSWORD_LENGTH,
                message=_l(
                    "Das Passwort muss mindestens %(min)d und höchstens %(max)d Zeichen lang sein.",
                    min=MIN_PASSWORD_LENGTH,
                    max=MAX_PASSWORD_LENGTH,
                ),
            ),
        ],
        render_kw={"autocomplete": "new-password"},
    )
    new_password_repeat = PasswordField(
        _l("Neues Passwort wiederholen"),
        validators=[
            DataRequired(_l("Bitte wiederholen Sie das neue Passwort.")),
            EqualTo("new_password", _l("Die beiden neuen Passwörter stimmen nicht überein.")),
        ],
        render_kw={"autocomplete": "new-password"},
    )


def _strip(value):
    return value.strip() if value else value


def _name_field():
    return StringField(_l("Name"), validators=[Optional(), Length(max=200)], filters=[_strip])


def _role_field():
    return SelectField(
        _l("Rolle"),
        choices=[SelectChoice(role, ROLE_LABELS[role]) for role in ROLES],
        default="coordinator",
    )


def _districts_field():
    # Unknown keys are reported by the service's own check below, in German
    # and naming the key, rather than by WTForms' generic choice check.
    return SelectMultipleField(_l("Kreise"), validate_choice=False)


class _AccessRules:
    """Role and districts, checked together by the service rule."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.districts.choices = [SelectChoice(d.key, d.name) for d in all_districts()]

    def validate_districts(self, field):
        if self.role.errors:
            return
        try:
            role_districts(self.role.data, field.data)
        except AccountError as exc:
            raise ValidationError(str(exc)) from exc


class NewUserForm(_AccessRules, Form):
    email = EmailField(
        _l("E-Mail-Adresse"),
        validators=[DataRequired(_l("Bitte geben Sie eine E-Mail-Adresse ein.")), Length(max=254)],
    )
    name = _name_field()
    role = _role_field()
    districts = _districts_field()

    def validate_email(self, field):
        try:
            email = normalize_email(field.data)
        except AccountError as exc:
            raise ValidationError(str(exc)) from exc
        if find_user(email) is not None:
            raise ValidationError(_l("Es gibt bereits ein Konto für %(email)s.", email=email))


class EditUserForm(_AccessRules, Form):
    name = _name_field()
    role = _role_field()
    districts = _districts_field()
    active = BooleanField(_l("Konto ist aktiv"))


class TokenForm(Form):
    label = StringField(
        _l("Bezeichnung"),
        validators=[Optional(), Length(max=200)],
        filters=[_strip],
    )
