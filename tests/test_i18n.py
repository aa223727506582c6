"""The English catalog: complete for the current code, compiled, true to the
placeholders, and actually used by the pages once a person switches language.

German is the source language, so only English has a catalog. When a test
here fails after a code change, refresh the catalog with the commands at the
top of babel.cfg.
"""
import re
from datetime import date, datetime, timezone
from html.parser import HTMLParser
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po
from flask import render_template_string

from core.extensions import db

ROOT = Path(__file__).resolve().parents[1]
PO_PATH = ROOT / "translations" / "en" / "LC_MESSAGES" / "messages.po"
MO_PATH = PO_PATH.with_suffix(".mo")

# Every %-token, including %% and positional ones: a stray "%" in a
# translation breaks the formatting as surely as a renamed placeholder.
PERCENT_TOKEN = re.compile(r"%(?:\([^)]*\))?[-#0 +]*\d*(?:\.\d+)?[a-zA-Z%]")


# --- the catalog files -------------------------------------------------------


@pytest.fixture(scope="module")
def po_catalog():
    with PO_PATH.open("rb") as fh:
        return read_po(fh, locale="en")


@pytest.fixture(scope="module")
def mo_catalog():
    with MO_PATH.open("rb") as fh:
        return read_mo(fh)


@pytest.fixture(scope="module")
def extracted():
    """{(msgid, context): ids} for every message in the code, found as `pybabel extract -F babel.cfg` finds them."""
    with (ROOT / "babel.cfg").open() as fh:
        method_map, options_map = parse_mapping_cfg(fh, filename="babel.cfg")
    messages = {}
    for filename, lineno, message, _comments, context in extract_from_dir(str(ROOT), method_map, options_map):
        ids = (message,) if isinstance(message, str) else tuple(message)
        messages.setdefault((ids[0], context), (ids, f"{filename}:{lineno}"))
    return messages


def strings(message):
    """The translation(s) of a catalog message as a tuple."""
    return (message.string,) if isinstance(message.string, str) else tuple(message.string)


def ids(message):
    return (message.id,) if isinstance(message.id, str) else tuple(message.id)


def key(message):
    """The catalog key: the msgid, or the singular of a plural message."""
    return ids(message)[0]


def translated(catalog):
    """The messages a compiled catalog holds: pybabel compile drops fuzzy and empty ones."""
    return [message for message in catalog if message.id and not message.fuzzy and all(strings(message))]


def test_extraction_finds_code_and_templates_but_not_tests(extracted):
    places = {where.split(":")[0].replace("\\", "/") for _ids, where in extracted.values()}
    assert any(place.startswith("templates/") for place in places)
    assert any(place.startswith("accounts/") for place in places)
    # lazy_gettext, its alias _l, and ngettext in a template are keywords too.
    assert ("Landkreis", None) in extracted
    assert ("Bitte geben Sie Ihr Passwort ein.", None) in extracted
    assert extracted[("Sie sehen %(num)d Kreis.", None)][0] == ("Sie sehen %(num)d Kreis.", "Sie sehen %(num)d Kreise.")
    assert not [place for place in places if place.startswith(("tests/", "migrations/", "bench/", ".venv/"))]


def test_every_message_in_the_code_has_an_english_translation(extracted, po_catalog):
    missing = []
    by_id = sorted(extracted.items(), key=lambda item: (str(item[0][0]), item[0][1] or ""))
    for (msgid, context), (message_ids, where) in by_id:
        entry = po_catalog.get(msgid, context=context)
        if (
            entry is None
            or entry.fuzzy
            or ids(entry) != message_ids
            or not all(text.strip() for text in strings(entry))
        ):
            missing.append(f"{where}: {msgid!r}")
    assert not missing, "Untranslated (refresh as described in babel.cfg):\n" + "\n".join(missing)


def test_catalog_header_is_not_fuzzy(po_catalog):
    # pybabel compile skips a catalog whose header is fuzzy, silently.
    assert not po_catalog.fuzzy
    assert po_catalog.num_plurals == 2


