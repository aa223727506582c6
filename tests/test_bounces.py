"""Bounces and complaints coming back for newsletter mail: by stdin and over LMTP."""
import os
import re
import signal
import smtplib
import subprocess
import sys
import time
from email.message import EmailMessage, Message
from email.mime.base import MIMEBase
from email.mime.message import MIMEMessage
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from pathlib import Path

import pytest
from sqlalchemy import select

from core.extensions import db
from core.inbound import handle_message, start_lmtp
from newsletter.models import Delivery, Newsletter
from subscribers.models import Suppression, utcnow
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[1]
ANNA = "anna.beispiel@boeblingen.de"


@pytest.fixture
def sent(two_districts, make_subscriber):
    """A sent newsletter and a function making a sent delivery with a given Message-ID."""
    newsletter = Newsletter(district_key="08115", subject="Newsletter März", status="sent")
    db.session.add(newsletter)
    db.session.commit()

    def deliver(message_id, email=ANNA, subscriber=None):
        subscriber = subscriber or make_subscriber(email=email)
        delivery = Delivery(
            newsletter_id=newsletter.id, subscriber_id=subscriber.id, district_key="08115",
            municipality_ags=subscriber.municipality_ags, status="sent", attempts=1, smtp_reply="250",
            message_id=message_id, sent_at=utcnow(),
        )
        db.session.add(delivery)
        db.session.commit()
        return delivery

    return deliver


def reload(row):
    db.session.expire_all()
    return db.session.get(type(row), row.id)


def suppressions():
    return db.session.execute(select(Suppression.reason)).scalars().all()


# --- samples, as the MTAs send them ----------------------------------------------


UNKNOWN_USER = "smtp; 550 5.1.1 <{rcpt}>: Recipient address\n    rejected: User unknown in virtual mailbox table"


def postfix_dsn(message_id, recipient=ANNA, action="failed", status="5.1.1", diagnostic=UNKNOWN_USER):
    """Postfix's bounce (or, with action=delayed, its delay warning), returning the original's headers."""
    diagnostic = diagnostic.replace("{rcpt}", recipient)
    subject = "Delayed Mail (still being retried)" if action == "delayed" else "Undelivered Mail Returned to Sender"
    return f"""\
Return-Path: <>
Delivered-To: inbound@lrabb.de
Received: by mail.lrabb.de (Postfix)
\tid 4Xyz1234; Tue, 10 Mar 2026 09:12:03 +0100 (CET)
Date: Tue, 10 Mar 2026 09:12:03 +0100 (CET)
From: MAILER-DAEMON@mail.lrabb.de (Mail Delivery System)
Subject: {subject}
To: inbound@lrabb.de
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
\tboundary="4Xyz1234.1773130323/mail.lrabb.de"
Content-Transfer-Encoding: 8bit
Message-Id: <20260310081203.4Xyz1234@mail.lrabb.de>

This is a MIME-encapsulated message.

--4Xyz1234.1773130323/mail.lrabb.de
Content-Description: Notification
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

This is the mail system at host mail.lrabb.de.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients. It's attached below.

                   The mail system

<{recipient}>: host mx.boeblingen.de[192.0.2.25] said: {diagnostic}

--4Xyz1234.1773130323/mail.lrabb.de
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mail.lrabb.de
X-Postfix-Queue-ID: 4Xyz1234
X-Postfix-Sender: rfc822; inbound@lrabb.de
Arrival-Date: Tue, 10 Mar 2026 09:12:02 +0100 (CET)

Final-Recipient: rfc822; {recipient}
Original-Recipient: rfc822;{recipient}
Action: {action}
Status: {status}
Remote-MTA: dns; mx.boeblingen.de
Diagnostic-Code: {diagnostic}

--4Xyz1234.1773130323/mail.lrabb.de
Content-Description: Undelivered Message Headers
Content-Type: text/rfc822-headers
Content-Transfer-Encoding: 8bit

Return-Path: <inbound@lrabb.de>
Received: from worker1.lrabb.de (worker1.lrabb.de [192.0.2.10])
\tby mail.lrabb.de (Postfix) with ESMTP id 4Xyz1234
\tfor <{recipient}>; Tue, 10 Mar 2026 09:12:02 +0100 (CET)
Message-ID: {message_id}
Date: Tue, 10 Mar 2026 08:12:01 +0000
From: =?utf-8?q?Landratsamt_B=C3=B6blingen?= <newsletter@lrabb.de>
To: {recipient}
Subject: =?utf-8?q?Newsletter_M=C3=A4rz?=
List-Id: <08115.newsletter.lrabb.de>

--4Xyz1234.1773130323/mail.lrabb.de--
""".encode()


