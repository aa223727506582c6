"""The public side of the list: subscribe with double opt-in, confirm, preferences,
one-click unsubscribe, self-service export and erasure, and bad links."""
import json
import re

import pytest
from sqlalchemy import func, select

from core.extensions import db
from subscribers.models import Subscriber, Suppression


@pytest.fixture
def district(two_districts, make_topic):
    make_topic("service-bw")
    make_topic("E-Rechnung")
    return two_districts[0]


def topic_id(name):
    from subscribers.models import Topic

    return str(db.session.execute(select(Topic.id).filter_by(name=name)).scalar_one())


def subscribe(client, **fields):
    data = {"email": "lena.schmid@sindelfingen.de", "name": "Lena Schmid", "municipality": "08115045",
            "consent": "1"}
    data.update(fields)
    return client.post("/d/08115/subscribe", data=data)


def links_in(message):
    text = message.get_body(("plain",)).get_content()
    return re.findall(r"https?://\S+", text)


def path_of(url):
    return re.sub(r"^https?://[^/]+", "", url)


def one_subscriber():
    return db.session.execute(select(Subscriber)).scalar_one()


def test_form_sends_exactly_one_confirmation_and_get_changes_nothing(district, smtp_app, smtp_server, run_jobs):
    client = smtp_app.test_client()
    response = subscribe(client, topics=[topic_id("service-bw")])
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/d/08115/subscribe/check-inbox")
    run_jobs()
    messages = smtp_server.wait_for(1)
    assert len(messages) == 1
    message = messages[0]
    assert message["To"] == "lena.schmid@sindelfingen.de"
    assert "Landkreis Böblingen" in message["From"]
    confirm = [u for u in links_in(message) if "/confirm/" in u]
    assert len(confirm) == 1
    subscriber = one_subscriber()
    assert subscriber.status == "pending"
    assert subscriber.consent_source == "form"
    assert subscriber.consent_requested_at is not None and subscriber.consent_confirmed_at is None
    assert subscriber.consent_text_version == "2026-11-de"
    assert subscriber.topic_names == ["service-bw"]

    # A link scanner fetching the link changes nothing.
    for _ in range(3):
        page = client.get(path_of(confirm[0]))
        assert page.status_code == 200
        assert "Anmeldung bestätigen" in page.get_data(as_text=True)
    db.session.expire_all()
    assert one_subscriber().status == "pending"

    assert client.post(path_of(confirm[0])).status_code == 200
    db.session.expire_all()
    subscriber = one_subscriber()
    assert subscriber.status == "active"
    assert subscriber.consent_requested_at <= subscriber.consent_confirmed_at
    # The link has done its work: used again it says so and changes nothing.
    again = client.post(path_of(confirm[0]))
    assert again.status_code == 200 and "bereits bestätigt" in again.get_data(as_text=True)
    run_jobs()
    assert len(smtp_server.messages) == 1


def test_same_answer_for_new_pending_and_active_addresses(district, smtp_app, make_subscriber, smtp_server, run_jobs):
    make_subscriber("aktiv@boeblingen.de", ags="08115003", name="Alt Name")
    client = smtp_app.test_client()
    answers = []
    for email in ("neu@boeblingen.de", "neu@boeblingen.de", "Aktiv@Boeblingen.de"):
        answers.append(subscribe(client, email=email))
        run_jobs()
    assert {(r.status_code, r.headers["Location"]) for r in answers} == {(302, "/d/08115/subscribe/check-inbox")}
    messages = smtp_server.wait_for(3)
    assert sorted(m["To"] for m in messages) == ["aktiv@boeblingen.de", "neu@boeblingen.de", "neu@boeblingen.de"]
    notice = next(m for m in messages if m["To"] == "aktiv@boeblingen.de")
    assert "bereits angemeldet" in notice["Subject"]
    for message in messages:  # every mail to a subscriber carries the list headers
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert len(unsubscribe_urls(message)[0]) == 1 and "kreis-08115." in message["List-Id"]
    assert not [u for u in links_in(notice) if "/confirm/" in u]
    # An unconfirmed form does not change an active subscriber's details.
    active = db.session.execute(select(Subscriber).filter_by(email_key="aktiv@boeblingen.de")).scalar_one()
    assert active.name == "Alt Name" and active.municipality_ags == "08115003"
    # Asking again keeps the first mail's link valid.
    first = next(m for m in messages if m["To"] == "neu@boeblingen.de")
    link = next(u for u in links_in(first) if "/confirm/" in u)
    assert client.post(path_of(link)).status_code == 200
    db.session.expire_all()
    assert db.session.execute(select(Subscriber.status).filter_by(email_key="neu@boeblingen.de")).scalar_one() == "active"


