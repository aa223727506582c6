"""The mail outbox: what core.mail writes without MAIL_SERVER, read back by admins."""
import email
import email.policy
import os
import re

import pytest
from flask_mail import Message

from core import outbox
from core.mail import send_message
from tests.signin import sign_in_client

ICS = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\n"
    "UID:1@test\r\nDTSTAMP:20261121T090000Z\r\nDTSTART:20261121T100000Z\r\nSUMMARY:Sprechstunde\r\n"
    "END:VEVENT\r\nEND:VCALENDAR\r\n"
)


@pytest.fixture
def web(client, sign_in):
    client.sign_in = sign_in
    return client


@pytest.fixture
def admin(app, make_user):
    return make_user("admin@lrabb.de", role="admin", districts=())


def invitation(subject="Einladung: Sprechstunde E-Akte"):
    message = Message(
        subject=subject,
        sender="E-Government-Koordination <noreply@lrabb.de>",
        recipients=["hauptamt@boeblingen.de"],
        body="Guten Tag,\n\nwir laden Sie zur Sprechstunde ein.\n",
        html='<p>Guten Tag,</p><p>wir laden Sie <strong>herzlich</strong> ein.</p><script>alert(1)</script>',
    )
    message.attach("einladung.ics", "text/calendar", ICS.encode())
    return message


def only_stem(app):
    names = os.listdir(app.config["OUTBOX_DIR"])
    assert len(names) == 1, names
    return names[0][: -len(".eml")]


def test_sent_mail_lands_in_the_outbox_and_is_listed(app, web, admin):
    send_message(invitation())
    stem = only_stem(app)
    assert outbox.is_valid_stem(stem)  # the reader accepts exactly what the writer writes
    web.sign_in(admin)
    response = web.get("/admin/outbox")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert f'href="/admin/outbox/{stem}"' in page
    assert "Einladung: Sprechstunde E-Akte" in page
    assert "hauptamt@boeblingen.de" in page
    assert "Es ist kein Mailserver eingerichtet" in page


def test_message_page_shows_headers_text_html_frame_and_attachment(app, web, admin):
    send_message(invitation())
    stem = only_stem(app)
    web.sign_in(admin)
    page = web.get(f"/admin/outbox/{stem}").get_data(as_text=True)
    assert "<h1 class=\"break\">Einladung: Sprechstunde E-Akte</h1>" in page
    assert '<pre class="mail-text">Guten Tag,\n\nwir laden Sie zur Sprechstunde ein.\n</pre>' in page
    assert re.search(rf'<iframe class="mail-frame" sandbox="" src="/admin/outbox/{stem}/html"', page)
    assert "<script>" not in page  # the HTML part is only inside the frame
    assert f'href="/admin/outbox/{stem}/attachments/0"' in page and "einladung.ics" in page
    assert "text/calendar" in page
    assert '<th scope="row" class="nowrap">Message-ID</th>' in page
    assert f'href="/admin/outbox/{stem}.eml"' in page


def test_html_part_is_served_with_a_restrictive_policy(app, web, admin):
    send_message(invitation())
    stem = only_stem(app)
    web.sign_in(admin)
    response = web.get(f"/admin/outbox/{stem}/html")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    assert "<strong>herzlich</strong>" in response.get_data(as_text=True)
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "img-src data:" in policy and "style-src 'unsafe-inline'" in policy
    assert "script-src" not in policy  # falls back to default-src 'none'
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_downloads_of_message_and_attachment(app, web, admin):
    send_message(invitation())
    stem = only_stem(app)
    web.sign_in(admin)
    response = web.get(f"/admin/outbox/{stem}.eml")
    assert response.status_code == 200
    assert response.mimetype == "message/rfc822"
    assert response.headers["Content-Disposition"] == f"attachment; filename={stem}.eml"
    parsed = email.message_from_bytes(response.data, policy=email.policy.default)
    assert parsed["Subject"] == "Einladung: Sprechstunde E-Akte"

    response = web.get(f"/admin/outbox/{stem}/attachments/0")
    assert response.status_code == 200
    assert response.mimetype == "text/calendar"
    assert response.headers["Content-Disposition"] == "attachment; filename=einladung.ics"
    assert response.data.decode() == ICS
    assert web.get(f"/admin/outbox/{stem}/attachments/1").status_code == 404


