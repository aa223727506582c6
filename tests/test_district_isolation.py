"""No route lets a coordinator of one district read, change or export anything
of another district: every page and API route that takes a district key or a
row id answers 404 for a foreign one, and nothing changes.

Viewers (ministry, municipal associations) see aggregates only: every route
with personal data answers 403 to them, and no page or API answer they get
shows a person of the fixtures.

The routes are taken from the URL map, so a route added later is checked
without anyone remembering to add it here.
"""
import io
import itertools
import re
import zipfile

import pytest
from sqlalchemy import select
from werkzeug.routing import AnyConverter

from core.extensions import db
from events.models import Registration
from reach.models import DERIVED_TABLES

# Blueprints whose routes belong to one district. `public` is left out on
# purpose: its pages serve whoever holds a signed link (tested on their own).
SCOPED_BLUEPRINTS = {"subscribers", "manage", "transfer", "newsletters", "events", "contacts", "reach"}
API_PREFIX = "/api/v1/"
# Route arguments that name a row; a route with one of them is checked with a real foreign id.
ROW_ARGUMENTS = {"id", "topic_id", "upload_id", "registration_id", "slot_id", "event_id"}
METHODS = ("GET", "POST", "PATCH", "PUT", "DELETE")


@pytest.fixture
def foreign_world(two_districts, make_subscriber, make_topic, make_event):
    """Rows of Böblingen (08115), which an Esslingen coordinator must never reach."""
    from events import services

    topic = make_topic("OZG", "08115")
    subscriber = make_subscriber("hauptamt@boeblingen.de", "08115", topics=[topic])
    own = make_subscriber("hauptamt@esslingen.de", "08116", ags="08116019")
    event = make_event("08115")
    services.invite(event)  # the subscriber's registration, with its invitation mail row
    db.session.commit()
    registration = db.session.execute(select(Registration).where(Registration.event_id == event.id)).scalar_one()
    return {"key": "08115", "id": subscriber.id, "topic_id": topic.id, "own_id": own.id, "event_id": event.id,
            "registration_id": registration.id, "slot_id": event.slots[0].id}


def all_stored(derived=()):
    """Every stored row; not those of the tables in `derived` (caches a read may bring up to date)."""
    rows = []
    for table in db.metadata.sorted_tables:
        if table.name == "api_tokens" or table.name in derived:
            continue  # a token's last use is recorded, as it should be
        rows.extend((table.name, tuple(map(str, row))) for row in db.session.execute(table.select()).all())
    return sorted(rows)


def scoped_rules(app):
    for rule in app.url_map.iter_rules():
        blueprint = rule.endpoint.rpartition(".")[0]
        if rule.arguments and (blueprint in SCOPED_BLUEPRINTS or rule.rule.startswith(API_PREFIX)):
            if ({"key"} | ROW_ARGUMENTS) & rule.arguments:
                yield rule


def id_of(rule, values):
    """The foreign row an `id` names: the event's or registration's on their routes, else the subscriber's."""
    if rule.rule.startswith(API_PREFIX + "registrations/"):
        return values["registration_id"]
    if "/events/<" in rule.rule:
        return values["event_id"]
    return values["id"]


def build(rule, values):
    arguments = {}
    for name in rule.arguments:
        if name == "key":
            arguments[name] = values["key"]
        elif name == "id":
            arguments[name] = id_of(rule, values)
        elif name == "subscriber_id":
            arguments[name] = values["id"]
        elif name in ("topic_id", "event_id", "registration_id", "slot_id"):
            arguments[name] = values[name]
        elif isinstance(rule._converters.get(name), AnyConverter):
            arguments[name] = sorted(rule._converters[name].items)[0]  # e.g. the export's file type
        elif name == "ags":
            arguments[name] = values["key"] + "003"  # a municipality of that district
        else:
            arguments[name] = "0" * 8
    return rule.build(arguments, append_unknown=False)[1]