def test_repeated_requests_before_the_worker_runs_send_one_mail(district, smtp_app, smtp_server, run_jobs):
    client = smtp_app.test_client()
    assert subscribe(client).status_code == 302
    assert subscribe(client).status_code == 302
    run_jobs()
    run_jobs()
    assert len(smtp_server.wait_for(1)) == 1


def test_confirmation_mails_per_address_are_capped(district, smtp_app, smtp_server, run_jobs):
    client = smtp_app.test_client()
    for _ in range(5):
        assert subscribe(client).status_code == 302
        run_jobs()
    smtp_server.wait_for(3)
    assert len(smtp_server.messages) == 3  # CONFIRMATION_MAIL_LIMIT "3 per day"


def test_per_address_rate_limit_answers_429(make_app, district):
    app = make_app(SUBSCRIBE_ADDRESS_RATE_LIMIT="2 per day")
    client = app.test_client()
    with app.app_context():
        assert subscribe(client).status_code == 302
        assert subscribe(client).status_code == 302
        assert subscribe(client).status_code == 429
        assert subscribe(client, email="andere@boeblingen.de").status_code == 302


def test_honeypot_answers_alike_and_stores_nothing(client, district):
    response = subscribe(client, website="http://spam.example")
    assert response.status_code == 302
    assert db.session.execute(select(func.count()).select_from(Subscriber)).scalar_one() == 0


@pytest.mark.parametrize("fields, message", [
    ({"email": "kein-at-zeichen"}, "Ungültige E-Mail-Adresse"),
    ({"municipality": "08116019"}, "Gemeinde"),  # a municipality of another district
    ({"municipality": ""}, "Bitte wählen Sie Ihre Gemeinde"),
    ({"consent": ""}, "Bitte stimmen Sie dem Empfang zu"),
    ({"topics": ["987654321"]}, "Unbekanntes Thema"),
    ({"name": "x" * 300}, "Name"),
])
def test_bad_input_is_explained_and_changes_nothing(client, district, fields, message):
    response = subscribe(client, **fields)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert db.session.execute(select(func.count()).select_from(Subscriber)).scalar_one() == 0


def test_plain_html_form_from_another_site_works(make_app, district):
    app = make_app(WTF_CSRF_ENABLED=True)
    client = app.test_client()
    with app.app_context():
        response = client.post("/d/08115/subscribe", data={
            "email": "extern@ehningen.de", "municipality": "08115003", "topics": ["E-Rechnung"], "consent": "on",
        }, headers={"Origin": "https://www.ehningen.de"})
        assert response.status_code == 302
        assert one_subscriber().topic_names == ["E-Rechnung"]


def test_subscribe_page_is_accessible_form(client, district):
    html = client.get("/d/08115/subscribe").get_data(as_text=True)
    for field in ("email", "name", "municipality", "consent"):
        assert f'for="{field}"' in html and f'id="{field}"' in html
    assert 'name="website"' in html and 'tabindex="-1"' in html
    assert "Sindelfingen, Stadt" in html and "service-bw" in html
    assert client.get("/d/99999/subscribe").status_code == 404


# --- list headers and unsubscribe ---------------------------------------------


def confirmed_subscriber(client, smtp_server, run_jobs, **fields):
    assert subscribe(client, **fields).status_code == 302
    run_jobs()
    message = smtp_server.wait_for(1)[-1]
    link = next(u for u in links_in(message) if "/confirm/" in u)
    assert client.post(path_of(link)).status_code == 200
    db.session.expire_all()
    return one_subscriber(), message


def unsubscribe_urls(message):
    header = message["List-Unsubscribe"]
    uris = re.findall(r"<([^>]+)>", header)
    return [u for u in uris if u.startswith("http")], [u for u in uris if u.startswith("mailto:")]