def test_compiled_catalog_matches_the_po_file(po_catalog, mo_catalog):
    stale = []
    for message in translated(po_catalog):
        compiled = mo_catalog.get(key(message), context=message.context)
        if compiled is None or strings(compiled) != strings(message):
            stale.append(repr(message.id))
    extra = {key(message) for message in mo_catalog if message.id} - {key(message) for message in translated(po_catalog)}
    assert not stale and not extra, (
        "messages.mo is out of date; run `pybabel compile -d translations`:\n" + "\n".join(stale + sorted(map(repr, extra)))
    )


def test_placeholders_match_the_german_source(po_catalog):
    wrong = []
    for message in translated(po_catalog):
        sources = ids(message)
        for index, text in enumerate(strings(message)):
            # English has two plural forms: msgstr[0] mirrors the singular, msgstr[1] the plural.
            source = sources[min(index, len(sources) - 1)]
            if sorted(PERCENT_TOKEN.findall(source)) != sorted(PERCENT_TOKEN.findall(text)):
                wrong.append(f"{source!r} -> {text!r}")
    assert not wrong, "Placeholders differ:\n" + "\n".join(wrong)


def test_placeholder_check_catches_a_renamed_placeholder():
    assert sorted(PERCENT_TOKEN.findall("Konto %(email)s")) != sorted(PERCENT_TOKEN.findall("Account %(mail)s"))
    assert sorted(PERCENT_TOKEN.findall("%(n)d Zeichen")) != sorted(PERCENT_TOKEN.findall("%(n)s characters"))
    assert sorted(PERCENT_TOKEN.findall("Fertig")) != sorted(PERCENT_TOKEN.findall("100% done"))


# --- the pages in English -----------------------------------------------------


class _Texts(HTMLParser):
    """Text nodes and the human-readable attributes of a page."""

    READABLE = {"aria-label", "title", "placeholder", "alt"}

    def __init__(self):
        super().__init__()
        self.texts = set()
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self._skip += 1
        self.texts.update(value.strip() for name, value in attrs if name in self.READABLE and value)

    def handle_endtag(self, tag):
        if tag in ("script", "style"):
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip and data.strip():
            self.texts.add(" ".join(data.split()))


def german_leftovers(html, catalog):
    """German catalog strings standing alone in an English page."""
    parser = _Texts()
    parser.feed(html)
    german = {
        message.id: message.string
        for message in translated(catalog)
        if isinstance(message.id, str) and "%" not in message.id and message.string != message.id
    }
    return sorted(text for text in parser.texts if text in german)


@pytest.fixture
def english(client):
    def switch(next_path="/"):
        response = client.post("/language", data={"lang": "en", "next": next_path})
        assert response.status_code == 302
        assert response.headers["Location"].endswith(next_path)
        return client

    return switch


@pytest.fixture
def boeblingen(make_district):
    return make_district(municipalities=[("08115003", "Böblingen, Stadt"), ("08115045", "Sindelfingen, Stadt")])


def test_dashboard_is_german_by_default_and_english_after_switching(boeblingen, make_user, sign_in, english, po_catalog):
    client = sign_in(make_user())

    page = client.get("/d/08115/").get_data(as_text=True)
    assert '<html lang="de">' in page
    assert "Kreisschlüssel 08115" in page
    assert "Gemeinden im Kreis Böblingen" in page

    english("/d/08115/")
    response = client.get("/d/08115/")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert '<html lang="en">' in page
    assert "Rural district · District key 08115" in page
    assert "Municipalities in the district of Böblingen" in page
    assert "Sindelfingen, Stadt" in page
    assert german_leftovers(page, po_catalog) == []


def test_language_stays_english_for_the_next_requests(two_districts, make_user, sign_in, english, po_catalog):
    client = sign_in(make_user(districts=("08115", "08116")))
    english("/districts")
    for path in ("/districts", "/account/password", "/d/08116/"):
        page = client.get(path).get_data(as_text=True)
        assert '<html lang="en">' in page, path
        assert german_leftovers(page, po_catalog) == [], path
    page = client.get("/districts").get_data(as_text=True)
    assert "You can see 2 districts." in page
    assert "Rural district" in page


def test_login_page_and_its_errors_in_english(client, english, po_catalog):
    english("/login")
    page = client.get("/login").get_data(as_text=True)
    assert '<html lang="en">' in page
    assert "Email address" in page and "Password" in page
    assert german_leftovers(page, po_catalog) == []

    page = client.post("/login", data={"email": "", "password": ""}).get_data(as_text=True)
    assert "Please enter your email address." in page
    assert "Please enter your password." in page
    assert german_leftovers(page, po_catalog) == []


