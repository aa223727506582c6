"""The API against its own OpenAPI document: no request answers 5xx.

Schemathesis generates requests for every operation of /api/openapi.json,
valid ones and ones that break the schema (wrong types, numbers out of
range, missing fields), and sends them to the WSGI app in this process with a
valid bearer token. Half of the generated path parameters are replaced by a
real district key and real row ids, so the operations get past their 404s
and their bodies are exercised too.

Bounded: at most MAX_EXAMPLES requests per operation and generation mode, no
shrinking. (Schemathesis' own pytest plugin, `schemathesis.pytest`, does not
run under pytest 9 yet, so the operations are driven through Hypothesis here.)
"""
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from core.extensions import db

MAX_EXAMPLES = 20


@pytest.fixture
def world(two_districts, make_subscriber, make_topic, make_event, make_user, make_token):
    """One row of each kind the API addresses by id, in district 08115, and an admin's token."""
    import datetime

    from events import services
    from events.models import Registration
    from newsletter.models import Newsletter
    from reach.models import Contact

    topic = make_topic("OZG", "08115")
    subscriber = make_subscriber("hauptamt@boeblingen.de", "08115", topics=[topic])
    event = make_event("08115")
    services.invite(event)  # the subscriber's registration
    newsletter = Newsletter(district_key="08115", subject="Rundbrief", body="Hallo", status="draft")
    contact = Contact(district_key="08115", date=datetime.date.today(), kind="telefon", note="Rückfrage")
    db.session.add_all([newsletter, contact])
    db.session.commit()
    registration = db.session.execute(db.select(Registration).filter_by(event_id=event.id)).scalar_one()
    return {
        "headers": make_token(make_user("admin@lrabb.de", role="admin", districts=())),
        "ids": {"/subscribers/": subscriber.id, "/events/": event.id, "/newsletters/": newsletter.id,
                "/registrations/": registration.id, "/contacts/": contact.id},
    }


def operations(app):
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    for result in schema.get_all_operations():
        yield result.ok()  # an operation the schema describes badly fails here


def real_path_parameters(operation, world):
    """A real district key and the row id the operation's path names (None: no such parameters)."""
    names = {parameter.name for parameter in operation.path_parameters}
    values = {}
    if "key" in names:
        values["key"] = "08115"
    if "id" in names:
        values["id"] = next(row_id for prefix, row_id in world["ids"].items() if prefix in operation.path)
    return values or None


def problems_of(operation, world, mode):
    """The requests of one operation in one generation mode that answered 5xx (or a non-JSON error)."""
    found = []
    strategies = [operation.as_strategy(generation_mode=mode)]
    fixed = real_path_parameters(operation, world)
    if fixed:
        strategies.append(operation.as_strategy(generation_mode=mode, path_parameters=fixed))

    @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(case=st.one_of(strategies))
    def run(case):
        response = case.call(headers=world["headers"])
        error = response.status_code >= 400
        if response.status_code >= 500 or (error and not _is_json_with_message(response)):
            found.append((case.method, case.formatted_path, case.query, case.body, response.status_code,
                          response.text[:300]))

    run()
    return found


def _is_json_with_message(response):
    # Schemathesis' headers: lowercase names, a list of values each.
    if not any(value.startswith("application/json") for value in response.headers.get("content-type", [])):
        return False
    payload = response.json()
    return isinstance(payload, dict) and bool(payload.get("message"))


def test_no_request_answers_5xx(app, world):
    problems = []
    count = 0
    for operation in operations(app):
        count += 1
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            problems += problems_of(operation, world, mode)
            db.session.rollback()  # a failed request must not leave the next one a broken session
    assert count >= 20  # every operation of the document
    assert not problems, "\n".join(map(repr, problems[:20]))
