"""Rules about districts, municipalities, topics, subscribers and suppression.

Views, the API, CLI commands and jobs all change a subscriber through these
functions; none of them commits. The list's promises live here:

* one row per address and district, however the address is spelt;
* an address becomes active only through a confirmed double opt-in, or when
  a coordinator or API caller states the consent source;
* unsubscribed, bounced, complained and erased addresses are on the
  suppression list (a keyed hash) and get no list mail; only a confirmed
  new double opt-in takes an address off it again.
"""
import hashlib
import hmac
import secrets
from dataclasses import dataclass, replace

from email_validator import EmailNotValidError, validate_email
from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext
from limits import parse as parse_limit
from sqlalchemy import func, or_, select

from core.collation import sorted_by_name
from core.extensions import db, limiter
from directory.models import Municipality
from subscribers.models import (
    CONSENT_SOURCES,
    Subscriber,
    Suppression,
    Topic,
    subscriber_topics,
    utcnow,
)

STATUS_LABELS = {
    "pending": lazy_gettext("unbestätigt"),
    "active": lazy_gettext("aktiv"),
    "unsubscribed": lazy_gettext("abgemeldet"),
    "bounced": lazy_gettext("unzustellbar"),
    "complained": lazy_gettext("Beschwerde"),
}
SOURCE_LABELS = {
    "form": lazy_gettext("Anmeldeformular"),
    "import": lazy_gettext("Import"),
    "api": lazy_gettext("API"),
    "admin": lazy_gettext("Koordination"),
}
MAX_TOPIC_NAME = 100
# Statuses a person leaves the list with; each puts the address on the suppression list.
SUPPRESSING_STATUSES = ("unsubscribed", "bounced", "complained")


class SubscriberError(ValueError):
    """A rule was broken; the message is fit to show. `field` names the form field, if any."""

    def __init__(self, message, field=None):
        super().__init__(message)
        self.field = field


# --- districts ---------------------------------------------------------------


def municipality_in(district_key, ags):
    """The municipality `ags` of this district, else SubscriberError."""
    municipality = db.session.execute(
        select(Municipality).where(Municipality.ags == (ags or "").strip(), Municipality.district_key == district_key)
    ).scalar_one_or_none()
    if municipality is None:
        raise SubscriberError(_("Unbekannte Gemeinde: %(ags)s", ags=ags or "–"), field="municipality")
    return municipality


# --- addresses and suppression -----------------------------------------------


