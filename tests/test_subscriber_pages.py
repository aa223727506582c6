"""The coordinator pages of a district's subscriber list: list with search,
filters and paging, figures per status and municipality, add, edit,
unsubscribe, new confirmation mail, erasure, the person's data export,
topics, the embeddable form, and who may do what (404 across districts,
403 for viewers on writes, login for everyone)."""
import html
import json
import re
from html.parser import HTMLParser

import pytest
from sqlalchemy import func, select

from core.extensions import db
from core.queue import get_queue
from directory.models import District
from subscribers import services
from subscribers.models import Subscriber, Suppression, Topic, subscriber_topics
from tests.signin import sign_in_client

ROW = re.compile(r'<th scope="row" class="break"><a href="/d/08115/subscribers/(\d+)">([^<]+)</a>')
SNIPPET = re.compile(r'<textarea id="snippet"[^>]*>(.*?)</textarea>', re.S)


# --- helpers and fixtures ---------------------------------------------------------


def text(response):
    return response.get_data(as_text=True)


def signed_in(client, user):
    return sign_in_client(client, user)


def fresh(model, **by):
    """The row as the database has it now, not as this session remembers it."""
    db.session.rollback()
    return db.session.execute(select(model).filter_by(**by)).scalar_one_or_none()


def count(model, **by):
    db.session.rollback()
    return db.session.execute(select(func.count()).select_from(model).filter_by(**by)).scalar_one()


def listed(response):
    """Addresses in the list table, in order."""
    return [html.unescape(address) for _id, address in ROW.findall(text(response))]


def figure(response, label):
    match = re.search(rf"<dt>{re.escape(label)}</dt>\s*<dd>(\d+)</dd>", text(response))
    assert match, label
    return int(match.group(1))


def add_many(n, ags="08115003", prefix="person", status="active"):
    district = db.session.get(District, "08115")
    for i in range(n):
        services.add_subscriber(
            district, f"{prefix}{i:03d}@example.org", f"Person {i}", ags, source="admin",
            double_opt_in=status == "pending", consent_version="2026-11-de",
        )
    db.session.commit()


class LabelChecker(HTMLParser):
    """Every visible form control has a <label for> (or sits in a labelling element)."""

    def __init__(self):
        super().__init__()
        self.labels, self.controls = set(), []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "label" and attrs.get("for"):
            self.labels.add(attrs["for"])
        if tag in ("select", "textarea") or (
            tag == "input" and attrs.get("type", "text") not in ("hidden", "submit", "button")
        ):
            self.controls.append(attrs.get("id") or attrs.get("name"))

    def unlabelled(self):
        return [control for control in self.controls if control not in self.labels]


def unlabelled(markup):
    checker = LabelChecker()
    checker.feed(markup)
    return checker.unlabelled()


@pytest.fixture
def district(two_districts):
    return two_districts[0]


@pytest.fixture
def topics(district, make_topic):
    return {name: make_topic(name) for name in ("DMS", "OZG", "service-bw")}


@pytest.fixture
def coordinator(make_user, district):
    return make_user("koordination@lrabb.de", role="coordinator", districts=("08115",))


@pytest.fixture
def web(client, coordinator):
    return signed_in(client, coordinator)


@pytest.fixture
def anna(make_subscriber, topics):
    return make_subscriber("Anna.Beispiel@boeblingen.de", ags="08115003", name="Anna Beispiel",
                           topics=[topics["DMS"], topics["OZG"]], department="Hauptamt")


@pytest.fixture
def foreign(make_subscriber, make_topic, two_districts):
    """A subscriber and a topic of Esslingen (08116)."""
    topic = make_topic("E-Rechnung", "08116")
    subscriber = make_subscriber("eva@esslingen.de", district_key="08116", ags="08116019", name="Eva Fremd",
                                 topics=[topic])
    return subscriber, topic


# --- the list ------------------------------------------------------------------------


