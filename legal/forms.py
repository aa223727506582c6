"""The admins' form for the legal pages: per page an address or a text.

The rules (http(s) only, lengths, not both) are the service's
(`legal.services.check`); the view shows its LegalError at the field it names.
"""
from flask_babel import lazy_gettext as _l
from wtforms import StringField, TextAreaField

from core.forms import Form


def _field_pair(title):
    return (
        StringField(_l("%(title)s: Adresse (URL)", title=title)),
        TextAreaField(_l("%(title)s: Text", title=title)),
    )


class LegalForm(Form):
    imprint_url, imprint_text = _field_pair(_l("Impressum"))
    privacy_url, privacy_text = _field_pair(_l("Datenschutzerklärung"))
    accessibility_url, accessibility_text = _field_pair(_l("Erklärung zur Barrierefreiheit"))
