"""Mails to subscribers: their personal links, the list headers, the subscription mails.

Every mail to a subscriber carries a preferences link and the RFC 8058
headers (`List-Unsubscribe` with an https and a mailto URI,
`List-Unsubscribe-Post: List-Unsubscribe=One-Click`) plus `List-Id`;
newsletters and invitations take them from `list_headers`.
"""
from email.utils import formataddr
from urllib.parse import quote

from flask import render_template

from core.mail import Message, new_message_id, render_mjml, service_headers
from core.tokens import PURPOSES, make_token
from core.urls import base_host, external_url
from directory.identity import district_sender, inbound_address, mail_context
from subscribers.consent import MAIL_CONSENT_VERSION, consent_text

UNSUBSCRIBE_SUBJECT_PREFIX = "unsubscribe "


def manage_token(subscriber):
    return make_token("subscriber-manage", {"s": subscriber.public_id})


def unsubscribe_token(subscriber):
    return make_token("subscriber-unsubscribe", {"s": subscriber.public_id})


def confirm_token(subscriber):
    return make_token("subscription-confirm", {"s": subscriber.public_id, "n": subscriber.confirm_nonce})


def subscriber_links(subscriber):
    """The person's own links: preferences page and one-click unsubscribe."""
    return {
        "preferences": external_url("public.preferences", token=manage_token(subscriber)),
        "unsubscribe": external_url("public.unsubscribe", token=unsubscribe_token(subscriber)),
    }


def unsubscribe_mailto(subscriber):
    subject = quote(UNSUBSCRIBE_SUBJECT_PREFIX + unsubscribe_token(subscriber))
    return f"mailto:{inbound_address()}?subject={subject}"


def list_id(district):
    # RFC 2919: a description and a unique dot-atom under a domain we control.
    # formataddr encodes a non-ASCII description (RFC 2047), as headers need.
    return formataddr((f"E-Government {district.kind} {district.name}", f"kreis-{district.key}.{base_host()}"))


def list_headers(subscriber, links=None):
    links = links or subscriber_links(subscriber)
    return {
        "List-Id": list_id(subscriber.municipality.district),
        "List-Unsubscribe": f"<{links['unsubscribe']}>, <{unsubscribe_mailto(subscriber)}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }


def subscriber_message(subscriber, subject, template, mail_kind="confirmation", **context):
    """A mail to one subscriber from `templates/email/<template>.mjml` and `.txt` (`mail_kind` as in core.mail.KINDS)."""
    district = subscriber.municipality.district
    links = subscriber_links(subscriber)
    context = {**mail_context(district), "subscriber": subscriber, "links": links, **context}
    coordinator = context["coordinator"]
    message = Message(
        subject=subject,
        sender=district_sender(district),
        recipients=[subscriber.email],
        reply_to=coordinator.email if coordinator else None,
        body=render_template(f"email/{template}.txt", **context),
        html=render_mjml(f"email/{template}.mjml", **context),
        extra_headers={**list_headers(subscriber, links), **dict(service_headers(mail_kind, district.key))},
    )
    message.msgId = new_message_id()
    return message


def subscription_message(subscriber):
    """The confirmation mail of a pending subscriber, or the 'already subscribed' note of an active one."""
    if subscriber.status == "active":
        return subscriber_message(subscriber, "Sie sind bereits angemeldet", "subscription_notice")
    return subscriber_message(
        subscriber,
        "Bitte bestätigen Sie Ihre Anmeldung",
        "subscription_confirm",
        confirm_url=external_url("public.confirm", token=confirm_token(subscriber)),
        consent=consent_text(subscriber.consent_text_version) or consent_text(MAIL_CONSENT_VERSION),
        valid_days=PURPOSES["subscription-confirm"].days,
    )