def test_every_scoped_route_answers_404_for_another_district(app, client, foreign_world, make_user, make_token, sign_in):
    coordinator = make_user("koordination@lra-es.de", districts=("08116",))
    headers = make_token(coordinator)
    sign_in(coordinator)
    before = all_stored()
    checked = 0
    for rule in scoped_rules(app):
        path = build(rule, foreign_world)
        for method in sorted(set(METHODS) & rule.methods):
            response = client.open(path, method=method, headers=headers if path.startswith(API_PREFIX) else {},
                                   json={} if path.startswith(API_PREFIX) else None,
                                   data=None if path.startswith(API_PREFIX) else {"name": "X", "email": "x@y.de"})
            assert response.status_code == 404, (method, path, response.status_code)
            checked += 1
    assert checked >= 20  # the list, the subscriber pages, import/export, topics and the API
    db.session.expire_all()
    assert all_stored() == before


def test_a_foreign_subscriber_id_under_the_own_key_is_404(app, client, foreign_world, make_user, make_token, sign_in):
    coordinator = make_user("koordination@lra-es.de", districts=("08116",))
    headers = make_token(coordinator)
    sign_in(coordinator)
    before = all_stored()
    values = dict(foreign_world, key="08116")
    checked = 0
    for rule in scoped_rules(app):
        if not (ROW_ARGUMENTS - {"upload_id"}) & rule.arguments:
            continue
        path = build(rule, values)
        for method in sorted(set(METHODS) & rule.methods):
            response = client.open(path, method=method, headers=headers if path.startswith(API_PREFIX) else {},
                                   json={} if path.startswith(API_PREFIX) else None)
            assert response.status_code == 404, (method, path, response.status_code)
            checked += 1
    assert checked >= 5
    db.session.expire_all()
    assert all_stored() == before


# --- viewers: aggregates only ---------------------------------------------------------------------
#
# Viewers (the ministry, municipal associations; statewide or for some
# districts) see reach and aggregate figures, never a person. Every route of
# the URL map is classified below: a route in none of the lists fails
# `test_every_route_is_classified_for_viewers`, so a new route can not be
# forgotten. Routes are named by endpoint, or by the beginning of their rule
# for the ones other packages are adding (converters left out: `<key>`).