def test_login_prompt_in_english(client, english):
    # Flask-Login flashes a lazy string; it must be resolved in the visitor's language.
    english("/login")
    response = client.get("/districts", follow_redirects=True)
    page = response.get_data(as_text=True)
    assert response.request.path == "/login"
    assert "Please log in." in page and "Bitte melden" not in page


def test_switching_back_to_german(client, english):
    english("/login")
    client.post("/language", data={"lang": "de", "next": "/login"})
    page = client.get("/login").get_data(as_text=True)
    assert '<html lang="de">' in page and "E-Mail-Adresse" in page


def test_unknown_language_changes_nothing(client, english):
    english("/login")
    client.post("/language", data={"lang": "fr", "next": "/login"})
    assert '<html lang="en">' in client.get("/login").get_data(as_text=True)


def test_admin_pages_and_404_in_english(boeblingen, make_user, sign_in, english, po_catalog):
    admin = make_user("admin@example.org", role="admin", districts=())
    coordinator = make_user(districts=("08115",))
    client = sign_in(admin)
    english("/admin/users")

    page = client.get("/admin/users").get_data(as_text=True)
    assert "User accounts" in page and "Coordinator" in page and "Administrator" in page
    assert german_leftovers(page, po_catalog) == []

    for path in (f"/admin/users/{coordinator.id}", "/admin/users/new", "/districts"):
        page = client.get(path).get_data(as_text=True)
        assert german_leftovers(page, po_catalog) == [], path

    response = client.get("/no-such-page")
    page = response.get_data(as_text=True)
    assert response.status_code == 404
    assert "Page not found" in page and "Error 404" in page
    assert german_leftovers(page, po_catalog) == []


def test_outbox_in_english(app, make_user, sign_in, english, po_catalog):
    from core.mail import Message, send_message

    send_message(Message(subject="Hallo", sender="dienst@example.org", recipients=["a@example.org"], body="Text"))
    client = sign_in(make_user("admin@example.org", role="admin", districts=()))
    english("/admin/outbox")

    page = client.get("/admin/outbox").get_data(as_text=True)
    assert "1 message, newest first." in page and "Subject" in page
    assert german_leftovers(page, po_catalog) == []

    stem = re.search(r'href="/admin/outbox/([^"/]+)"', page).group(1)
    page = client.get(f"/admin/outbox/{stem}").get_data(as_text=True)
    assert "Plain-text version" in page
    assert german_leftovers(page, po_catalog) == []


def test_leftover_check_finds_german_text(po_catalog):
    assert german_leftovers("<p>Seite nicht gefunden</p><a aria-label='Abmelden'>x</a>", po_catalog) == [
        "Abmelden",
        "Seite nicht gefunden",
    ]


# --- dates ----------------------------------------------------------------------


@pytest.mark.parametrize("lang, expected", [
    ("de", "21.11.2026 22.11.2026 00:30 | 22.11.2026 00:30"),
    ("en", "21 Nov 2026 22 Nov 2026 00:30 | 22 Nov 2026, 00:30"),
])
def test_dates_follow_the_language_in_berlin_time(app, lang, expected):
    # German 21.11.2026; English 21 Nov 2026 (no German words, day first); 24-hour Berlin time in both.
    moment = datetime(2026, 11, 21, 23, 30, tzinfo=timezone.utc)
    with app.test_request_context("/"):
        from flask import session
        from flask_babel import get_locale, refresh

        session["lang"] = lang
        refresh()
        assert str(get_locale()) == lang
        rendered = render_template_string(
            "{{ day|date }} {{ moment|date }} {{ moment|time }} | {{ moment|datetime }}", day=date(2026, 11, 21),
            moment=moment,
        )
    assert rendered == expected


def test_dates_on_an_english_page(boeblingen, make_user, sign_in, english):
    admin = make_user("admin@example.org", role="admin", districts=())
    coordinator = make_user()
    coordinator.created_at = datetime(2026, 11, 21, 9, 0, tzinfo=timezone.utc)
    coordinator.last_login_at = datetime(2026, 11, 21, 13, 5, tzinfo=timezone.utc)
    db.session.commit()
    client = sign_in(admin)
    english("/admin/users")
    page = client.get(f"/admin/users/{coordinator.id}").get_data(as_text=True)
    assert "Created on 21 Nov 2026." in page
    assert "Last login: 21 Nov 2026, 14:05." in page