def test_plain_message_without_html_or_attachments(app, web, admin):
    send_message(Message("Nur Text", sender="a@lrabb.de", recipients=["b@lrabb.de"], body="Hallo Welt"))
    stem = only_stem(app)
    web.sign_in(admin)
    page = web.get(f"/admin/outbox/{stem}").get_data(as_text=True)
    assert "Hallo Welt" in page and "<iframe" not in page and "Keine Anhänge." in page
    assert web.get(f"/admin/outbox/{stem}/html").status_code == 404


def test_list_is_newest_first_and_paged(app, web, admin):
    directory = app.config["OUTBOX_DIR"]
    os.makedirs(directory)
    for minute in range(55):
        stem = f"20261121T10{minute:02d}00000000Z-{minute:012x}"
        with open(os.path.join(directory, stem + ".eml"), "wb") as fh:
            fh.write(f"Subject: Nachricht {minute}\r\nFrom: a@b.de\r\nTo: c@d.de\r\n\r\nText\r\n".encode())
    web.sign_in(admin)
    first = web.get("/admin/outbox").get_data(as_text=True)
    subjects = re.findall(r">Nachricht (\d+)</a>", first)
    assert subjects == [str(m) for m in range(54, 4, -1)]
    assert "Seite 1 von 2" in first and "?page=2" in first
    second = web.get("/admin/outbox?page=2").get_data(as_text=True)
    assert re.findall(r">Nachricht (\d+)</a>", second) == ["4", "3", "2", "1", "0"]
    assert web.get("/admin/outbox?page=3").status_code == 404
    assert web.get("/admin/outbox?page=0").status_code == 404


def test_empty_outbox(app, web, admin):
    web.sign_in(admin)
    page = web.get("/admin/outbox").get_data(as_text=True)
    assert "Der Postausgang ist leer." in page


def test_broken_message_does_not_give_a_server_error(app, web, admin):
    directory = app.config["OUTBOX_DIR"]
    os.makedirs(directory)
    stem = "20261121T100000000000Z-0123456789ab"
    broken = (
        b"Subject: =?x-unknown?Q?kaputt?= \xff\xfe\r\n"
        b"From: <<<@@@>>>\r\nTo: \"unclosed\r\nDate: not a date\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n"
        b"--b\r\nContent-Type: text/plain; charset=x-no-such-charset\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        b"!!!not base64!!!\r\n"
        b"--b\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
        b"<p>=ZZ kaputt \xff</p>\r\n"
        b"--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"../../etc/passwd\"\r\n\r\n"
        b"%PDF\r\n--b"  # no closing boundary
    )
    with open(os.path.join(directory, stem + ".eml"), "wb") as fh:
        fh.write(broken)
    web.sign_in(admin)
    assert web.get("/admin/outbox").status_code == 200
    page = web.get(f"/admin/outbox/{stem}")
    assert page.status_code == 200
    assert web.get(f"/admin/outbox/{stem}/html").status_code == 200
    response = web.get(f"/admin/outbox/{stem}/attachments/0")
    assert response.status_code == 200
    assert response.headers["Content-Disposition"] == "attachment; filename=passwd"


@pytest.mark.parametrize(
    "path",
    [
        "/admin/outbox/..%2Fsecret_key",
        "/admin/outbox/..%2Fsecret_key.eml",
        "/admin/outbox/%2E%2E/html",
        "/admin/outbox/nothing-here",
        "/admin/outbox/20261121T100000000000Z-0123456789ab",  # well-formed, absent
        "/admin/outbox/20261121T100000000000Z-0123456789AB",  # upper-case hex is not ours
        "/admin/outbox/20261121T100000000000Z-0123456789ab.eml",
        "/admin/outbox/20261121T100000000000Z-0123456789ab/attachments/0",
        "/admin/outbox/.20261121T100000000000Z-0123456789ab.eml",  # a half-written file
    ],
)
def test_unknown_or_malformed_names_are_404(app, web, admin, path):
    directory = app.config["OUTBOX_DIR"]
    os.makedirs(directory)
    # Bait: files a traversal or a loose pattern would reach.
    with open(os.path.join(directory, ".20261121T100000000000Z-0123456789ab.eml.tmp"), "wb") as fh:
        fh.write(b"Subject: half\r\n\r\n")
    with open(os.path.join(directory, "20261121T100000000000Z-0123456789AB.eml"), "wb") as fh:
        fh.write(b"Subject: upper\r\n\r\n")
    web.sign_in(admin)
    assert web.get(path).status_code == 404