def test_rfc8058_one_click_post_unsubscribes_and_get_does_not(district, smtp_app, smtp_server, run_jobs):
    client = smtp_app.test_client()
    subscriber, message = confirmed_subscriber(client, smtp_server, run_jobs)
    assert subscriber.status == "active"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "kreis-08115." in message["List-Id"] and "Böblingen" in message["List-Id"]
    https, mailto = unsubscribe_urls(message)
    assert len(https) == 1 and len(mailto) == 1
    assert "subject=unsubscribe" in mailto[0]

    # A mail client's one-click POST carries no cookie, no CSRF token, no session.
    fresh = smtp_app.test_client()
    for _ in range(2):
        assert fresh.get(path_of(https[0])).status_code == 200
    db.session.expire_all()
    assert one_subscriber().status == "active"
    response = fresh.post(path_of(https[0]), data={"List-Unsubscribe": "One-Click"},
                          content_type="application/x-www-form-urlencoded")
    assert response.status_code == 200
    db.session.expire_all()
    assert one_subscriber().status == "unsubscribed"
    assert db.session.execute(select(Suppression.reason)).scalar_one() == "unsubscribed"
    # Repeating it is harmless.
    assert fresh.post(path_of(https[0]), data={"List-Unsubscribe": "One-Click"}).status_code == 200


def test_one_click_works_with_csrf_protection_on(make_app, district, make_subscriber):
    app = make_app(WTF_CSRF_ENABLED=True)
    with app.app_context():
        from subscribers.mail import subscriber_links

        subscriber = make_subscriber()
        url = subscriber_links(subscriber)["unsubscribe"]
        response = app.test_client().post(path_of(url), data={"List-Unsubscribe": "One-Click"})
        assert response.status_code == 200
        db.session.expire_all()
        assert one_subscriber().status == "unsubscribed"


def test_resubscribing_through_double_opt_in_lifts_the_unsubscribe(district, smtp_app, smtp_server, run_jobs):
    client = smtp_app.test_client()
    subscriber, message = confirmed_subscriber(client, smtp_server, run_jobs)
    https, _ = unsubscribe_urls(message)
    client.post(path_of(https[0]))
    db.session.expire_all()
    assert one_subscriber().status == "unsubscribed"

    assert subscribe(client).status_code == 302
    db.session.expire_all()
    assert db.session.execute(select(func.count()).select_from(Suppression)).scalar_one() == 1  # until confirmed
    run_jobs()
    link = next(u for u in links_in(smtp_server.wait_for(2)[-1]) if "/confirm/" in u)
    client.post(path_of(link))
    db.session.expire_all()
    assert one_subscriber().status == "active"
    assert db.session.execute(select(func.count()).select_from(Suppression)).scalar_one() == 0


# --- preferences, export and erasure -------------------------------------------


def manage_path(subscriber):
    from subscribers.mail import subscriber_links

    return path_of(subscriber_links(subscriber)["preferences"])


def test_preferences_change_details_and_topics(district, client, make_subscriber):
    subscriber = make_subscriber(ags="08115003")
    path = manage_path(subscriber)
    page = client.get(path)
    assert page.status_code == 200 and "anna.beispiel@boeblingen.de" in page.get_data(as_text=True)
    response = client.post(path, data={"name": "Anna B.", "municipality": "08115045", "topics": [topic_id("E-Rechnung")],
                                       "department": "Hauptamt"})
    assert response.status_code == 200 and "gespeichert" in response.get_data(as_text=True)
    db.session.expire_all()
    subscriber = one_subscriber()
    assert (subscriber.name, subscriber.municipality_ags, subscriber.department) == ("Anna B.", "08115045", "Hauptamt")
    assert subscriber.topic_names == ["E-Rechnung"]
    # A municipality of another district is refused and changes nothing.
    assert client.post(path, data={"name": "X", "municipality": "08116019"}).status_code == 400
    db.session.expire_all()
    assert one_subscriber().name == "Anna B."


def test_export_holds_everything_stored(district, client, make_subscriber):
    subscriber = make_subscriber(topics=[], department="Bürgerbüro")
    response = client.post(manage_path(subscriber) + "/export")
    assert response.status_code == 200
    assert "attachment" in response.headers["Content-Disposition"]
    data = json.loads(response.get_data(as_text=True))
    assert data["subscriber"]["email"] == "anna.beispiel@boeblingen.de"
    assert data["subscriber"]["department"] == "Bürgerbüro"
    assert data["subscriber"]["municipality"]["ags"] == "08115003"
    assert data["consent"]["source"] == "admin" and "Einwilligung" in data["consent"]["text"]
    # GET changes nothing and exports nothing.
    assert client.get(manage_path(subscriber) + "/export").status_code == 405


