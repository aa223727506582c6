"""The consent texts shown on the subscription form, by version.

A subscriber's consent record names the version they were shown; the texts
stay here for as long as any record names them, so the data export and a
court can read exactly what the person agreed to. A changed text gets a new
version; never edit a published one.
"""
from flask_babel import get_locale

CONSENT_TEXTS = {
    "2026-11-de": (
        "Ich möchte den E-Government-Newsletter meines Kreises und Einladungen zu Sprechstunden und "
        "Workshops der E-Government-Koordination per E-Mail erhalten. Meine Angaben (E-Mail-Adresse, "
        "Name, Gemeinde, Themen) werden nur dafür verwendet. Ich kann die Einwilligung jederzeit über "
        "den Abmeldelink in jeder E-Mail widerrufen."
    ),
    "2026-11-en": (
        "I would like to receive my district's e-government newsletter and invitations to office hours "
        "and workshops of the e-government coordination by email. My details (email address, name, "
        "municipality, topics) are used for this purpose only. I can withdraw my consent at any time "
        "through the unsubscribe link in every email."
    ),
}
CURRENT_VERSION = "2026-11"
# Confirmation mails are German; a double opt-in started by a coordinator,
# an import or the API quotes this text in the mail.
MAIL_CONSENT_VERSION = f"{CURRENT_VERSION}-de"


def current_consent_version():
    language = str(get_locale() or "de")
    version = f"{CURRENT_VERSION}-{language}"
    return version if version in CONSENT_TEXTS else f"{CURRENT_VERSION}-de"


def consent_text(version):
    return CONSENT_TEXTS.get(version, "")