def test_reader_rejects_names_outside_the_pattern(tmp_path):
    (tmp_path / "secret_key").write_text("s3cret")
    assert outbox.load_message(str(tmp_path), "../secret_key") is None
    assert outbox.message_path(str(tmp_path), "secret_key") is None
    assert outbox.message_path(str(tmp_path), "20261121T100000000000Z-0123456789ab\n") is None
    assert outbox.list_stems(str(tmp_path)) == []
    assert outbox.list_stems(str(tmp_path / "missing")) == []


def test_anonymous_visitor_is_sent_to_login(app, web):
    response = web.get("/admin/outbox")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")


def test_coordinator_can_not_open_a_message_that_names_no_district(app, web, make_user, two_districts):
    send_message(invitation())  # built by hand: no X-EGov-District, like files from before it
    stem = only_stem(app)
    web.sign_in(make_user())
    assert "Der Postausgang ist leer." in web.get("/admin/outbox").get_data(as_text=True)
    for path in (f"/admin/outbox/{stem}", f"/admin/outbox/{stem}.eml", f"/admin/outbox/{stem}/html",
                 f"/admin/outbox/{stem}/attachments/0"):
        assert web.get(path).status_code == 404, path


def test_with_mail_server_mail_goes_to_smtp_not_the_outbox(smtp_app, smtp_server):
    # No `app`-based fixtures here: they would push a second app, without MAIL_SERVER.
    from accounts.services import create_user
    from core.extensions import db

    send_message(invitation("Über SMTP"))
    received = smtp_server.wait_for(1)
    assert len(received) == 1
    message = received[0]
    assert message["Subject"] == "Über SMTP"
    assert message.get_body(preferencelist=("plain",)).get_content().startswith("Guten Tag,")
    assert [part.get_filename() for part in message.iter_attachments()] == ["einladung.ics"]
    assert outbox.list_stems(smtp_app.config["OUTBOX_DIR"]) == []

    web = smtp_app.test_client()
    admin, _ = create_user("admin@lrabb.de", "admin")
    db.session.commit()
    sign_in_client(web, admin)
    page = web.get("/admin/outbox").get_data(as_text=True)
    assert "Mails gehen an den Mailserver 127.0.0.1" in page
    assert "Der Postausgang ist leer." in page



# --- kinds, districts, search and scope ------------------------------------------------------------
#
# Every mail below goes through the service's own code: the newsletter's send
# jobs, its test send, the event's invitation job and the public sign-up form's
# confirmation job, all into the file outbox of the `app` fixture.

OLD_FILE = "20200101T090000000000Z-00000000a1d0"
# (recipient, X-EGov-Kind, X-EGov-District) of every mail `mail_world` sends.
SENT = {
    ("anna.beispiel@boeblingen.de", "newsletter", "08115"),
    ("anna.beispiel@boeblingen.de", "invitation", "08115"),
    ("test.versand@lrabb.de", "test", "08115"),
    ("lena.schmid@sindelfingen.de", "confirmation", "08115"),
    ("emil@esslingen.de", "newsletter", "08116"),
    ("alt@example.org", None, None),
}