def original_newsletter(message_id, recipient=ANNA):
    original = EmailMessage()
    original["From"] = "Landratsamt Böblingen <newsletter@lrabb.de>"
    original["To"] = recipient
    original["Subject"] = "Newsletter März"
    original["Message-ID"] = message_id
    original.set_content("Liebe Frau Beispiel, …")
    return original


def fields(**values):
    block = Message()
    for name, value in values.items():
        block[name.replace("_", "-")] = value
    return block


NOT_FOUND = "smtp;550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup"


def exchange_ndr(message_id, final_recipient=ANNA, status="5.1.10", diagnostic=NOT_FOUND):
    """Exchange Online's non-delivery report: German text and HTML, the status part, the whole original."""
    report = MIMEMultipart("report", report_type="delivery-status")
    report["From"] = "Microsoft Outlook <postmaster@boeblingen.onmicrosoft.com>"
    report["To"] = "<inbound@lrabb.de>"
    report["Subject"] = "Unzustellbar: Newsletter März"
    report["Message-ID"] = "<0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0@AM0PR01MB1234.eurprd01.prod.exchangelabs.com>"
    report["Auto-Submitted"] = "auto-replied"
    report["X-MS-Exchange-Message-Is-Ndr"] = ""
    text = MIMEMultipart("alternative")
    text.attach(MIMEText("Ihre Nachricht hat anna.beispiel@boeblingen.de nicht erreicht.\n"
                         "Diagnoseinformationen für Administratoren:\nGenerierender Server: AM0PR01MB1234\n"
                         f"{final_recipient}\nRemote server returned '550 {status} RESOLVER.ADR.RecipientNotFound'",
                         "plain", "utf-8"))
    text.attach(MIMEText("<html><body><p>Ihre Nachricht hat <b>Anna Beispiel</b> nicht erreicht.</p></body></html>",
                         "html", "utf-8"))
    report.attach(text)
    status_part = MIMEBase("message", "delivery-status")
    status_part.attach(fields(Reporting_MTA="dns;AM0PR01MB1234.eurprd01.prod.exchangelabs.com",
                              Received_From_MTA="dns;mail.lrabb.de",
                              Arrival_Date="Tue, 10 Mar 2026 08:12:02 +0000"))
    status_part.attach(fields(Final_recipient=f"RFC822;{final_recipient}", Action="failed", Status=status,
                              Diagnostic_Code=diagnostic, X_Display_Name="Anna Beispiel"))
    report.attach(status_part)
    report.attach(MIMEMessage(original_newsletter(message_id)))
    return report.as_bytes()