def normalize_address(raw):
    """(address as written, comparison key) for a syntactically valid address; else SubscriberError."""
    raw = (raw or "").strip()
    try:
        address = validate_email(raw, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise SubscriberError(_("Ungültige E-Mail-Adresse: %(email)s", email=raw or "–"), field="email") from exc
    return address, address.lower()


def address_hash(email_key):
    """Keyed hash of an address: recognisable again, not readable.

    Keyed with SUPPRESSION_KEY (default: SECRET_KEY), so the list of hashes
    alone cannot be checked against guessed addresses.
    """
    key = current_app.config.get("SUPPRESSION_KEY") or current_app.config["SECRET_KEY"]
    return hmac.new(key.encode(), email_key.encode(), hashlib.sha256).hexdigest()


def suppression_reason(district_key, email_key):
    """Why the address is suppressed in this district, or None."""
    return db.session.execute(
        select(Suppression.reason).where(
            Suppression.district_key == district_key, Suppression.address_hash == address_hash(email_key)
        )
    ).scalar_one_or_none()


def suppressed_hashes(district_key):
    return set(db.session.execute(select(Suppression.address_hash).where(Suppression.district_key == district_key)).scalars())


def unsuppressed(district_key):
    """A test `email_key -> bool`: False for addresses on the district's suppression list.

    Reads the list once; with an empty list no address is hashed at all.
    """
    hashes = suppressed_hashes(district_key)
    if not hashes:
        return lambda email_key: True
    return lambda email_key: address_hash(email_key) not in hashes


def suppress(district_key, email_key, reason):
    hashed = address_hash(email_key)
    row = db.session.execute(
        select(Suppression).where(Suppression.district_key == district_key, Suppression.address_hash == hashed)
    ).scalar_one_or_none()
    if row is None:
        db.session.add(Suppression(district_key=district_key, address_hash=hashed, reason=reason))
    else:
        row.reason = reason


def lift_suppression(district_key, email_key):
    db.session.execute(
        Suppression.__table__.delete().where(
            Suppression.district_key == district_key, Suppression.address_hash == address_hash(email_key)
        )
    )


# --- topics -------------------------------------------------------------------


def district_topics(district_key):
    return sorted_by_name(db.session.execute(select(Topic).where(Topic.district_key == district_key)).scalars())


def topics_by_id(district_key, ids):
    """The district's topics with these ids; an id of another district is an error, not ignored."""
    wanted = set()
    for value in ids or ():
        try:
            wanted.add(int(value))
        except (TypeError, ValueError):
            raise SubscriberError(_("Unbekanntes Thema: %(topic)s", topic=value), field="topics") from None
    found = [t for t in district_topics(district_key) if t.id in wanted]
    if len(found) != len(wanted):
        missing = sorted(wanted - {t.id for t in found})
        raise SubscriberError(_("Unbekanntes Thema: %(topic)s", topic=", ".join(map(str, missing))), field="topics")
    return found


def topics_by_name(district_key, names):
    """The district's topics with these names (compared case-insensitively)."""
    known = {t.name.casefold(): t for t in district_topics(district_key)}
    result, missing = [], []
    for name in names or ():
        name = (name or "").strip()
        if not name:
            continue
        topic = known.get(name.casefold())
        (result if topic else missing).append(topic or name)
    if missing:
        raise SubscriberError(_("Unbekanntes Thema: %(topic)s", topic=", ".join(missing)), field="topics")
    return list(dict.fromkeys(result))


def _clean_topic_name(name):
    name = " ".join((name or "").split())
    if not name:
        raise SubscriberError(_("Bitte einen Namen für das Thema angeben."), field="name")
    if len(name) > MAX_TOPIC_NAME:
        raise SubscriberError(_("Der Name des Themas darf höchstens 100 Zeichen lang sein."), field="name")
    return name


def _topic_name_taken(district_key, name, except_id=None):
    return any(t.name.casefold() == name.casefold() and t.id != except_id for t in district_topics(district_key))


def create_topic(district_key, name):
    name = _clean_topic_name(name)
    if _topic_name_taken(district_key, name):
        raise SubscriberError(_("Das Thema „%(name)s“ gibt es bereits.", name=name), field="name")
    topic = Topic(district_key=district_key, name=name)
    db.session.add(topic)
    db.session.flush()
    return topic


def rename_topic(topic, name):
    name = _clean_topic_name(name)
    if _topic_name_taken(topic.district_key, name, except_id=topic.id):
        raise SubscriberError(_("Das Thema „%(name)s“ gibt es bereits.", name=name), field="name")
    topic.name = name


def delete_topic(topic):
    """Remove a topic; subscribers keep their other topics."""
    db.session.delete(topic)


# --- the subscription lifecycle ------------------------------------------------


def find_subscriber(district_key, email_key):
    return db.session.execute(
        select(Subscriber).where(Subscriber.district_key == district_key, Subscriber.email_key == email_key)
    ).scalar_one_or_none()


def _clean_text(value, limit, label, field):
    value = " ".join((value or "").split())
    if len(value) > limit:
        raise SubscriberError(_("%(label)s darf höchstens %(n)d Zeichen lang sein.", label=label, n=limit), field=field)
    return value


def _set_details(subscriber, name=None, ags=None, topics=None, department=None):
    if name is not None:
        subscriber.name = _clean_text(name, 200, _("Der Name"), "name")
    if ags is not None:
        subscriber.municipality = municipality_in(subscriber.district_key, ags)
        subscriber.municipality_ags = subscriber.municipality.ags
    if department is not None:
        subscriber.department = _clean_text(department, 200, _("Die Dienststelle"), "department")
    if topics is not None:
        subscriber.topics = list(topics)


def _set_status(subscriber, status):
    if subscriber.status != status:
        subscriber.status = status
        subscriber.status_changed_at = utcnow()


def start_opt_in(subscriber, source, consent_version):
    """Start a double opt-in: a fresh confirmation link, the request on record."""
    subscriber.confirm_nonce = secrets.token_urlsafe(12)
    subscriber.consent_source = source
    subscriber.consent_text_version = consent_version
    subscriber.consent_requested_at = utcnow()
    subscriber.consent_confirmed_at = None
    subscriber.confirmation_sent_at = None
    _set_status(subscriber, "pending")


def request_subscription(district, email, name, ags, topics, consent_version, department=""):
    """A sign-up through the public form (or a double opt-in request of the API).

    Returns the subscriber whose address should now get a mail, whatever its
    state: a pending or former subscriber a (new) confirmation link, an active
    one a note with their preferences link. The caller answers the same in
    every case, so the form does not reveal who is on the list. An active
    subscriber's details are not changed by an unconfirmed form.
    """
    address, key = normalize_address(email)
    municipality = municipality_in(district.key, ags)
    subscriber = find_subscriber(district.key, key)
    if subscriber is None:
        subscriber = Subscriber(
            district_key=district.key, email=address, email_key=key, municipality=municipality, consent_source="form"
        )
        db.session.add(subscriber)
    elif subscriber.status == "active":
        subscriber.confirmation_sent_at = None  # a notice is due
        return subscriber
    subscriber.email = address
    _set_details(subscriber, name=name, ags=municipality.ags, topics=topics, department=department)
    if subscriber.status == "pending" and subscriber.confirm_nonce:
        # Asked again before confirming: the earlier link stays valid, the
        # mail is sent once more.
        subscriber.consent_requested_at = utcnow()
        subscriber.consent_text_version = consent_version
        subscriber.confirmation_sent_at = None
    else:
        start_opt_in(subscriber, "form", consent_version)
    db.session.flush()
    return subscriber


def confirm_subscription(subscriber, nonce):
    """Activate through the link of the confirmation mail. True if this call activated it."""
    if subscriber.status == "active" and not subscriber.confirm_nonce:
        return False
    if not nonce or not secrets.compare_digest(subscriber.confirm_nonce or "", nonce):
        raise SubscriberError(_("Dieser Bestätigungslink ist nicht mehr gültig."))
    subscriber.confirm_nonce = None
    subscriber.consent_confirmed_at = utcnow()
    _set_status(subscriber, "active")
    lift_suppression(subscriber.district_key, subscriber.email_key)
    return True


def unsubscribe(subscriber):
    """Leave the list (idempotent). True if this call unsubscribed."""
    if subscriber.status in SUPPRESSING_STATUSES and not subscriber.confirm_nonce:
        return False
    subscriber.confirm_nonce = None
    if subscriber.status not in SUPPRESSING_STATUSES:
        _set_status(subscriber, "unsubscribed")
    suppress(subscriber.district_key, subscriber.email_key, subscriber.status)
    return True


def mark_undeliverable(subscriber, status):
    """`bounced` or `complained` (from bounce handling and feedback loops)."""
    if status not in ("bounced", "complained"):
        raise ValueError(status)
    subscriber.confirm_nonce = None
    _set_status(subscriber, status)
    suppress(subscriber.district_key, subscriber.email_key, status)


def update_preferences(subscriber, name, ags, topics, department=None):
    """The person's own changes from the preferences page."""
    _set_details(subscriber, name=name, ags=ags, topics=topics, department=department)


def add_subscriber(district, email, name, ags, topics=(), department="", source="admin", double_opt_in=False,
                   consent_version=""):
    """A coordinator or API caller adds someone.

    With double opt-in the person is pending until they confirm (the caller
    sends the confirmation mail after committing); without, the caller states
    where the consent comes from and the person is active at once, unless
    the address is suppressed.
    """
    if source not in CONSENT_SOURCES:
        raise SubscriberError(_("Unbekannte Herkunft der Einwilligung: %(source)s", source=source), field="source")
    address, key = normalize_address(email)
    if find_subscriber(district.key, key) is not None:
        raise SubscriberError(_("%(email)s steht bereits in der Liste.", email=address), field="email")
    if not double_opt_in and suppression_reason(district.key, key):
        raise SubscriberError(_(
            "%(email)s steht auf der Sperrliste (abgemeldet, unzustellbar oder gelöscht) und kann nur über eine "
            "neue Bestätigung (Double-Opt-in) wieder aufgenommen werden.", email=address,
        ), field="email")
    subscriber = Subscriber(district_key=district.key, email=address, email_key=key, consent_source=source)
    _set_details(subscriber, name=name, ags=ags, topics=topics, department=department)
    db.session.add(subscriber)
    if double_opt_in:
        start_opt_in(subscriber, source, consent_version)
    else:
        now = utcnow()
        subscriber.consent_text_version = consent_version
        subscriber.consent_requested_at = now
        subscriber.consent_confirmed_at = now
        _set_status(subscriber, "active")
    db.session.flush()
    return subscriber


def change_subscriber(subscriber, email=None, name=None, ags=None, topics=None, department=None, status=None):
    """A coordinator's or API caller's correction.

    The address may be corrected (it must stay unique and unsuppressed);
    the status may only be set to `unsubscribed`: activating someone again
    takes their confirmation (see `restart_opt_in`).
    """
    if email is not None:
        address, key = normalize_address(email)
        if key != subscriber.email_key:
            other = find_subscriber(subscriber.district_key, key)
            if other is not None:
                raise SubscriberError(_("%(email)s steht bereits in der Liste.", email=address), field="email")
            if suppression_reason(subscriber.district_key, key):
                raise SubscriberError(_("%(email)s steht auf der Sperrliste.", email=address), field="email")
            if subscriber.status == "pending":
                # The link sent to the old address must not confirm the new one.
                subscriber.confirm_nonce = None
        subscriber.email, subscriber.email_key = address, key
    _set_details(subscriber, name=name, ags=ags, topics=topics, department=department)
    if status is not None and status != subscriber.status:
        if status != "unsubscribed":
            raise SubscriberError(
                _("Der Status kann nur auf „abgemeldet“ gesetzt werden; aktiv wird eine Adresse durch ihre Bestätigung."),
                field="status",
            )
        unsubscribe(subscriber)


def restart_opt_in(subscriber, source="admin", consent_version=None):
    """A new confirmation link for a pending or former subscriber (the caller sends it after the commit).

    The confirmation mail quotes the consent text of `consent_version`
    (default: the current German one), which the person agrees to by confirming.
    """
    from subscribers.consent import MAIL_CONSENT_VERSION

    if subscriber.status == "active":
        raise SubscriberError(_("Die Adresse ist bereits bestätigt."))
    start_opt_in(subscriber, source, consent_version or MAIL_CONSENT_VERSION)


# --- sending the subscription mails ------------------------------------------


def confirmation_mail_allowed(district_key, email_key):
    """Count one subscription mail for this address; False beyond CONFIRMATION_MAIL_LIMIT.

    Keyed by the address's hash, so no address is stored in Redis. Beyond
    the limit the form answers as always, but no mail goes out: the form can
    not be used to flood someone's inbox.
    """
    item = parse_limit(current_app.config["CONFIRMATION_MAIL_LIMIT"])
    return limiter.limiter.hit(item, "subscription-mail", district_key, address_hash(email_key))


# --- lists and counts --------------------------------------------------------------


@dataclass
class SubscriberFilter:
    status: str | None = None
    municipality: str | None = None
    topic: int | None = None
    search: str | None = None


def subscriber_query(district_key, filters=None):
    """SELECT of the district's subscribers matching the filters, ordered by address."""
    filters = filters or SubscriberFilter()
    query = select(Subscriber).where(Subscriber.district_key == district_key)
    if filters.status:
        query = query.where(Subscriber.status == filters.status)
    if filters.municipality:
        query = query.where(Subscriber.municipality_ags == filters.municipality)
    if filters.topic:
        query = query.where(
            Subscriber.id.in_(select(subscriber_topics.c.subscriber_id).where(subscriber_topics.c.topic_id == filters.topic))
        )
    if filters.search:
        needle = "%" + filters.search.strip().lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = query.where(or_(
            Subscriber.email_key.like(needle, escape="\\"), func.lower(Subscriber.name).like(needle, escape="\\")
        ))
    return query.order_by(Subscriber.email_key)


def status_counts(district_key):
    rows = db.session.execute(
        select(Subscriber.status, func.count()).where(Subscriber.district_key == district_key).group_by(Subscriber.status)
    ).all()
    counts = dict.fromkeys(STATUS_LABELS, 0)
    counts.update(dict(rows))
    return counts


def municipality_coverage(district_key):
    """[(municipality, active subscribers)] for every municipality of the district, by name."""
    active = (
        select(Subscriber.municipality_ags, func.count().label("n"))
        .where(Subscriber.district_key == district_key, Subscriber.status == "active")
        .group_by(Subscriber.municipality_ags)
        .subquery()
    )
    rows = db.session.execute(
        select(Municipality, func.coalesce(active.c.n, 0))
        .outerjoin(active, active.c.municipality_ags == Municipality.ags)
        .where(Municipality.district_key == district_key)
    ).all()
    return sorted_by_name([(municipality, count) for municipality, count in rows], lambda row: row[0].name)


def sendable_subscribers(district_key, filters=None):
    """The subscribers list mail may go to: active, and (defence in depth) not suppressed.

    Leaving the list makes a row inactive and suppressed in one step, and only
    a confirmation lifts both, so the hash check normally removes no one.
    """
    filters = replace(filters or SubscriberFilter(), status="active")
    allowed = unsuppressed(district_key)
    return [s for s in db.session.execute(subscriber_query(district_key, filters)).scalars() if allowed(s.email_key)]