@pytest.fixture
def mail_world(app, client, two_districts, make_subscriber, make_event, run_jobs):
    """One mail of each kind for Böblingen (08115), a newsletter for Esslingen (08116), one old file.

    Returns {(recipient, kind): stem}.
    """
    from core.extensions import db
    from directory.models import District
    from events import jobs as event_jobs
    from events import services as event_services
    from newsletter import jobs as newsletter_jobs
    from newsletter import services as newsletter_services

    make_subscriber("anna.beispiel@boeblingen.de", "08115", ags="08115003", name="Anna Beispiel")
    make_subscriber("emil@esslingen.de", "08116", ags="08116019", name="Emil Esslinger")
    for key, subject in (("08115", "Neues aus dem Kreis"), ("08116", "Esslinger Neuigkeiten")):
        newsletter = newsletter_services.create_newsletter(db.session.get(District, key), subject, "Hallo {{ name }}!")
        db.session.commit()
        newsletter_services.send_now(newsletter)
        db.session.commit()
        newsletter_jobs.enqueue_senders(newsletter.id)
        if key == "08115":
            newsletter_services.send_test(newsletter, ["Test.Versand@lrabb.de"])
    event = make_event("08115")
    assert event_services.invite(event) == 1
    db.session.commit()
    event_jobs.enqueue_senders(event.id)
    response = client.post("/d/08115/subscribe", data={
        "email": "lena.schmid@sindelfingen.de", "name": "Lena Schmid", "municipality": "08115045", "consent": "1"})
    assert response.status_code == 302
    run_jobs()
    with open(os.path.join(app.config["OUTBOX_DIR"], OLD_FILE + ".eml"), "wb") as fh:
        fh.write(b"Subject: Alte Mail\r\nFrom: dienst@lrabb.de\r\nTo: alt@example.org\r\n"
                 b"Date: Wed, 01 Jan 2020 09:00:00 +0000\r\n\r\nText\r\n")
    found = stored(app)
    assert set(found) == SENT
    return {(recipient, kind): stem for (recipient, kind, _district), stem in found.items()}


def stored(app):
    """{(recipient, kind header, district header): stem} of every file in the outbox, read as a mail client does."""
    found = {}
    directory = app.config["OUTBOX_DIR"]
    for stem in outbox.list_stems(directory):
        with open(os.path.join(directory, stem + ".eml"), "rb") as fh:
            message = email.message_from_binary_file(fh, policy=email.policy.default)
        recipient = message["To"].addresses[0].addr_spec.lower()
        key = (recipient, message["X-EGov-Kind"], message["X-EGov-District"])
        assert key not in found, key
        found[key] = stem
    return found


ROW = re.compile(r'<td class="break">([^<]*)</td>\s*<td class="nowrap" data-kind="([a-z]+)">([^<]+)</td>\s*<td>([^<]+)</td>')


def rows(page):
    """(recipient, kind, kind label, district) of each row of an outbox page, in order."""
    return [(re.search(r"[\w.+-]+@[\w.-]+", to).group(0).lower(), kind, label, district)
            for to, kind, label, district in ROW.findall(page)]


def recipients_and_kinds(page):
    return sorted((to, kind) for to, kind, _label, _district in rows(page))


def test_admin_sees_every_message_with_its_kind_and_district(app, web, admin, mail_world):
    web.sign_in(admin)
    page = web.get("/admin/outbox").get_data(as_text=True)
    assert "6 Nachrichten, die neuesten zuerst." in page
    assert sorted(rows(page)) == [
        ("alt@example.org", "unknown", "unbekannt", "ohne Angabe"),
        ("anna.beispiel@boeblingen.de", "invitation", "Veranstaltung", "Landkreis Böblingen"),
        ("anna.beispiel@boeblingen.de", "newsletter", "Newsletter", "Landkreis Böblingen"),
        ("emil@esslingen.de", "newsletter", "Newsletter", "Landkreis Esslingen"),
        ("lena.schmid@sindelfingen.de", "confirmation", "Abo-Bestätigung", "Landkreis Böblingen"),
        ("test.versand@lrabb.de", "test", "Testversand", "Landkreis Böblingen"),
    ]
    detail = web.get(f"/admin/outbox/{mail_world['emil@esslingen.de', 'newsletter']}").get_data(as_text=True)
    assert "<dd>Newsletter</dd>" in detail and "<dd>Landkreis Esslingen</dd>" in detail
    assert web.get(f"/admin/outbox/{OLD_FILE}").status_code == 200
    assert web.get(f"/admin/outbox/{OLD_FILE}.eml").status_code == 200