def test_list_shows_columns_counts_and_reach(web, anna, make_subscriber):
    make_subscriber("bernd@sindelfingen.de", ags="08115045", name="Bernd Muster", status="pending")
    make_subscriber("carla@boeblingen.de", ags="08115003", name="Carla", status="unsubscribed")
    response = web.get("/d/08115/subscribers")
    assert response.status_code == 200
    page = text(response)
    assert listed(response) == ["Anna.Beispiel@boeblingen.de", "bernd@sindelfingen.de", "carla@boeblingen.de"]
    assert "Anna Beispiel" in page and "Böblingen, Stadt" in page and "DMS, OZG" in page
    assert figure(response, "aktiv") == 1
    assert figure(response, "unbestätigt") == 1
    assert figure(response, "abgemeldet") == 1
    assert figure(response, "unzustellbar") == 0
    # Only active subscribers count: Sindelfingen's is pending.
    assert "1 von 2 Gemeinden im Verteiler (mit mindestens einem aktiven Abonnenten)" in page
    for path in ("/d/08115/subscribers/new", "/d/08115/topics", "/d/08115/subscribers/municipalities",
                 "/d/08115/subscribers/embed", "/d/08115/subscribers/import", "/d/08115/subscribers/export.csv"):
        assert f'href="{path}"' in page, path
    assert unlabelled(page) == []


def test_search_by_address_or_name(web, anna, make_subscriber):
    make_subscriber("bernd@sindelfingen.de", ags="08115045", name="Bernd Muster")
    assert listed(web.get("/d/08115/subscribers?q=SINDELF")) == ["bernd@sindelfingen.de"]
    assert listed(web.get("/d/08115/subscribers?q=beispiel")) == ["Anna.Beispiel@boeblingen.de"]
    assert listed(web.get("/d/08115/subscribers?q=muster")) == ["bernd@sindelfingen.de"]
    # LIKE wildcards are searched for literally.
    assert listed(web.get("/d/08115/subscribers?q=%25")) == []
    assert listed(web.get("/d/08115/subscribers?q=_")) == []


def test_filters_by_status_municipality_and_topic(web, anna, topics, make_subscriber):
    make_subscriber("bernd@sindelfingen.de", ags="08115045", name="Bernd", status="pending", topics=[topics["OZG"]])
    make_subscriber("carla@boeblingen.de", ags="08115003", name="Carla", status="bounced")
    everyone = ["Anna.Beispiel@boeblingen.de", "bernd@sindelfingen.de", "carla@boeblingen.de"]
    assert listed(web.get("/d/08115/subscribers?status=pending")) == ["bernd@sindelfingen.de"]
    assert listed(web.get("/d/08115/subscribers?municipality=08115003")) == [everyone[0], everyone[2]]
    assert listed(web.get(f"/d/08115/subscribers?topic={topics['OZG'].id}")) == everyone[:2]
    assert listed(web.get(f"/d/08115/subscribers?topic={topics['DMS'].id}&municipality=08115045")) == []
    assert listed(web.get(f"/d/08115/subscribers?topic={topics['service-bw'].id}")) == []
    page = text(web.get("/d/08115/subscribers?status=bounced"))
    assert '<option selected value="bounced">' in page
    assert "Alle Filter zurücksetzen" in page


@pytest.mark.parametrize("query", [
    "status=deleted", "municipality=08116019", "municipality=x'--", "topic=abc", "topic=99999",
    "topic=-1", "page=abc", "page=-5", "page=0", "page=99999999999999999999999999", "q=" + "x" * 5000,
])
def test_invalid_filters_are_ignored(web, anna, foreign, query):
    response = web.get("/d/08115/subscribers?" + query)
    assert response.status_code == 200
    if not query.startswith("q="):
        assert listed(response) == ["Anna.Beispiel@boeblingen.de"]


def test_topic_of_another_district_is_not_a_filter(web, anna, foreign):
    _subscriber, topic = foreign
    response = web.get(f"/d/08115/subscribers?topic={topic.id}")
    assert listed(response) == ["Anna.Beispiel@boeblingen.de"]
    assert "E-Rechnung" not in text(response)