# Every method answers 403: the route shows, exports or changes a person's data.
VIEWER_FORBIDDEN = {
    "manage.subscribers": "the subscriber list: names and addresses",
    "manage.subscriber": "one subscriber",
    "manage.edit_subscriber": "changes a subscriber",
    "manage.new_subscriber": "adds a subscriber",
    "manage.unsubscribe": "changes a subscriber",
    "manage.resend": "mails a subscriber",
    "manage.erase": "one subscriber, and erases them",
    "manage.export_person": "a person's data export",
    "transfer.export": "the list as CSV or XLSX: names and addresses",
    "transfer.upload": "imports names and addresses",
    "transfer.confirm": "imports names and addresses",
    "transfer.remap": "previews names and addresses of an import",
    "events.checkin": "the check-in list: names and addresses",
    "events.checkin_save": "attendance of persons",
    "events.export": "registrations as CSV or XLSX: names and addresses",
    "events.remove": "changes a registration",
    "districts_api.DistrictSubscribers": "the subscriber list",
    "districts_api.subscriber": "one subscriber",
    "events_api.EventRegistrations": "an event's registrations",
    "events_api.registration": "one registration",
    "accounts.users": "the users' names and addresses (admin)",
    "accounts.new_user": "admin",
    "accounts.edit_user": "admin",
    "accounts.reset_password": "admin",
    "accounts.issue_api_token": "admin",
    "accounts.revoke_api_token": "admin",
    "outbox.index": "sent mails with their recipients",
    "outbox.show": "a sent mail",
    "outbox.download": "a sent mail",
    "outbox.html": "a sent mail",
    "outbox.attachment": "a sent mail",
    "legal.settings": "the legal pages' settings (admin)",
    # Writes without personal data are the editors' all the same.
    "manage.create_topic": "write",
    "manage.rename_topic": "write",
    "manage.delete_topic": "write",
    "events.new": "write",
    "events.edit": "write",
    "events.publish": "write",
    "events.invite": "write",
    "events.cancel_confirm": "write",
    "events.cancel": "write",
    "newsletters.new": "write",
    "newsletters.edit": "write",
    "newsletters.send_test": "write",
    "newsletters.send_now": "write",
    "newsletters.schedule": "write",
    "newsletters.pause": "write",
    "newsletters.resume": "write",
    "newsletters.cancel": "write",
    "newsletters.publish": "write",
    "events_api.Invite": "write",
    "events_api.Cancel": "write",
    "newsletters_api.Send": "write",
    "newsletters_api.Pause": "write",
    "newsletters_api.Resume": "write",
    "newsletters_api.Cancel": "write",
    "newsletters_api.TestSend": "write",
}
VIEWER_FORBIDDEN_PREFIXES = {
    "/d/<key>/kontakte": "the coordinator's work log",
    "/api/v1/districts/<key>/contacts": "the coordinator's work log",
    "/api/v1/contacts/": "the coordinator's work log",
}
# GET answers 200 and shows no person; any other method is a write (403).
VIEWER_ALLOWED = {
    "subscribers.districts", "subscribers.dashboard", "manage.municipalities", "manage.topics", "manage.embed",
    "newsletters.index", "newsletters.detail", "newsletters.preview", "newsletters.progress",
    "events.index", "events.detail",
    "districts_api.Districts", "districts_api.Municipalities", "events_api.DistrictEvents", "events_api.event",
    "newsletters_api.DistrictNewsletters", "newsletters_api.newsletter",
}
VIEWER_ALLOWED_PREFIXES = ("/d/<key>/reichweite", "/reichweite", "/api/v1/reach", "/api/v1/districts/<key>/reach")
# Not swept, and why.
VIEWER_NOT_SWEPT = {
    "static": "files",
    "core.index": "redirects to the district overview",
    "core.set_language": "the visitor's language",
    "core.healthz": "public health report, no rows",
    "legal.imprint": "public legal page, no rows of a district",
    "legal.privacy": "public legal page, no rows of a district",
    "legal.accessibility": "public legal page, no rows of a district",
    "api-docs.openapi_json": "the API's description, no rows",
    "accounts.login": "everyone's session",
    "accounts.logout": "everyone's session",
    "accounts.password": "the viewer's own account",
    "archive.index": "public newsletter archive",
    "archive.newsletter": "public newsletter archive",
    "archive.feed": "public newsletter archive",
    "events_public.upcoming": "public event page",
    "events_public.feed": "public calendar feed",
    "events_public.register": "public registration form",
    "events_public.rsvp": "signed link in a mail, for its one recipient",
    "events_public.book": "signed link in a mail, for its one recipient",
    "public.subscribe": "public sign-up form",
    "public.check_inbox": "public sign-up form",
    "public.confirm": "signed link in a mail, for its one recipient",
    "public.unsubscribe": "signed link in a mail, for its one recipient",
    "public.preferences": "signed link in a mail, for its one recipient",
    "public.resubscribe": "signed link in a mail, for its one recipient",
    "public.export": "signed link in a mail, for its one recipient",
    "public.delete": "signed link in a mail, for its one recipient",
    "tracking.open_pixel": "signed link in a mail",
    "tracking.click": "signed link in a mail",
}
# The persons of the fixtures, as they must never appear on a viewer's page or in an API answer.
PEOPLE = {
    "08115": (("Anna Beispiel", "anna.beispiel@rathaus-boeblingen.de"),
              ("Gustav Gastmann", "gustav.gastmann@rathaus-sindelfingen.de")),
    "08116": (("Erna Esslinger", "erna.esslinger@rathaus-esslingen.de"),
              ("Norbert Nuertinger", "norbert.nuertinger@rathaus-nuertingen.de")),
}
PERSONAL_STRINGS = [text.lower() for people in PEOPLE.values() for person in people for text in person] + [
    "rathaus-boeblingen.de", "rathaus-sindelfingen.de", "rathaus-esslingen.de", "rathaus-nuertingen.de",
]


