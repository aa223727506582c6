"""The mailto: half of List-Unsubscribe: a mail whose subject carries the unsubscribe token.

Mail clients send it from the subscriber's mailbox to INBOUND_ADDRESS with
the subject given in the header (`unsubscribe <token>`); some prefix "Re:"
or change case, so the token is looked for anywhere in the subject. The
token, not the From address, says who leaves: From is easy to forge.
"""
import logging
import re

from sqlalchemy import select

from core.extensions import db
from core.inbound import register
from core.tokens import InvalidToken, read_token
from subscribers import services
from subscribers.models import Subscriber

log = logging.getLogger(__name__)
TOKEN_IN_SUBJECT = re.compile(r"unsubscribe\s+([A-Za-z0-9_\-.]+)", re.IGNORECASE)


@register
def mailto_unsubscribe(message):
    match = TOKEN_IN_SUBJECT.search(str(message.get("Subject", "")))
    if not match:
        return False
    try:
        payload = read_token("subscriber-unsubscribe", match.group(1))
    except InvalidToken:
        log.info("unsubscribe mail with an invalid token ignored")
        return True  # ours, but not valid: nothing else should handle it either
    public_id = payload.get("s") if isinstance(payload, dict) else None
    subscriber = db.session.execute(select(Subscriber).filter_by(public_id=str(public_id))).scalar_one_or_none()
    if subscriber is not None:
        services.unsubscribe(subscriber)
    return True