def test_paging_50_per_page_keeps_the_filters(web, district):
    add_many(120)
    first = web.get("/d/08115/subscribers?status=active")
    assert len(listed(first)) == 50
    assert "Seite 1 von 3" in text(first)
    assert "120 Einträge" in text(first)
    assert 'href="/d/08115/subscribers?page=2&amp;status=active" rel="next"' in text(first)
    second = web.get("/d/08115/subscribers?page=2&status=active")
    third = web.get("/d/08115/subscribers?page=3&status=active")
    assert len(listed(second)) == 50 and len(listed(third)) == 20
    pages = listed(first) + listed(second) + listed(third)
    assert pages == sorted(pages) and len(set(pages)) == 120
    # Beyond the end: the last page, not an error.
    beyond = web.get("/d/08115/subscribers?page=7&status=active")
    assert beyond.status_code == 200 and listed(beyond) == listed(third)
    # A filter reduces the pages and stays in the links.
    assert "Seite" not in text(web.get("/d/08115/subscribers?q=person00"))
    searched = web.get("/d/08115/subscribers?q=person0")
    assert len(listed(searched)) == 50
    assert 'href="/d/08115/subscribers?page=2&amp;q=person0" rel="next"' in text(searched)
    assert len(listed(web.get("/d/08115/subscribers?q=person0&page=2"))) == 50


def test_counts_per_municipality_mark_the_unreached(web, anna, make_subscriber, foreign):
    make_subscriber("b@boeblingen.de", ags="08115003", name="B")
    make_subscriber("bernd@sindelfingen.de", ags="08115045", name="Bernd", status="pending")
    response = web.get("/d/08115/subscribers/municipalities")
    assert response.status_code == 200
    page = text(response)
    assert "1 von 2 Gemeinden im Verteiler (mit mindestens einem aktiven Abonnenten)" in page
    rows = re.findall(r'<tr( class="unreached")?>\s*<th scope="row">([^<]+)</th>\s*<td>(\d+)</td>\s*<td class="numeric">(.*?)</td>\s*<td>(.*?)</td>', page, re.S)
    by_name = {name: (marked, ags, re.sub(r"<[^>]+>", "", cell).strip(), reached) for marked, name, ags, cell, reached in rows}
    assert set(by_name) == {"Böblingen, Stadt", "Sindelfingen, Stadt"}
    assert by_name["Böblingen, Stadt"][1:3] == ("08115003", "2")
    assert by_name["Sindelfingen, Stadt"][2] == "0"
    # Marked in words, not only by colour.
    assert "nicht im Verteiler" in by_name["Sindelfingen, Stadt"][3]
    assert "nicht im Verteiler" not in by_name["Böblingen, Stadt"][3]
    assert "Esslingen" not in page
    from reach.services import listed_count

    assert listed_count("08115") == 1


# --- add --------------------------------------------------------------------------------


def new_form(**fields):
    data = {"email": "neu@boeblingen.de", "name": "Nina Neu", "municipality": "08115045", "department": "IT",
            "topics": [], "consent_mode": "double_opt_in"}
    data.update(fields)
    return data


def test_add_with_double_opt_in_sends_exactly_one_mail(district, topics, coordinator, smtp_app, smtp_server, run_jobs):
    client = signed_in(smtp_app.test_client(), coordinator)
    response = client.post("/d/08115/subscribers/new", data=new_form(topics=[str(topics["OZG"].id)]))
    assert response.status_code == 302, text(response)
    subscriber = fresh(Subscriber, email_key="neu@boeblingen.de")
    assert response.headers["Location"] == f"/d/08115/subscribers/{subscriber.id}"
    assert subscriber.status == "pending"
    assert subscriber.consent_source == "admin"
    assert subscriber.consent_text_version == "2026-11-de"
    assert subscriber.consent_requested_at is not None and subscriber.consent_confirmed_at is None
    assert subscriber.topic_names == ["OZG"] and subscriber.department == "IT"
    run_jobs()
    messages = smtp_server.wait_for(1)
    assert len(messages) == 1
    assert messages[0]["To"] == "neu@boeblingen.de"
    assert "/confirm/" in messages[0].get_body(("plain",)).get_content()
    assert fresh(Subscriber, id=subscriber.id).confirmation_sent_at is not None