def exim_bounce(message_id, recipient=ANNA):
    """Exim's bounce without a status part: X-Failed-Recipients and the original quoted in the text."""
    return f"""\
Return-path: <>
From: Mail Delivery System <Mailer-Daemon@mx.lrabb.de>
To: inbound@lrabb.de
Subject: Mail delivery failed: returning message to sender
Message-Id: <E1tAbCd-000123-Xy@mx.lrabb.de>
X-Failed-Recipients: {recipient}
Auto-Submitted: auto-replied
Date: Tue, 10 Mar 2026 09:12:03 +0100

This message was created automatically by mail delivery software.

A message that you sent could not be delivered to one or more of its
recipients. This is a permanent error. The following address(es) failed:

  {recipient}
    host mx.boeblingen.de [192.0.2.25]
    SMTP error from remote mail server after RCPT TO:<{recipient}>:
    550 5.1.1 <{recipient}>: Recipient address rejected: User unknown

------ This is a copy of the message, including all the headers. ------

Return-path: <inbound@lrabb.de>
Message-ID: {message_id}
From: newsletter@lrabb.de
To: {recipient}
Subject: Newsletter

Liebe Frau Beispiel, Version 5.1.1 der Software ist da.
""".encode()


def abuse_report(message_id, feedback_type="abuse"):
    """An ARF complaint from a mailbox provider's feedback loop (recipient redacted)."""
    report = MIMEMultipart("report", report_type="feedback-report")
    report["From"] = "<staff@hotmail.example>"
    report["To"] = "<abuse@lrabb.de>"
    report["Subject"] = "FW: Newsletter März"
    report.attach(MIMEText("This is an email abuse report for an email message received from IP 192.0.2.10.\n"))
    feedback = MIMEBase("message", "feedback-report")
    feedback.set_payload(f"Feedback-Type: {feedback_type}\nUser-Agent: SomeGenerator/1.0\nVersion: 1\n"
                         "Original-Mail-From: <inbound@lrabb.de>\nArrival-Date: Tue, 10 Mar 2026 08:12:05 +0000\n"
                         "Source-IP: 192.0.2.10\nReported-Domain: lrabb.de\n")
    report.attach(feedback)
    headers = MIMEText(f"Message-ID: {message_id}\nFrom: newsletter@lrabb.de\nTo: redacted@hotmail.example\n"
                       "Subject: Newsletter\n", "rfc822-headers")
    report.attach(headers)
    return report.as_bytes()


def person_mail(subject="Frage zum Newsletter", in_reply_to=None):
    mail = EmailMessage()
    mail["From"] = "Anna Beispiel <anna.beispiel@boeblingen.de>"
    mail["To"] = "inbound@lrabb.de"
    mail["Subject"] = subject
    if in_reply_to:
        mail["In-Reply-To"] = in_reply_to
        mail["Auto-Submitted"] = "auto-replied"
    mail.set_content(f"Ich bin bis 20.3. nicht im Haus.\n\n> Message-ID: {in_reply_to}\n")
    return mail.as_bytes()


# --- what a report does -----------------------------------------------------------


def test_postfix_hard_bounce_marks_the_delivery_and_suppresses_the_address(sent):
    delivery = sent("<a1b2c3d4e5f6a7b8c9d0e1f2@lrabb.de>")

    assert handle_message(postfix_dsn("<a1b2c3d4e5f6a7b8c9d0e1f2@lrabb.de>")) == "bounce_report"

    delivery = reload(delivery)
    assert delivery.status == "bounced"
    assert delivery.smtp_reply == (
        f"550 5.1.1 <{ANNA}>: Recipient address rejected: User unknown in virtual mailbox table"
    )
    assert delivery.subscriber.status == "bounced"
    assert suppressions() == ["bounced"]


def test_exchange_ndr_with_the_whole_original_attached(sent):
    delivery = sent("<f00dfeed00112233@lrabb.de>")

    assert handle_message(exchange_ndr("<f00dfeed00112233@lrabb.de>")) == "bounce_report"

    delivery = reload(delivery)
    assert delivery.status == "bounced"
    assert delivery.smtp_reply.startswith("550 5.1.10 RESOLVER.ADR.RecipientNotFound")
    assert delivery.subscriber.status == "bounced"
    assert suppressions() == ["bounced"]