@pytest.mark.parametrize("kind, expected", [
    ("newsletter", [("anna.beispiel@boeblingen.de", "newsletter"), ("emil@esslingen.de", "newsletter")]),
    ("test", [("test.versand@lrabb.de", "test")]),
    ("invitation", [("anna.beispiel@boeblingen.de", "invitation")]),
    ("confirmation", [("lena.schmid@sindelfingen.de", "confirmation")]),
    ("unknown", [("alt@example.org", "unknown")]),
])
def test_filter_by_kind(web, admin, mail_world, kind, expected):
    web.sign_in(admin)
    page = web.get(f"/admin/outbox?kind={kind}").get_data(as_text=True)
    assert recipients_and_kinds(page) == expected
    assert re.search(rf'<option selected value="{kind}">|<option value="{kind}" selected>', page)


def test_search_by_recipient_and_subject_ignores_case(web, admin, mail_world):
    web.sign_in(admin)
    page = web.get("/admin/outbox", query_string={"recipient": "ANNA.Beispiel@"}).get_data(as_text=True)
    assert recipients_and_kinds(page) == [("anna.beispiel@boeblingen.de", "invitation"),
                                          ("anna.beispiel@boeblingen.de", "newsletter")]
    assert "2 Nachrichten passen, die neuesten zuerst." in page
    page = web.get("/admin/outbox", query_string={"subject": "neues AUS dem"}).get_data(as_text=True)
    assert recipients_and_kinds(page) == [("anna.beispiel@boeblingen.de", "newsletter"),
                                          ("test.versand@lrabb.de", "test")]  # "[TEST] Neues aus dem Kreis"
    page = web.get("/admin/outbox", query_string={"subject": "einladung"}).get_data(as_text=True)
    assert recipients_and_kinds(page) == [("anna.beispiel@boeblingen.de", "invitation")]
    page = web.get("/admin/outbox", query_string={"subject": "Bestätigen Sie"}).get_data(as_text=True)
    assert recipients_and_kinds(page) == [("lena.schmid@sindelfingen.de", "confirmation")]
    # Both fields and the kind together narrow down.
    page = web.get("/admin/outbox", query_string={"recipient": "anna", "subject": "neues", "kind": "newsletter"})
    assert recipients_and_kinds(page.get_data(as_text=True)) == [("anna.beispiel@boeblingen.de", "newsletter")]
    page = web.get("/admin/outbox", query_string={"recipient": "niemand"}).get_data(as_text=True)
    assert rows(page) == [] and "Keine Nachricht passt zu Suche und Filter." in page


def test_the_search_form_is_labelled_and_keeps_its_values(web, admin, mail_world):
    web.sign_in(admin)
    page = web.get("/admin/outbox", query_string={"recipient": "anna", "kind": "test"}).get_data(as_text=True)
    form = re.search(r'<form method="get" action="/admin/outbox".*?</form>', page, re.S).group(0)
    for name in ("recipient", "subject", "kind"):
        assert re.search(rf'<label for="{name}">', form), name
    assert 'name="recipient"' in form and 'value="anna"' in form
    assert 'aria-describedby="kind-hint"' in form
    assert 'href="/admin/outbox">Alle Filter zurücksetzen' in form


@pytest.mark.parametrize("key, visible", [
    ("08115", {("anna.beispiel@boeblingen.de", "newsletter"), ("anna.beispiel@boeblingen.de", "invitation"),
               ("test.versand@lrabb.de", "test"), ("lena.schmid@sindelfingen.de", "confirmation")}),
    ("08116", {("emil@esslingen.de", "newsletter")}),
])
def test_a_coordinator_sees_and_opens_only_their_districts_messages(app, web, make_user, mail_world, key, visible):
    web.sign_in(make_user(f"koordination-{key}@lrabb.de", districts=(key,)))
    page = web.get("/admin/outbox").get_data(as_text=True)
    assert set(recipients_and_kinds(page)) == visible
    assert '<option value="unknown">' not in page  # old mail is the admins' alone
    for (recipient, kind), stem in mail_world.items():
        paths = (f"/admin/outbox/{stem}", f"/admin/outbox/{stem}.eml", f"/admin/outbox/{stem}/html",
                 f"/admin/outbox/{stem}/attachments/0")
        if (recipient, kind) in visible:
            assert web.get(paths[0]).status_code == 200
            assert web.get(paths[1]).status_code == 200
        else:
            for path in paths:
                assert web.get(path).status_code == 404, (recipient, kind, path)
        # A search can not find what the scope hides.
        found = web.get("/admin/outbox", query_string={"recipient": recipient}).get_data(as_text=True)
        assert ((recipient, kind) in set(recipients_and_kinds(found))) == ((recipient, kind) in visible)


