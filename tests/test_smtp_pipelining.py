"""The pipelined SMTP path (RFC 2920) of `core.mail.SMTPRawConnection.send_raw`,
against a real aiosmtpd server that advertises PIPELINING."""
import smtplib

import pytest
from aiosmtpd.controller import Controller

from tests.conftest import free_port


class Handler:
    def __init__(self):
        self.messages, self.commands = [], []

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        return responses[:-1] + ["250-PIPELINING", responses[-1]]

    async def handle_MAIL(self, server, session, envelope, address, options):
        if address.startswith("blocked"):
            return "553 5.7.1 sender blocked"
        envelope.mail_from = address
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, options):
        if address.startswith("soft"):
            return "451 4.3.0 try later"
        if address.startswith("hard"):
            return "550 5.1.1 no such user"
        if address.startswith("bye"):
            return "421 4.3.2 closing"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if envelope.rcpt_tos[0].startswith("bigfail"):
            return "552 5.3.4 too big"
        self.messages.append((envelope.rcpt_tos, envelope.content))
        return "250 OK"


@pytest.fixture
def server():
    port = free_port()
    handler = Handler()
    c = Controller(handler, hostname="127.0.0.1", port=port)
    c.start()
    handler.port = port
    yield handler
    c.stop()


@pytest.fixture
def conn(server):
    from core.mail import SMTPRawConnection

    connection = SMTPRawConnection(lambda: smtplib.SMTP("127.0.0.1", server.port, timeout=10)).connect()
    yield connection
    connection.close()


def sent(conn, monkeypatch):
    calls = []
    monkeypatch.setattr(conn.host, "sendmail", lambda *a: calls.append(a))
    return calls


def test_uses_pipelining_and_delivers_with_dot_stuffing(server, conn, monkeypatch):
    fallback = sent(conn, monkeypatch)
    data = b"Subject: x\r\n\r\n.leading dot\r\n..two\r\nend"
    for n in range(3):
        conn.send_raw("from@example.org", f"ok{n}@example.org", data)
    assert not fallback
    assert [m[0] for m in server.messages] == [["ok0@example.org"], ["ok1@example.org"], ["ok2@example.org"]]
    assert server.messages[0][1] == data + b"\r\n"


def test_soft_and_hard_rejections_then_the_session_goes_on(server, conn):
    with pytest.raises(smtplib.SMTPRecipientsRefused) as e:
        conn.send_raw("from@example.org", "soft@example.org", b"Subject: x\r\n\r\nbody\r\n")
    assert e.value.recipients == {"soft@example.org": (451, b"4.3.0 try later")}
    with pytest.raises(smtplib.SMTPRecipientsRefused) as e:
        conn.send_raw("from@example.org", "hard@example.org", b"Subject: x\r\n\r\nbody\r\n")
    assert e.value.recipients["hard@example.org"][0] == 550
    with pytest.raises(smtplib.SMTPSenderRefused) as e:
        conn.send_raw("blocked@example.org", "ok@example.org", b"Subject: x\r\n\r\nbody\r\n")
    assert e.value.smtp_code == 553
    with pytest.raises(smtplib.SMTPDataError) as e:
        conn.send_raw("from@example.org", "bigfail@example.org", b"Subject: x\r\n\r\nbody\r\n")
    assert e.value.smtp_code == 552
    conn.send_raw("from@example.org", "ok@example.org", b"Subject: x\r\n\r\nbody\r\n")
    assert [m[0] for m in server.messages] == [["ok@example.org"]]


def test_421_closes(server, conn):
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        conn.send_raw("from@example.org", "bye@example.org", b"Subject: x\r\n\r\nbody\r\n")
    with pytest.raises(smtplib.SMTPServerDisconnected):
        conn.send_raw("from@example.org", "ok@example.org", b"Subject: x\r\n\r\nbody\r\n")


def test_unusual_address_takes_smtplib(server, conn, monkeypatch):
    fallback = sent(conn, monkeypatch)
    conn.send_raw("from@example.org", "Jörg@example.org", b"x")
    conn.send_raw("from@example.org", "a b@example.org", b"x")
    assert len(fallback) == 2