def test_message_ids_compare_without_brackets_and_folding_whitespace(sent):
    delivery = sent("<0123456789abcdef01234567@lrabb.de>")
    report = postfix_dsn("<0123456789abcdef01234567@lrabb.de>").replace(
        b"Message-ID: <0123456789abcdef01234567@lrabb.de>", b"Message-ID:\n  0123456789abcdef01234567@lrabb.de  "
    )

    handle_message(report)

    assert reload(delivery).status == "bounced"


def test_envelope_id_is_the_fallback_when_the_original_is_not_returned(sent):
    delivery = sent("<99887766@lrabb.de>")
    report = postfix_dsn("<unrelated@elsewhere.example>").replace(
        b"X-Postfix-Queue-ID: 4Xyz1234", b"Original-Envelope-Id: <99887766@lrabb.de>\nX-Postfix-Queue-ID: 4Xyz1234"
    )

    handle_message(report)

    assert reload(delivery).status == "bounced"


def test_report_without_report_type_is_read_too(sent):
    delivery = sent("<5566@lrabb.de>")
    report = postfix_dsn("<5566@lrabb.de>").replace(
        b"multipart/report; report-type=delivery-status;", b"multipart/mixed;"
    )

    assert handle_message(report) == "bounce_report"
    assert reload(delivery).status == "bounced"


@pytest.mark.parametrize("action, status, diagnostic", [
    ("delayed", "4.4.1", "X-Postfix; connect to mx.boeblingen.de[192.0.2.25]:25: Connection timed out"),
    ("failed", "4.2.2", "smtp; 452 4.2.2 Mailbox full"),
])
def test_soft_bounce_changes_nothing(sent, action, status, diagnostic):
    delivery = sent("<aa11@lrabb.de>")

    assert handle_message(postfix_dsn("<aa11@lrabb.de>", action=action, status=status,
                                      diagnostic=diagnostic)) == "bounce_report"

    delivery = reload(delivery)
    assert (delivery.status, delivery.smtp_reply) == ("sent", "250")
    assert delivery.subscriber.status == "active"
    assert suppressions() == []


def test_report_about_an_unknown_message_is_consumed_and_changes_nothing(sent):
    delivery = sent("<known@lrabb.de>")

    assert handle_message(postfix_dsn("<unknown@lrabb.de>")) == "bounce_report"

    assert reload(delivery).status == "sent"
    assert suppressions() == []


@pytest.mark.parametrize("mail", [
    person_mail(),
    person_mail("Automatische Antwort: Newsletter März", in_reply_to="<bb22@lrabb.de>"),
])
def test_other_mail_is_left_for_other_handlers(sent, mail):
    delivery = sent("<bb22@lrabb.de>")

    assert handle_message(mail) is None

    assert reload(delivery).status == "sent"
    assert reload(delivery).subscriber.status == "active"


def test_reports_come_before_handlers_that_read_the_subject(sent):
    """A bounce quotes the original's subject, which may look like a mailto unsubscribe."""
    delivery = sent("<1221@lrabb.de>")
    report = postfix_dsn("<1221@lrabb.de>").replace(
        b"Subject: Undelivered Mail Returned to Sender", b"Subject: Undelivered Mail: unsubscribe abc.def.ghi"
    )

    assert handle_message(report) == "bounce_report"
    assert reload(delivery).status == "bounced"


def test_policy_refusal_marks_the_delivery_but_keeps_the_address(sent):
    delivery = sent("<cc33@lrabb.de>")

    handle_message(postfix_dsn("<cc33@lrabb.de>", status="5.7.1",
                               diagnostic="smtp; 550 5.7.1 Service unavailable; client [192.0.2.10] blocked"))

    delivery = reload(delivery)
    assert delivery.status == "bounced"
    assert "blocked" in delivery.smtp_reply
    assert delivery.subscriber.status == "active"
    assert suppressions() == []


