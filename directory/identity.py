"""A district's sender identity: the name and address its mail comes from, the
coordinator who answers, and what the mail layout shows besides the content."""
from flask import current_app

from accounts.services import coordinators_of
from core.mail import sender_address
from legal import services as legal_services


def inbound_address():
    return current_app.config.get("INBOUND_ADDRESS") or "inbound@" + sender_address().rpartition("@")[2]


def district_sender(district):
    # A (name, address) pair: Flask-Mail encodes the name itself; a formatted
    # string would be encoded twice.
    return (f"E-Government-Koordination {district.kind} {district.name}", sender_address())


def mail_context(district):
    """What the mail layout shows besides the content."""
    coordinators = coordinators_of(district)
    return {
        "district": district,
        "coordinator": coordinators[0] if coordinators else None,
        # [(title, absolute URL)] of Impressum, Datenschutz, Barrierefreiheit (those that exist).
        "mail_legal_links": legal_services.mail_links(),
    }
