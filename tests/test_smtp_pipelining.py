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


class Recording:
    """Counts the writes an smtplib.SMTP makes (one per `send`)."""

    def __init__(self, host):
        self.writes = []
        original = host.send

        def send(data):
            self.writes.append(data.encode("ascii") if isinstance(data, str) else bytes(data))
            return original(data)

        host.send = send


def test_each_mail_goes_out_with_the_commands_of_the_next_one_write_per_mail(server, conn):
    conn.host.ehlo_or_helo_if_needed()
    writes = Recording(conn.host).writes
    mails = [("from@example.org", f"ok{n}@example.org") for n in range(4)]
    for n, (sender, recipient) in enumerate(mails):
        following = mails[n + 1] if n + 1 < len(mails) else None
        conn.submit(sender, recipient, f"Subject: {n}\r\n\r\nbody {n}\r\n".encode(), then=following)
        assert conn.result() == {}
    # The first mail's commands alone, then one write per mail: its message and the next mail's commands.
    assert len(writes) == 1 + len(mails)
    assert writes[1].endswith(b".\r\nMAIL FROM:<from@example.org>\r\nRCPT TO:<ok1@example.org>\r\nDATA\r\n")
    assert writes[-1].endswith(b"body 3\r\n.\r\n")
    assert [m[0] for m in server.messages] == [[r] for _s, r in mails]


def test_a_failed_message_keeps_the_announced_next_mail_going(server, conn):
    conn.submit("from@example.org", "bigfail@example.org", b"Subject: x\r\n\r\nbody\r\n",
                then=("from@example.org", "ok@example.org"))
    with pytest.raises(smtplib.SMTPDataError) as e:
        conn.result()
    assert e.value.smtp_code == 552
    conn.submit("from@example.org", "ok@example.org", b"Subject: y\r\n\r\nbody\r\n")
    conn.result()
    assert [m[0] for m in server.messages] == [["ok@example.org"]]


def test_a_refused_announced_recipient_is_reported_when_its_turn_comes(server, conn):
    conn.submit("from@example.org", "ok@example.org", b"Subject: x\r\n\r\nbody\r\n",
                then=("from@example.org", "hard@example.org"))
    conn.result()
    with pytest.raises(smtplib.SMTPRecipientsRefused) as e:
        conn.submit("from@example.org", "hard@example.org", b"Subject: y\r\n\r\nbody\r\n")
    assert e.value.recipients["hard@example.org"][0] == 550
    conn.send_raw("from@example.org", "ok2@example.org", b"Subject: z\r\n\r\nbody\r\n")
    assert [m[0] for m in server.messages] == [["ok@example.org"], ["ok2@example.org"]]


def test_an_announced_mail_that_does_not_follow_is_never_delivered(server, conn):
    conn.submit("from@example.org", "ok@example.org", b"Subject: x\r\n\r\nbody\r\n",
                then=("from@example.org", "never@example.org"))
    conn.result()
    # Another mail than the announced one ends the session instead of sending anything.
    with pytest.raises(smtplib.SMTPServerDisconnected):
        conn.submit("from@example.org", "other@example.org", b"Subject: y\r\n\r\nbody\r\n")
    conn.reconnect()
    conn.submit("from@example.org", "ok2@example.org", b"Subject: z\r\n\r\nbody\r\n",
                then=("from@example.org", "never@example.org"))
    conn.result()
    conn.close()  # the server waits for the announced message: closed, not answered with an empty one
    import time

    time.sleep(0.3)
    assert [m[0] for m in server.messages] == [["ok@example.org"], ["ok2@example.org"]]