def all_stored_text():
    """Every string value in every table, to search for personal data."""
    values = []
    for table in db.metadata.sorted_tables:
        for row in db.session.execute(table.select()).all():
            values.extend(str(v) for v in row if isinstance(v, str))
    return "\n".join(values)


def test_erasure_leaves_no_personal_data_in_any_table(district, client, make_subscriber, make_topic):
    subscriber = make_subscriber("Greta.Gruen@Ehningen.de", name="Greta Grün", department="Kämmerei Ehningen",
                                 topics=[make_topic("OZG")])
    other = make_subscriber("kollege@boeblingen.de", name="Karl Kollege")
    path = manage_path(subscriber)
    assert client.get(path + "/delete").status_code == 200
    assert "Greta" in all_stored_text()
    assert client.post(path + "/delete").status_code == 200
    stored = all_stored_text().lower()
    for fragment in ("greta", "grün", "gruen", "kämmerei", subscriber.public_id.lower()):
        assert fragment not in stored
    assert "karl kollege" in stored  # only that person is gone
    assert db.session.execute(select(Suppression.reason)).scalars().all() == ["erased"]
    # The erased person's links are dead, and an import or API add can not re-add them silently.
    assert client.get(path).status_code == 404
    from subscribers.services import SubscriberError, add_subscriber

    with pytest.raises(SubscriberError):
        add_subscriber(district, "greta.gruen@ehningen.de", "", "08115003", source="import")
    assert other.id


# --- bad links --------------------------------------------------------------------


def token_routes():
    """(method, path template, purpose) of every route that takes a token."""
    return [
        ("GET", "/confirm/{}", "subscription-confirm"),
        ("POST", "/confirm/{}", "subscription-confirm"),
        ("GET", "/unsubscribe/{}", "subscriber-unsubscribe"),
        ("POST", "/unsubscribe/{}", "subscriber-unsubscribe"),
        ("GET", "/preferences/{}", "subscriber-manage"),
        ("POST", "/preferences/{}", "subscriber-manage"),
        ("POST", "/preferences/{}/export", "subscriber-manage"),
        ("POST", "/preferences/{}/resubscribe", "subscriber-manage"),
        ("GET", "/preferences/{}/delete", "subscriber-manage"),
        ("POST", "/preferences/{}/delete", "subscriber-manage"),
    ]