def test_add_with_documented_consent_is_active_and_sends_nothing(district, coordinator, smtp_app, smtp_server, run_jobs):
    client = signed_in(smtp_app.test_client(), coordinator)
    # Without ticking that the consent is documented: refused, nothing stored.
    response = client.post("/d/08115/subscribers/new", data=new_form(consent_mode="documented"))
    assert response.status_code == 200
    assert "Bitte bestätigen Sie, dass die Einwilligung dokumentiert ist" in text(response)
    assert count(Subscriber) == 0
    response = client.post("/d/08115/subscribers/new", data=new_form(consent_mode="documented", consent_documented="y"))
    assert response.status_code == 302
    subscriber = fresh(Subscriber, email_key="neu@boeblingen.de")
    assert subscriber.status == "active" and subscriber.consent_source == "admin"
    assert subscriber.consent_confirmed_at is not None and subscriber.consent_text_version == ""
    run_jobs()
    assert smtp_server.messages == []


def test_add_form_is_labelled(web, topics):
    page = text(web.get("/d/08115/subscribers/new"))
    assert unlabelled(page) == []
    assert "Bestätigungsmail senden (Double-Opt-in)" in page and "Einwilligung liegt vor" in page
    assert "service-bw" in page and '<option value="08115045">' in page


def test_add_errors_change_nothing(web, anna, foreign):
    _subscriber, foreign_topic = foreign
    before = count(Subscriber)
    cases = [
        (new_form(email="ANNA.beispiel@boeblingen.de"), "email", "steht bereits in der Liste"),
        (new_form(email="keine-adresse"), "email", "Ungültige E-Mail-Adresse"),
        (new_form(municipality="08116019"), "municipality", "Unbekannte Gemeinde: 08116019"),
        (new_form(topics=[str(foreign_topic.id)]), "topics", "Unbekanntes Thema"),
        (new_form(email=""), "email", "Bitte geben Sie eine E-Mail-Adresse ein."),
    ]
    for data, field, message in cases:
        response = web.post("/d/08115/subscribers/new", data=data)
        assert response.status_code == 200
        # At the field, linked to it, and in the summary.
        assert re.search(rf'<p class="field-error" id="{field}-error">[^<]*{re.escape(message)}', text(response)), message
        assert f'aria-describedby="{field}-error"' in text(response)
        assert f'<a href="#{field}">' in text(response)
    assert count(Subscriber) == before


def test_suppressed_address_needs_double_opt_in(web, make_subscriber):
    make_subscriber("weg@boeblingen.de", status="erased")
    response = web.post("/d/08115/subscribers/new",
                        data=new_form(email="weg@boeblingen.de", consent_mode="documented", consent_documented="y"))
    assert "steht auf der Sperrliste" in text(response)
    assert count(Subscriber) == 0
    response = web.post("/d/08115/subscribers/new", data=new_form(email="weg@boeblingen.de"))
    assert response.status_code == 302
    assert fresh(Subscriber, email_key="weg@boeblingen.de").status == "pending"


# --- detail and edit -----------------------------------------------------------------


def test_detail_shows_data_and_consent_record(web, anna):
    response = web.get(f"/d/08115/subscribers/{anna.id}")
    assert response.status_code == 200
    page = text(response)
    for expected in ("Anna.Beispiel@boeblingen.de", "Anna Beispiel", "Hauptamt", "DMS, OZG", "Böblingen, Stadt (08115003)",
                     "Koordination", "2026-11-de", "Angefragt am", "Bestätigt am", "Bestätigungsmail verschickt am"):
        assert expected in page, expected
    assert unlabelled(page) == []