def test_the_invitations_calendar_opens_for_its_district_only(app, web, admin, make_user, mail_world):
    stem = mail_world["anna.beispiel@boeblingen.de", "invitation"]
    path = f"/admin/outbox/{stem}/attachments/1"  # 0 is the iMIP part, 1 the file
    web.sign_in(admin)
    response = web.get(path)
    assert response.mimetype == "application/ics" and b"BEGIN:VCALENDAR" in response.data
    web.sign_in(make_user(districts=("08115",)))
    assert web.get(path).status_code == 200
    web.sign_in(make_user("koordination@lra-es.de", districts=("08116",)))
    assert web.get(path).status_code == 404


@pytest.mark.parametrize("districts", [(), ("08115",)])
def test_viewers_see_no_mail(app, web, make_user, mail_world, districts):
    web.sign_in(make_user("viewer@im.bwl.de", role="viewer", districts=districts))
    stem = mail_world["anna.beispiel@boeblingen.de", "invitation"]
    for path in ("/admin/outbox", "/admin/outbox?kind=newsletter", f"/admin/outbox/{stem}",
                 f"/admin/outbox/{stem}.eml", f"/admin/outbox/{stem}/html", f"/admin/outbox/{stem}/attachments/0"):
        assert web.get(path).status_code == 403, path
    nav = re.search(r'<nav class="site-nav".*?</nav>', web.get("/reichweite").get_data(as_text=True), re.S).group(0)
    assert "/admin/outbox" not in nav


UNKNOWN_KIND_NOTE = "Diese Art gibt es nicht; es werden Mails jeder Art gezeigt."


@pytest.mark.parametrize("query, status, note", [
    ({"kind": "spam"}, 200, UNKNOWN_KIND_NOTE),
    ({"kind": "unknown<script>"}, 200, UNKNOWN_KIND_NOTE),
    ({"recipient": "a" * 201}, 200, "Höchstens 200 Zeichen; ohne dieses Feld gesucht."),
    ({"subject": "b" * 5000}, 200, "Höchstens 200 Zeichen; ohne dieses Feld gesucht."),
    ({"page": "zwei"}, 200, None),
    ({"page": "-1e9", "kind": "test"}, 200, None),
    ("recipient=%ff%fe&subject=%C3", 200, None),  # bytes that are not UTF-8
    ("kind=test&kind=newsletter", 200, None),
    ("recipient=a%00b", 400, "unzulässiges Zeichen (NUL)"),  # refused for every route (core/errors.py)
])
def test_malformed_parameters_show_a_clear_page(web, admin, mail_world, query, status, note):
    web.sign_in(admin)
    response = web.get("/admin/outbox", query_string=query)
    assert response.status_code == status
    page = response.get_data(as_text=True)
    assert "<script>" not in page
    if status == 200 and note is not None:
        found = re.search(r'<p class="field-error" id="(\w+)-error">([^<]*)</p>', page)
        assert found and note in found.group(2)
        assert len(rows(page)) == 6  # the bad value is left out, not applied
    elif note is not None:
        assert note in page


def test_a_page_beyond_the_filtered_list_is_404_not_500(web, admin, mail_world):
    web.sign_in(admin)
    assert web.get("/admin/outbox?kind=test&page=2").status_code == 404
    assert web.get("/admin/outbox?kind=test&page=99999999999999999999999").status_code == 404