# Reach's tables are derived from the other packages' rows and brought up to
# date when read: a cache, not a change.
DERIVED = DERIVED_TABLES


def plain_rule(rule):
    """The rule without converters: /api/v1/districts/<string:key> → /api/v1/districts/<key>."""
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"<\1>", rule.rule)


def viewer_class(rule):
    """"forbidden", "allowed", "not swept", or None when nobody classified the route."""
    plain = plain_rule(rule)
    if rule.endpoint in VIEWER_FORBIDDEN or plain.startswith(tuple(VIEWER_FORBIDDEN_PREFIXES)):
        return "forbidden"
    if rule.endpoint in VIEWER_ALLOWED or plain.startswith(VIEWER_ALLOWED_PREFIXES):
        return "allowed"
    if rule.endpoint in VIEWER_NOT_SWEPT:
        return "not swept"
    return None


def test_every_route_is_classified_for_viewers(app):
    unclassified = sorted(f"{rule.endpoint} {rule.rule}" for rule in app.url_map.iter_rules() if not viewer_class(rule))
    assert unclassified == [], "classify for viewers: " + ", ".join(unclassified)
    assert len(VIEWER_FORBIDDEN) > 20 and len(VIEWER_ALLOWED) > 10


@pytest.fixture
def viewer_world(two_districts, make_subscriber, make_topic, make_event):
    """In each district: a subscriber, an event with an invited subscriber and a confirmed guest,
    a newsletter being sent and a contact. {district key: route argument values}."""
    from events import services as events
    from newsletter import services as newsletters

    worlds = {}
    for district, ((name, email), (guest_name, guest_email)) in zip(two_districts, PEOPLE.values()):
        key = district.key
        topic = make_topic("OZG", key)
        subscriber = make_subscriber(email, key, name=name, topics=[topic])
        event = make_event(key)
        events.invite(event)
        guest = events.request_invitation(event, event.slots[0], guest_email, guest_name,
                                          district.municipalities[-1].ags)
        events.respond(guest, "accept")
        newsletter = newsletters.create_newsletter(district, "Neues aus dem Kreis", "Hallo {{ name }}!")
        newsletters.send_now(newsletter)
        db.session.commit()
        worlds[key] = {
            "key": key, "subscriber": subscriber.id, "topic_id": topic.id, "event": event.id,
            "registration": guest.id, "slot_id": event.slots[0].id, "newsletter": newsletter.id,
            "contact": _a_contact(key), "ags": district.municipalities[0].ags, "upload_id": "x" * 32,
            "user_id": 1, "token_id": 1, "stem": "x", "index": 0,
        }
    return worlds


def _a_contact(key):
    """A contact of the district, while the reach package has them; else an id nothing has."""
    import datetime as dt

    try:
        from reach.models import Contact
    except ImportError:
        return 0
    contact = Contact(district_key=key, date=dt.date.today(), kind="telefon", note="Rückfrage zur E-Rechnung")
    db.session.add(contact)
    db.session.commit()
    return contact.id


# The row an `<id>` names, by the part of the rule before it.
ID_OWNERS = (("/subscribers/", "subscriber"), ("/events/", "event"), ("/registrations/", "registration"),
             ("/newsletters/", "newsletter"), ("/kontakte/", "contact"), ("/contacts/", "contact"))


