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


def test_coordinator_cannot_read_the_outbox(app, web, make_user, two_districts):
    send_message(invitation())
    stem = only_stem(app)
    web.sign_in(make_user())
    for path in ("/admin/outbox", f"/admin/outbox/{stem}", f"/admin/outbox/{stem}.eml", f"/admin/outbox/{stem}/html"):
        assert web.get(path).status_code == 403, path


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