def test_bounce_for_an_alias_suppresses_the_unchanged_subscriber(sent):
    """Exchange names the mailbox's primary address, not the alias we sent to."""
    delivery = sent("<dd44@lrabb.de>")

    handle_message(exchange_ndr("<dd44@lrabb.de>", final_recipient="a.beispiel@boeblingen.de",
                                status="5.2.1", diagnostic="smtp;550 5.2.1 Mailbox disabled"))

    assert reload(delivery).subscriber.status == "bounced"


def test_late_bounce_for_a_corrected_address_keeps_the_new_one(sent, make_subscriber):
    from subscribers import services

    subscriber = make_subscriber(email="anna.beispeil@boeblingen.de")
    delivery = sent("<ee55@lrabb.de>", subscriber=subscriber)
    services.change_subscriber(subscriber, email=ANNA)  # the coordinator corrects the typo
    db.session.commit()

    handle_message(postfix_dsn("<ee55@lrabb.de>", recipient="anna.beispeil@boeblingen.de"))

    delivery = reload(delivery)
    assert delivery.status == "bounced"
    assert delivery.subscriber.status == "active"
    assert suppressions() == []


def test_bounce_after_erasure_finds_nothing(sent):
    """Erasure drops the Message-ID with the person: a late bounce can not be tied to anyone."""
    from subscribers import privacy

    delivery = sent("<ff66@lrabb.de>")
    privacy.erase_subscriber(delivery.subscriber)
    db.session.commit()

    assert handle_message(postfix_dsn("<ff66@lrabb.de>")) == "bounce_report"

    assert reload(delivery).status == "sent"
    assert suppressions() == ["erased"]


def test_repeated_report_is_harmless(sent):
    delivery = sent("<0770@lrabb.de>")

    handle_message(postfix_dsn("<0770@lrabb.de>"))
    handle_message(postfix_dsn("<0770@lrabb.de>"))

    assert reload(delivery).status == "bounced"
    assert suppressions() == ["bounced"]


def test_exim_bounce_without_status_part(sent):
    delivery = sent("<0880@lrabb.de>")

    assert handle_message(exim_bounce("<0880@lrabb.de>")) == "bounce_report"

    delivery = reload(delivery)
    assert delivery.status == "bounced"
    assert delivery.smtp_reply == f"550 5.1.1 <{ANNA}>: Recipient address rejected: User unknown"
    assert delivery.subscriber.status == "bounced"


def test_abuse_complaint_suppresses_without_touching_the_delivery(sent):
    delivery = sent("<0990@lrabb.de>")

    assert handle_message(abuse_report("<0990@lrabb.de>")) == "complaint_report"

    delivery = reload(delivery)
    assert delivery.status == "sent"
    assert delivery.subscriber.status == "complained"
    assert suppressions() == ["complained"]


def test_feedback_report_that_is_not_a_complaint_changes_nothing(sent):
    delivery = sent("<0aa0@lrabb.de>")

    assert handle_message(abuse_report("<0aa0@lrabb.de>", feedback_type="not-spam")) == "complaint_report"

    assert reload(delivery).subscriber.status == "active"


# --- the channels: stdin and LMTP ---------------------------------------------------


def test_flask_inbound_reads_a_bounce_from_stdin(sent, runner):
    delivery = sent("<0bb0@lrabb.de>")

    result = runner.invoke(args=["inbound"], input=postfix_dsn("<0bb0@lrabb.de>"))

    assert result.exit_code == 0, result.output
    assert "bounce_report" in result.output
    assert reload(delivery).status == "bounced"


def test_flask_inbound_asks_the_mta_to_retry_when_handling_fails(sent, runner, monkeypatch):
    from newsletter import bounces

    delivery = sent("<0cc0@lrabb.de>")
    monkeypatch.setattr(bounces, "_find_delivery", lambda ids: 1 / 0)

    result = runner.invoke(args=["inbound"], input=postfix_dsn("<0cc0@lrabb.de>"))

    assert result.exit_code == 75
    assert reload(delivery).status == "sent"