def viewer_paths(rule, values):
    """[(path, every argument known)]: one path per choice of an `any(…)` argument; an argument
    nobody named here gets a made-up value."""
    choices, known = {}, True
    plain = plain_rule(rule)
    for name in rule.arguments:
        converter = rule._converters.get(name)
        if isinstance(converter, AnyConverter):
            choices[name] = sorted(converter.items)
        elif name == "id":
            owner = next((row for part, row in ID_OWNERS if part + "<id>" in plain), None)
            choices[name] = [values[owner] if owner else 0]
            known = known and owner is not None
        elif name in ("subscriber_id", "event_id", "registration_id"):
            choices[name] = [values[name.removesuffix("_id")]]
        elif name in values:
            choices[name] = [values[name]]
        else:
            choices[name], known = ["0" * 8], False
    names = sorted(choices)
    return [(rule.build(dict(zip(names, chosen)), append_unknown=False)[1], known)
            for chosen in itertools.product(*(choices[name] for name in names))]


def readable(response):
    """The answer's text; a spreadsheet (a zip of XML files) unpacked."""
    data = response.get_data()
    if data.startswith(b"PK"):
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            data = b"".join(archive.read(name) for name in archive.namelist())
    return data.decode("utf-8", "replace")


def assert_no_person(response, method, path):
    body = readable(response).lower()
    leaked = [text for text in PERSONAL_STRINGS if text in body]
    assert not leaked, (method, path, response.status_code, leaked)


def sweep_as_viewer(app, client, headers, values, foreign=False):
    """Every classified route with these values; returns how many requests were checked."""
    refused = [path for rule in app.url_map.iter_rules() if viewer_class(rule) == "forbidden" and "GET" in rule.methods
               for path, _known in viewer_paths(rule, values)]
    checked = 0
    for rule in app.url_map.iter_rules():
        kind = viewer_class(rule)
        if kind == "not swept":
            continue
        scoped = bool(({"key", "id"} | ROW_ARGUMENTS | {"subscriber_id"}) & rule.arguments)
        methods = sorted(set(METHODS) & rule.methods)
        for (path, known), method in itertools.product(viewer_paths(rule, values), methods):
            is_api = path.startswith(API_PREFIX)
            response = client.open(path, method=method, headers=headers if is_api else {},
                                   json={} if is_api else None,
                                   data=None if is_api else {"name": "X", "email": "x@y.de"},
                                   follow_redirects=method == "GET" and kind == "allowed")
            assert_no_person(response, method, path)
            if kind == "allowed" and method == "GET":
                expected = {404} if foreign and scoped else {200}
                body = readable(response)
                links = [target for target in refused if f'href="{target}"' in body or f'href="{target}?' in body]
                assert not links, (path, "links to pages a viewer may not open", links)
            else:
                expected = {403}
                if foreign and scoped:
                    expected = {403, 404}  # another district's row: refused, or not there at all
            if not known:
                expected = expected | {404}  # an argument this test does not know
            assert response.status_code in expected, (method, path, response.status_code)
            checked += 1
    return checked


@pytest.mark.parametrize("districts", [(), ("08115",)], ids=["statewide", "district"])
def test_viewers_get_403_for_personal_data_and_see_only_aggregates(app, client, viewer_world, make_user, make_token,
                                                                   sign_in, districts):
    viewer = make_user("lagebild@im.bwl.de", role="viewer", districts=districts)
    headers = make_token(viewer)
    sign_in(viewer)
    before = all_stored(DERIVED)
    checked = sweep_as_viewer(app, client, headers, viewer_world["08115"])
    checked += sweep_as_viewer(app, client, headers, viewer_world["08116"], foreign=bool(districts))
    assert checked >= 150
    db.session.expire_all()
    assert all_stored(DERIVED) == before


def test_the_sweep_sees_the_persons_a_coordinator_sees(app, client, viewer_world, make_user, sign_in):
    """The fixtures do put persons on the pages viewers are refused: the sweep would notice a leak."""
    sign_in(make_user("koordination@lrabb.de", districts=("08115",)))
    values = viewer_world["08115"]
    (name, email), (_guest_name, guest_email) = PEOPLE["08115"]
    assert email in client.get("/d/08115/subscribers").get_data(as_text=True)
    event_page = client.get(f"/d/08115/events/{values['event']}").get_data(as_text=True)
    assert name in event_page and guest_email in event_page