def bad_tokens(app, subscriber, purpose):
    """50 tokens that must not work for `purpose`: forged, truncated, expired, cross-purpose."""
    from itsdangerous import URLSafeTimedSerializer

    from core.tokens import PURPOSES, make_token

    payload = {"s": subscriber.public_id, "n": subscriber.confirm_nonce}
    good = make_token(purpose, payload)
    tokens = []
    # forged: signed with another key, or with the right key and a wrong salt
    for key in ("guessed-secret", "", "test-secret-x"):
        tokens.append(URLSafeTimedSerializer(key or "x", salt=f"egov-reach:{purpose}").dumps(payload))
    tokens.append(URLSafeTimedSerializer(app.config["SECRET_KEY"]).dumps(payload))
    tokens.append(URLSafeTimedSerializer(app.config["SECRET_KEY"], salt="itsdangerous").dumps(payload))
    # tampered payloads and signatures
    head, _, signature = good.rpartition(".")
    tokens += [head + "." + signature[::-1], head + ".AAAA", good.upper(), good.lower(), good + "x",
               "x" + good, good.replace(".", "..", 1), good.replace(".", "", 1)]
    # truncated
    tokens += [good[:n] for n in (1, 5, 10, 20, 30, len(good) // 2, len(good) - 10, len(good) - 3, len(good) - 1)]
    # valid signature, wrong content
    serializer = URLSafeTimedSerializer(app.config["SECRET_KEY"], salt=f"egov-reach:{purpose}")
    tokens += [serializer.dumps(p) for p in (
        {"s": "no-such-subscriber", "n": "x"}, {"s": None}, {"s": 123}, {}, [], "text", None, 42,
        {"s": ["list"]}, {"x": subscriber.public_id},
    )]
    # cross-purpose: genuine tokens for the other purposes
    tokens += [make_token(other, payload) for other in PURPOSES if other != purpose]
    # garbage
    tokens += ["", " ", "null", "..", "a.b.c", "%00", "eyJ9", "ä", "<script>", "../../etc/passwd", "0" * 500]
    # expired (only the confirmation expires)
    if PURPOSES[purpose] is not None:
        import time
        from unittest import mock

        past = time.time() - PURPOSES[purpose].total_seconds() - 60
        with mock.patch("itsdangerous.timed.time.time", return_value=past):
            tokens.append(make_token(purpose, payload))
    tokens = [t for t in tokens if t.strip("/")]
    while len(tokens) < 50:
        tokens.append(good[: len(good) - len(tokens) - 2])
    return tokens


def snapshot():
    return all_stored_text()


def test_fifty_bad_tokens_on_every_token_route_answer_4xx_and_change_nothing(district, app, client, make_subscriber):
    from urllib.parse import quote

    subscriber = make_subscriber(status="pending")
    before = snapshot()
    for method, template, purpose in token_routes():
        tokens = bad_tokens(app, subscriber, purpose)
        assert len(tokens) >= 50
        for token in tokens:
            response = client.open(template.format(quote(token, safe="")), method=method,
                                   data={"List-Unsubscribe": "One-Click", "name": "Mallory", "municipality": "08115045"})
            assert 400 <= response.status_code < 500, (method, template, token, response.status_code)
    db.session.expire_all()
    assert snapshot() == before


def test_expired_confirmation_link_says_so(district, app, client, make_subscriber):
    import time
    from unittest import mock

    from subscribers.mail import confirm_token

    subscriber = make_subscriber(status="pending")
    with mock.patch("itsdangerous.timed.time.time", return_value=time.time() - 8 * 86400):
        token = confirm_token(subscriber)
    response = client.post(f"/confirm/{token}")
    assert response.status_code == 410
    assert "abgelaufen" in response.get_data(as_text=True)
    db.session.expire_all()
    assert one_subscriber().status == "pending"


def test_unsubscribe_links_never_expire(district, app, client, make_subscriber):
    import time
    from unittest import mock

    from subscribers.mail import unsubscribe_token

    subscriber = make_subscriber()
    with mock.patch("itsdangerous.timed.time.time", return_value=time.time() - 3 * 365 * 86400):
        token = unsubscribe_token(subscriber)
    assert client.post(f"/unsubscribe/{token}").status_code == 200
    db.session.expire_all()
    assert one_subscriber().status == "unsubscribed"


def test_mailto_unsubscribe_through_flask_inbound(district, smtp_app, smtp_server, run_jobs):
    from email.message import EmailMessage
    from urllib.parse import parse_qs, unquote, urlsplit

    client = smtp_app.test_client()
    subscriber, message = confirmed_subscriber(client, smtp_server, run_jobs)
    _, mailto = unsubscribe_urls(message)
    target = urlsplit(mailto[0])
    reply = EmailMessage()
    reply["From"] = "Lena Schmid <lena.schmid@sindelfingen.de>"
    reply["To"] = unquote(target.path)
    reply["Subject"] = parse_qs(target.query)["subject"][0]
    reply.set_content("")

    runner = smtp_app.test_cli_runner()
    forged = EmailMessage()
    forged["From"], forged["To"], forged["Subject"] = reply["From"], reply["To"], "unsubscribe eyJzIjoiZm9yZ2VkIn0.x.y"
    result = runner.invoke(args=["inbound"], input=forged.as_bytes())
    assert result.exit_code == 0
    db.session.expire_all()
    assert one_subscriber().status == "active"

    result = runner.invoke(args=["inbound"], input=reply.as_bytes())
    assert result.exit_code == 0, result.output
    assert "mailto_unsubscribe" in result.output
    db.session.expire_all()
    assert one_subscriber().status == "unsubscribed"


def test_public_pages_serve_coordinators_of_other_districts_too(district, client, make_subscriber, make_user, sign_in):
    subscriber = make_subscriber()
    sign_in(make_user("koordination@lra-es.de", districts=("08116",)))
    assert client.get("/d/08115/subscribe").status_code == 200
    assert client.get(manage_path(subscriber)).status_code == 200
    # …while the coordinator pages of that district stay closed to them.
    assert client.get("/d/08115/").status_code == 404
