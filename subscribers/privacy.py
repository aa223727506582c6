"""Data-protection rights: what is stored about a person, and erasing it.

Other packages keep rows about subscribers too (deliveries, opens and
clicks, event registrations). Each registers here what it holds about a
person and how it forgets them, so the export is complete and the erasure
leaves nothing behind, without this package knowing their tables.
"""
from core.extensions import db
from subscribers import services
from subscribers.consent import consent_text
from subscribers.models import utcnow

_exporters = []  # (section name, function(subscriber) -> JSON-able data)
_erasers = []  # function(subscriber): delete or anonymise the package's rows


def register(section, export, erase):
    """Called by a package at import time for its rows about subscribers."""
    _exporters.append((section, export))
    _erasers.append(erase)


def iso(value):
    return value.isoformat() if value else None


def export_subscriber(subscriber):
    """Everything stored about the person, as one JSON-able document."""
    data = {
        "exported_at": iso(utcnow()),
        "subscriber": {
            "email": subscriber.email,
            "name": subscriber.name,
            "department": subscriber.department,
            "district": {"key": subscriber.district_key, "name": subscriber.municipality.district.name},
            "municipality": {"ags": subscriber.municipality_ags, "name": subscriber.municipality.name},
            "topics": subscriber.topic_names,
            "status": subscriber.status,
            "status_changed_at": iso(subscriber.status_changed_at),
            "created_at": iso(subscriber.created_at),
            "updated_at": iso(subscriber.updated_at),
        },
        "consent": {
            "source": subscriber.consent_source,
            "text_version": subscriber.consent_text_version,
            "text": consent_text(subscriber.consent_text_version),
            "requested_at": iso(subscriber.consent_requested_at),
            "confirmed_at": iso(subscriber.consent_confirmed_at),
        },
        "confirmation_mail_sent_at": iso(subscriber.confirmation_sent_at),
    }
    for section, export in _exporters:
        data[section] = export(subscriber)
    return data


def erase_subscriber(subscriber):
    """Forget the person: other packages' rows first, then the subscriber row.

    What stays is the keyed hash of the address on the district's
    suppression list, so a later import can not add the address again.
    """
    for erase in _erasers:
        erase(subscriber)
    services.suppress(subscriber.district_key, subscriber.email_key, "erased")
    db.session.delete(subscriber)
    db.session.flush()