def test_edit_changes_the_details(web, anna, topics):
    response = web.post(f"/d/08115/subscribers/{anna.id}", data={
        "email": "anna@sindelfingen.de", "name": "Anna Neu", "municipality": "08115045", "department": "",
        "topics": [str(topics["service-bw"].id)],
    })
    assert response.status_code == 302
    changed = fresh(Subscriber, id=anna.id)
    assert (changed.email, changed.email_key, changed.name, changed.municipality_ags, changed.department) == (
        "anna@sindelfingen.de", "anna@sindelfingen.de", "Anna Neu", "08115045", "")
    assert changed.topic_names == ["service-bw"]
    assert changed.status == "active"


def test_edit_to_a_taken_address_changes_nothing(web, anna, make_subscriber):
    make_subscriber("bernd@sindelfingen.de", ags="08115045", name="Bernd")
    response = web.post(f"/d/08115/subscribers/{anna.id}", data={
        "email": "Bernd@Sindelfingen.de", "name": "Anders", "municipality": "08115045", "topics": [],
    })
    assert response.status_code == 200
    assert "steht bereits in der Liste" in text(response)
    unchanged = fresh(Subscriber, id=anna.id)
    assert (unchanged.email, unchanged.name, unchanged.municipality_ags) == (
        "Anna.Beispiel@boeblingen.de", "Anna Beispiel", "08115003")
    assert unchanged.topic_names == ["DMS", "OZG"]


# --- unsubscribe, new confirmation mail, erase, export ------------------------------


def test_unsubscribe(web, anna):
    response = web.post(f"/d/08115/subscribers/{anna.id}/unsubscribe")
    assert response.status_code == 302
    assert fresh(Subscriber, id=anna.id).status == "unsubscribed"
    suppression = fresh(Suppression, district_key="08115")
    assert suppression.reason == "unsubscribed"
    assert suppression.address_hash == services.address_hash("anna.beispiel@boeblingen.de")
    # Again: nothing changes, and it says so.
    response = web.post(f"/d/08115/subscribers/{anna.id}/unsubscribe", follow_redirects=True)
    assert "stand schon nicht mehr auf der Liste" in text(response)
    assert count(Suppression) == 1


def test_resend_restarts_the_opt_in_and_mails_once(district, coordinator, make_subscriber, smtp_app, smtp_server, run_jobs):
    subscriber = make_subscriber("weg@boeblingen.de", status="unsubscribed")
    client = signed_in(smtp_app.test_client(), coordinator)
    response = client.post(f"/d/08115/subscribers/{subscriber.id}/resend", follow_redirects=True)
    assert "Eine neue Bestätigungsmail an weg@boeblingen.de wird verschickt." in text(response)
    pending = fresh(Subscriber, id=subscriber.id)
    assert pending.status == "pending" and pending.confirm_nonce and pending.consent_source == "admin"
    run_jobs()
    assert len(smtp_server.wait_for(1)) == 1
    assert smtp_server.messages[0]["To"] == "weg@boeblingen.de"


def test_resend_refuses_active_addresses_and_the_daily_limit(app, web, anna, make_subscriber):
    response = web.post(f"/d/08115/subscribers/{anna.id}/resend", follow_redirects=True)
    assert "Die Adresse ist bereits bestätigt." in text(response)
    assert fresh(Subscriber, id=anna.id).status == "active"
    assert get_queue().count == 0
    app.config["CONFIRMATION_MAIL_LIMIT"] = "1 per day"
    pending = make_subscriber("p@boeblingen.de", status="pending")
    assert web.post(f"/d/08115/subscribers/{pending.id}/resend").status_code == 302
    nonce = fresh(Subscriber, id=pending.id).confirm_nonce
    response = web.post(f"/d/08115/subscribers/{pending.id}/resend", follow_redirects=True)
    assert "heute schon genug Bestätigungsmails" in text(response)
    assert fresh(Subscriber, id=pending.id).confirm_nonce == nonce