def test_paging_keeps_the_filters(app, web, admin):
    directory = app.config["OUTBOX_DIR"]
    os.makedirs(directory)
    for minute in range(60):
        kind = "newsletter" if minute % 2 else "confirmation"
        stem = f"20261121T10{minute:02d}00000000Z-{minute:012x}"
        with open(os.path.join(directory, stem + ".eml"), "wb") as fh:
            fh.write(f"Subject: Nachricht {minute}\r\nFrom: a@b.de\r\nTo: c{minute}@d.de\r\n"
                     f"X-EGov-Kind: {kind}\r\nX-EGov-District: 08115\r\n\r\nText\r\n".encode())
    web.sign_in(admin)
    first = web.get("/admin/outbox?kind=confirmation&subject=nachricht").get_data(as_text=True)
    assert "30 Nachrichten passen" in first and "Seite 1 von 1" not in first
    assert re.findall(r">Nachricht (\d+)</a>", first) == [str(m) for m in range(58, -1, -2)]
    # More than a page: 50 newsletters and confirmations, then the pager carries the filter.
    many = web.get("/admin/outbox?subject=Nachricht").get_data(as_text=True)
    assert "Seite 1 von 2" in many
    link = re.search(r'href="([^"]+)" rel="next"', many).group(1).replace("&amp;", "&")
    assert "subject=Nachricht" in link and "page=2" in link
    second = web.get(link).get_data(as_text=True)
    assert re.findall(r">Nachricht (\d+)</a>", second) == [str(m) for m in range(9, -1, -1)]
    previous = re.search(r'href="([^"]+)" rel="prev"', second).group(1)
    assert "subject=Nachricht" in previous and "page=1" in previous


def test_a_summary_is_read_again_when_its_file_changes(tmp_path):
    stem = "20261121T100000000000Z-0123456789ab"
    path = tmp_path / f"{stem}.eml"
    path.write_bytes(b"Subject: Erste Fassung\r\nX-EGov-Kind: test\r\nX-EGov-District: 08115\r\n\r\nText\r\n")
    first = outbox.summarize(str(tmp_path), stem)
    assert (first.subject, first.kind, first.district_key) == ("Erste Fassung", "test", "08115")
    assert outbox.summarize(str(tmp_path), stem) is first  # from the cache
    path.write_bytes(b"Subject: Zweite, laengere Fassung\r\nX-EGov-Kind: bogus\r\nX-EGov-District: ../x\r\n\r\nT\r\n")
    os.utime(path, ns=(1, 2))
    second = outbox.summarize(str(tmp_path), stem)
    assert (second.subject, second.kind, second.district_key) == ("Zweite, laengere Fassung", "unknown", "")
    path.unlink()
    assert outbox.summarize(str(tmp_path), stem) is None


def test_only_the_header_block_is_read():
    import io

    head = b"Subject: Gross\r\nX-EGov-Kind: newsletter\r\n\r\n"
    source = io.BytesIO(head + b"A" * 10_000_000)
    assert outbox.read_header_block(source) == head
    assert source.tell() <= 8192
    lf = io.BytesIO(b"Subject: LF\nTo: a@b.de\n\nBody\n\nMore\n")
    assert outbox.read_header_block(lf) == b"Subject: LF\nTo: a@b.de\n\n"
    # A separator split across two reads is found as well.
    split = io.BytesIO(b"S: " + b"x" * 8187 + b"\r\n\r\nBody")
    assert outbox.read_header_block(split) == b"S: " + b"x" * 8187 + b"\r\n\r\n"
    endless = io.BytesIO(b"X-Long: " + b"y" * 1_000_000)
    assert len(outbox.read_header_block(endless)) == outbox.MAX_HEADER_BYTES


def test_navigation_links_coordinators_to_the_outbox_only_while_it_is_used(app, web, make_user, two_districts):
    web.sign_in(make_user())
    nav = re.search(r'<nav class="site-nav".*?</nav>', web.get("/d/08115/").get_data(as_text=True), re.S).group(0)
    assert '<a href="/admin/outbox">Postausgang</a>' in nav


def test_with_a_mail_server_coordinators_get_no_outbox_link(smtp_app):
    from accounts.services import create_user
    from core.extensions import db
    from directory.models import District

    db.session.add(District(key="08115", name="Böblingen", kind="Landkreis"))
    user, _ = create_user("koordination@lrabb.de", "coordinator", district_keys=["08115"])
    db.session.commit()
    web = sign_in_client(smtp_app.test_client(), user)
    nav = re.search(r'<nav class="site-nav".*?</nav>', web.get("/d/08115/").get_data(as_text=True), re.S).group(0)
    assert "/admin/outbox" not in nav
    # The page itself still answers: it explains that the outbox is not in use.
    assert "der Postausgang wird nicht benutzt" in web.get("/admin/outbox").get_data(as_text=True)