def test_registering_for_an_event_is_not_logging_in(client, two_districts, make_event, english, po_catalog):
    # One German word, two meanings: "Anmelden" on the events page is registering (pgettext).
    event = make_event(title="E-Rechnung kompakt")
    page = client.get("/d/08115/veranstaltungen").get_data(as_text=True)
    assert ">Anmelden</a>" in page
    english("/d/08115/veranstaltungen")
    page = client.get("/d/08115/veranstaltungen").get_data(as_text=True)
    assert ">Register</a>" in page and "Log in</a>" not in page.split("<main", 1)[1]
    assert 'aria-label="Register: E-Rechnung kompakt"' in page  # the visible text starts the accessible name
    form = client.get(f"/d/08115/events/{event.id}/anmelden").get_data(as_text=True)
    assert "<h2>Register</h2>" in form
    login = client.get("/login").get_data(as_text=True)
    assert "<h1>Log in</h1>" in login


def test_district_names_are_declined(client, make_district, make_event, english):
    make_district(municipalities=[("08115003", "Böblingen, Stadt")])
    make_district(key="08111", name="Stuttgart", kind="Stadtkreis", municipalities=[("08111000", "Stuttgart")])
    for key, phrase, english_phrase in (("08115", "des Landkreises Böblingen", "of the rural district of Böblingen"),
                                        ("08111", "des Stadtkreises Stuttgart", "of the urban district of Stuttgart")):
        event = make_event(district_key=key, title="Sprechstunde DMS")
        page = client.get(f"/d/{key}/events/{event.id}/anmelden").get_data(as_text=True)
        assert phrase in page and "des Landkreis " not in page and "des Stadtkreis " not in page
        english(f"/d/{key}/veranstaltungen")
        assert english_phrase in client.get(f"/d/{key}/events/{event.id}/anmelden").get_data(as_text=True)
        client.post("/language", data={"lang": "de", "next": "/"})


def test_dates_and_times_follow_the_language(client, two_districts, make_event, english):
    event = make_event(title="E-Rechnung kompakt")  # a Thursday, 09:00–12:00 in Berlin
    page = client.get("/d/08115/veranstaltungen").get_data(as_text=True)
    assert re.search(r"Donnerstag, \d\d\.\d\d\.\d{4}, 09:00–12:00 Uhr", page)
    english("/d/08115/veranstaltungen")
    page = client.get("/d/08115/veranstaltungen").get_data(as_text=True)
    assert re.search(r"Thursday, \d{1,2} [A-Z][a-z]{2} \d{4}, 09:00–12:00", page), page
    assert "Donnerstag" not in page and " Uhr" not in page
    form = client.get(f"/d/08115/events/{event.id}/anmelden").get_data(as_text=True)
    assert "Thursday" in form and "Donnerstag" not in form


def test_unsubscribing_is_not_logging_out(client, two_districts, make_subscriber, english, po_catalog):
    # "Abmelden" leaves a newsletter (pgettext "Abonnement") or the service; English needs two words.
    from core.tokens import make_token

    subscriber = make_subscriber()
    path = "/unsubscribe/" + make_token("subscriber-unsubscribe", {"s": subscriber.public_id})
    assert "<title>Abmelden" in client.get(path).get_data(as_text=True)
    english("/d/08115/veranstaltungen")
    page = client.get(path).get_data(as_text=True)
    assert "<title>Unsubscribe" in page and "Log out" not in page


def test_a_declined_answer_is_not_a_cancelled_event(app, english):
    from flask_babel import force_locale

    from events.labels import PARTSTAT_LABELS, REGISTRATION_LABELS, STATUS_LABELS

    with app.test_request_context(), force_locale("en"):
        assert str(REGISTRATION_LABELS["declined"]) == str(PARTSTAT_LABELS["DECLINED"]) == "declined"
        assert str(STATUS_LABELS["cancelled"]) == "cancelled"
    with app.test_request_context(), force_locale("de"):
        assert str(REGISTRATION_LABELS["declined"]) == str(STATUS_LABELS["cancelled"]) == "abgesagt"