def test_erase_after_confirmation(web, anna):
    page = web.get(f"/d/08115/subscribers/{anna.id}/erase")
    assert page.status_code == 200
    assert "Das kann nicht rückgängig gemacht werden." in text(page)
    assert count(Subscriber) == 1  # the GET changed nothing
    response = web.post(f"/d/08115/subscribers/{anna.id}/erase")
    assert response.status_code == 302
    assert response.headers["Location"] == "/d/08115/subscribers"
    assert count(Subscriber) == 0
    assert db.session.execute(select(func.count()).select_from(subscriber_topics)).scalar_one() == 0
    suppression = fresh(Suppression, district_key="08115")
    assert suppression.reason == "erased"
    assert suppression.address_hash == services.address_hash("anna.beispiel@boeblingen.de")
    listing = web.get("/d/08115/subscribers")
    assert "Die Daten der Person wurden gelöscht." in text(listing)
    assert "beispiel" not in text(listing).lower()


def test_person_export_is_a_json_download(web, anna):
    response = web.get(f"/d/08115/subscribers/{anna.id}/export.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.headers["Content-Disposition"] == f'attachment; filename="abonnent-08115-{anna.id}.json"'
    assert response.headers["Cache-Control"] == "no-store"
    data = json.loads(response.get_data())
    assert data["subscriber"]["email"] == "Anna.Beispiel@boeblingen.de"
    assert data["subscriber"]["municipality"] == {"ags": "08115003", "name": "Böblingen, Stadt"}
    assert data["subscriber"]["topics"] == ["DMS", "OZG"]
    assert data["consent"]["source"] == "admin"
    assert data["consent"]["confirmed_at"]


# --- topics ----------------------------------------------------------------------------


def test_topics_list_create_rename_delete(web, anna, topics, make_subscriber):
    make_subscriber("p@boeblingen.de", status="pending", topics=[topics["DMS"]])
    page = web.get("/d/08115/topics")
    assert page.status_code == 200
    row = re.search(r">DMS</a></th>\s*<td class=\"numeric\">(\d+)</td>\s*<td class=\"numeric\">(\d+)</td>", text(page))
    assert row.groups() == ("1", "2")  # one active, two in all
    assert unlabelled(text(page)) == []

    response = web.post("/d/08115/topics", data={"name": "  E-Akte  "})
    assert response.status_code == 302
    assert fresh(Topic, district_key="08115", name="E-Akte") is not None

    response = web.post("/d/08115/topics", data={"name": "dms"})
    assert response.status_code == 400
    assert "Das Thema „dms“ gibt es bereits." in text(response)
    assert count(Topic, district_key="08115") == 4

    ozg = topics["OZG"].id
    response = web.post(f"/d/08115/topics/{ozg}", data={"name": "Onlinezugangsgesetz"})
    assert response.status_code == 302
    assert fresh(Topic, id=ozg).name == "Onlinezugangsgesetz"
    response = web.post(f"/d/08115/topics/{ozg}", data={"name": "DMS"})
    assert response.status_code == 400
    assert "Das Thema „DMS“ gibt es bereits." in text(response)
    assert f'aria-describedby="topic-{ozg}-error"' in text(response)
    assert fresh(Topic, id=ozg).name == "Onlinezugangsgesetz"

    dms = topics["DMS"].id
    confirm = web.get(f"/d/08115/topics/{dms}/delete")
    assert "2 Abonnenten haben dieses Thema gewählt." in text(confirm)
    assert fresh(Topic, id=dms) is not None
    assert web.post(f"/d/08115/topics/{dms}/delete").status_code == 302
    assert fresh(Topic, id=dms) is None
    # Anna keeps her other topic and her subscription.
    kept = fresh(Subscriber, id=anna.id)
    assert kept.topic_names == ["Onlinezugangsgesetz"] and kept.status == "active"


# --- the embeddable form --------------------------------------------------------------


def snippet_of(response):
    match = SNIPPET.search(text(response))
    assert match
    return html.unescape(match.group(1))


class FormFields(HTMLParser):
    def __init__(self):
        super().__init__()
        self.form, self.inputs, self.options, self.hidden_div = None, [], [], None
        self._div_depth = 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.form = attrs
        elif tag == "div":
            self._div_depth += 1
            if attrs.get("style") == "display:none":
                self.hidden_div = {"attrs": attrs, "depth": self._div_depth, "inputs": []}
        elif tag in ("input", "select"):
            attrs["tag"] = tag
            self.inputs.append(attrs)
            if self.hidden_div and self.hidden_div["depth"] == self._div_depth:
                self.hidden_div["inputs"].append(attrs)
        elif tag == "option":
            self.options.append(attrs.get("value"))

    def handle_endtag(self, tag):
        if tag == "div":
            if self.hidden_div and self.hidden_div["depth"] == self._div_depth:
                self.hidden_div["depth"] = None
            self._div_depth -= 1


def test_embed_page_shows_url_and_a_working_snippet(web, topics, coordinator, make_app):
    response = web.get("/d/08115/subscribers/embed")
    assert response.status_code == 200
    page = text(response)
    assert "http://localhost/d/08115/subscribe" in page
    assert unlabelled(page) == []
    snippet = snippet_of(response)
    assert unlabelled(snippet) == []
    fields = FormFields()
    fields.feed(snippet)
    assert fields.form["method"] == "post" and fields.form["action"] == "http://localhost/d/08115/subscribe"
    names = {field["name"] for field in fields.inputs}
    assert names == {"email", "name", "municipality", "topics", "consent", "website"}
    assert {f["value"] for f in fields.inputs if f["name"] == "topics"} == {str(t.id) for t in topics.values()}
    assert [f["value"] for f in fields.inputs if f["name"] == "consent"] == ["1"]
    assert fields.options == ["", "08115003", "08115045"]
    honeypot = fields.hidden_div
    assert honeypot["attrs"]["aria-hidden"] == "true"
    assert [(f["name"], f["tabindex"], f["autocomplete"], f["value"]) for f in honeypot["inputs"]] == [
        ("website", "-1", "off", "")]
    assert "Ich möchte den E-Government-Newsletter meines Kreises" in snippet
    # The snippet is German even when the coordinator reads the pages in English.
    with web.session_transaction() as session:
        session["lang"] = "en"
    assert snippet_of(web.get("/d/08115/subscribers/embed")) == snippet

    # Posted from another site, as the snippet's fields, without a session: a pending subscriber.
    stranger = make_app(WTF_CSRF_ENABLED=True).test_client()
    response = stranger.post("/d/08115/subscribe", data={
        "email": "von.aussen@sindelfingen.de", "name": "Von Außen", "municipality": "08115045",
        "topics": [str(topics["DMS"].id)], "consent": "1", "website": "",
    })
    assert response.status_code == 302, text(response)
    subscriber = fresh(Subscriber, email_key="von.aussen@sindelfingen.de")
    assert subscriber.status == "pending" and subscriber.consent_source == "form"
    assert subscriber.topic_names == ["DMS"]


# --- who may do what --------------------------------------------------------------------


def routes(key, subscriber_id, topic_id, only_rows=False):
    """(method, path) of every page of this module; `only_rows`: those of one subscriber or topic."""
    s, t = f"/d/{key}/subscribers/{subscriber_id}", f"/d/{key}/topics/{topic_id}"
    pages = [
        ("GET", f"/d/{key}/subscribers"),
        ("GET", f"/d/{key}/subscribers/municipalities"),
        ("GET", f"/d/{key}/subscribers/new"),
        ("POST", f"/d/{key}/subscribers/new"),
        ("GET", f"/d/{key}/subscribers/embed"),
        ("GET", s),
        ("POST", s),
        ("POST", s + "/unsubscribe"),
        ("POST", s + "/resend"),
        ("GET", s + "/erase"),
        ("POST", s + "/erase"),
        ("GET", s + "/export.json"),
        ("GET", f"/d/{key}/topics"),
        ("POST", f"/d/{key}/topics"),
        ("POST", t),
        ("GET", t + "/delete"),
        ("POST", t + "/delete"),
    ]
    if only_rows:
        return [(method, path) for method, path in pages if path.startswith((s, t))]
    return pages



def is_write(method, path):
    return method == "POST" or any(path.endswith(part) for part in ("/new", "/erase", "/export.json", "/delete"))


def snapshot():
    db.session.rollback()
    subscribers = db.session.execute(
        select(Subscriber.id, Subscriber.email, Subscriber.name, Subscriber.status, Subscriber.confirm_nonce)
        .order_by(Subscriber.id)
    ).all()
    topics = db.session.execute(select(Topic.id, Topic.name).order_by(Topic.id)).all()
    return subscribers, topics, count(Suppression)


def hostile_data():
    return {"email": "x@example.org", "name": "X", "municipality": "08115003", "consent_mode": "documented",
            "consent_documented": "y", "topics": []}


def test_coordinator_of_another_district_gets_404_everywhere(client, anna, topics, make_user, foreign):
    esslingen_subscriber, esslingen_topic = foreign
    other = signed_in(client, make_user("koordination@lra-es.de", role="coordinator", districts=("08116",)))
    before = snapshot()
    # Böblingen's key in the URL.
    for method, path in routes("08115", anna.id, topics["DMS"].id):
        response = other.open(path, method=method, data=hostile_data())
        assert response.status_code == 404, (method, path)
    # Böblingen's subscriber and topic under the own key.
    own_key = routes("08116", anna.id, topics["DMS"].id, only_rows=True)
    assert len(own_key) == 10
    for method, path in own_key:
        response = other.open(path, method=method, data=hostile_data())
        assert response.status_code == 404, (method, path)
    assert snapshot() == before
    # The own district's pages work, and show nothing of Böblingen.
    page = text(other.get("/d/08116/subscribers"))
    assert "eva@esslingen.de" in page and "Anna" not in page
    assert other.get(f"/d/08116/subscribers/{esslingen_subscriber.id}").status_code == 200
    assert ">DMS</a>" not in text(other.get("/d/08116/topics"))
    assert f">{esslingen_topic.name}</a>" in text(other.get("/d/08116/topics"))


def test_even_an_admin_reaches_a_subscriber_only_under_its_own_district(client, anna, topics, make_user, foreign):
    admin = signed_in(client, make_user("admin@lrabb.de", role="admin", districts=()))
    before = snapshot()
    for method, path in routes("08116", anna.id, topics["DMS"].id, only_rows=True):
        assert admin.open(path, method=method, data=hostile_data()).status_code == 404, (method, path)
    assert snapshot() == before
    assert admin.get(f"/d/08115/subscribers/{anna.id}").status_code == 200


# Pages a viewer opens: figures and the embeddable form, no person in them.
VIEWER_PAGES = ("/subscribers/municipalities", "/subscribers/embed", "/topics")


def test_viewer_sees_figures_only_and_gets_403_on_people_and_writes(client, anna, topics, make_user):
    viewer = signed_in(client, make_user("lesen@lrabb.de", role="viewer", districts=("08115",)))
    before = snapshot()
    for method, path in routes("08115", anna.id, topics["DMS"].id):
        response = viewer.open(path, method=method, data=hostile_data())
        expected = 200 if method == "GET" and path.endswith(VIEWER_PAGES) else 403
        assert response.status_code == expected, (method, path)
        if expected == 200:
            page = text(response).lower()
            assert "anna.beispiel@boeblingen.de" not in page and "anna beispiel" not in page, path
            assert 'href="/d/08115/subscribers"' not in page and 'href="/d/08115/subscribers?' not in page, path
    assert viewer.get("/d/08115/subscribers/export.csv").status_code == 403
    assert snapshot() == before
    dashboard = text(viewer.get("/d/08115/"))
    assert 'href="/d/08115/subscribers"' not in dashboard
    assert 'href="/d/08115/subscribers/municipalities"' in dashboard


def test_anonymous_visitors_are_sent_to_login(client, anna, topics):
    before = snapshot()
    for method, path in routes("08115", anna.id, topics["DMS"].id):
        response = client.open(path, method=method, data=hostile_data())
        assert response.status_code == 302, (method, path)
        assert response.headers["Location"].startswith("/login"), (method, path)
    assert snapshot() == before