@pytest.fixture
def lmtp(app):
    controller = start_lmtp(app, "127.0.0.1", free_port())
    yield controller
    controller.stop()


def crlf(data):
    """Line ends as on the wire (smtplib sends bytes as they are)."""
    return re.sub(rb"\r?\n", b"\r\n", data)


def lmtp_send(port, data, recipients=("inbound@lrabb.de",)):
    """Send one message; returns one (code, text) per recipient, as LMTP answers."""
    data = crlf(data)
    with smtplib.LMTP("127.0.0.1", port, timeout=10) as client:
        client.ehlo()
        client.mail("")
        for recipient in recipients:
            assert client.rcpt(recipient)[0] == 250
        replies = [client.data(data)]
        replies += [client.getreply() for _ in recipients[1:]]
    return replies


def test_lmtp_listener_handles_a_bounce(sent, lmtp):
    delivery = sent("<0dd0@lrabb.de>")

    with smtplib.LMTP("127.0.0.1", lmtp.port, timeout=10) as client:
        assert client.sendmail("", ["inbound@lrabb.de"], crlf(postfix_dsn("<0dd0@lrabb.de>"))) == {}

    assert reload(delivery).status == "bounced"
    assert reload(delivery).subscriber.status == "bounced"


def test_lmtp_answers_once_per_recipient_and_handles_the_message_once(sent, lmtp):
    delivery = sent("<0ee0@lrabb.de>")

    replies = lmtp_send(lmtp.port, postfix_dsn("<0ee0@lrabb.de>"), ("inbound@lrabb.de", "bounces@lrabb.de"))

    assert [code for code, _text in replies] == [250, 250]
    assert reload(delivery).status == "bounced"
    assert suppressions() == ["bounced"]


def test_lmtp_accepts_and_drops_mail_nobody_handles(sent, lmtp):
    assert [code for code, _ in lmtp_send(lmtp.port, person_mail())] == [250]
    assert [code for code, _ in lmtp_send(lmtp.port, b"\x00\xff garbage\r\nno headers at all")] == [250]


def test_a_failing_message_gets_451_and_the_listener_goes_on(sent, lmtp, monkeypatch):
    from newsletter import bounces

    real = bounces._find_delivery

    def failing_for_one(ids):
        if any("broken" in value for value in ids):
            raise RuntimeError("database went away")
        return real(ids)

    monkeypatch.setattr(bounces, "_find_delivery", failing_for_one)
    delivery = sent("<0ff0@lrabb.de>")

    [(code, text)] = lmtp_send(lmtp.port, postfix_dsn("<broken@lrabb.de>"))
    assert code == 451 and text.startswith(b"4.3.0")

    assert [code for code, _ in lmtp_send(lmtp.port, postfix_dsn("<0ff0@lrabb.de>"))] == [250]
    assert reload(delivery).status == "bounced"


def test_flask_inbound_serve_runs_until_sigterm(sent, app, instance_path):
    delivery = sent("<1001@lrabb.de>")
    port = free_port()
    env = dict(os.environ, INSTANCE_PATH=instance_path, SECRET_KEY="test-secret", PYTHONUNBUFFERED="1",
               DATABASE_URL=app.config["SQLALCHEMY_DATABASE_URI"])
    env.pop("FLASK_APP", None)
    if app.config.get("REDIS_URL"):
        env["REDIS_URL"] = app.config["REDIS_URL"]
    process = subprocess.Popen(
        [sys.executable, "-m", "flask", "inbound", "serve", "--port", str(port)],
        cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, process.stdout.read().decode()
            try:
                replies = lmtp_send(port, postfix_dsn("<1001@lrabb.de>"))
                break
            except ConnectionRefusedError:
                assert time.monotonic() < deadline, "the LMTP listener did not start"
                time.sleep(0.2)
        assert [code for code, _ in replies] == [250]
        assert reload(delivery).status == "bounced"

        process.send_signal(signal.SIGTERM)
        assert process.wait(15) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
