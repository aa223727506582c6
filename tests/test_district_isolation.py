"""No route lets a coordinator of one district read, change or export anything
of another district: every page and API route that takes a district key or a
row id answers 404 for a foreign one, and nothing changes.

The routes are taken from the URL map, so a route added later is checked
without anyone remembering to add it here.
"""
import pytest
from sqlalchemy import select

from core.extensions import db
from events.models import Registration

# Blueprints whose routes belong to one district. `public` is left out on
# purpose: its pages serve whoever holds a signed link (tested on their own).
SCOPED_BLUEPRINTS = {"subscribers", "manage", "transfer", "newsletters", "events"}
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


def all_stored():
    rows = []
    for table in db.metadata.sorted_tables:
        if table.name == "api_tokens":
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
