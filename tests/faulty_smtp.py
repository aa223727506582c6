"""An SMTP server that misbehaves on purpose, for the pipeline's fault tests and `bench/faults.py`.

It speaks enough ESMTP for smtplib and the pipelined path (EHLO with
PIPELINING, MAIL, RCPT, DATA, RSET, NOOP, QUIT) and counts what it accepted
per envelope recipient. Two faults, both reproducible from a seed:

- `cut_rate`: that share of DATA transactions loses its connection (a TCP
  reset). Half of the cuts come in the middle of the message (the mail is
  not delivered), half after the whole message arrived and before the
  server answered (it is delivered, the client cannot know: a cut that may
  make a duplicate).
- `always_cut`: addresses whose every message loses the connection in the
  middle (a message the server can never take).
- `outage(seconds)` (or `outage_after` accepted mails, for `outage_seconds`):
  for that long every new connection is greeted with 421 and closed, and
  every command on an open one is answered 421 and the connection closed.

aiosmtpd cannot cut a connection in the middle of DATA, hence asyncio.
"""
import asyncio
import collections
import random
import threading
import time


class FaultySMTPServer:
    def __init__(self, cut_rate=0.0, seed=1, outage_after=None, outage_seconds=0.0, always_cut=(),
                 host="127.0.0.1"):
        self.cut_rate = cut_rate
        self.always_cut = set(always_cut)
        self.random = random.Random(seed)
        self.outage_after = outage_after
        self.outage_seconds = outage_seconds
        self.host = host
        self.port = None
        self.received = collections.Counter()  # envelope recipient -> accepted messages
        self.cuts = 0
        self.cuts_after_data = 0  # cuts that may have made a duplicate
        self.refused_421 = 0
        self.connections = 0
        self.outages = 0
        self.outage_until = 0.0
        self.lock = threading.Lock()
        self._loop = None
        self._server = None
        self._thread = None

    # --- control ---------------------------------------------------------------

    def start(self):
        ready = threading.Event()

        def run():
            self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self._loop)
            self._server = self._loop.run_until_complete(
                self._loop.create_server(lambda: _Protocol(self), self.host, 0, backlog=512))
            self.port = self._server.sockets[0].getsockname()[1]
            ready.set()
            self._loop.run_forever()
            self._server.close()
            self._loop.run_until_complete(self._server.wait_closed())
            self._loop.close()

        self._thread = threading.Thread(target=run, name="faulty-smtp", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the faulty SMTP server did not start")
        return self

    def stop(self):
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop = None

    def outage(self, seconds):
        """Answer 421 to everything for `seconds`, from now."""
        with self.lock:
            self.outages += 1
            self.outage_until = time.monotonic() + seconds

    def in_outage(self):
        return time.monotonic() < self.outage_until

    @property
    def accepted(self):
        return sum(self.received.values())

    def duplicates(self):
        return sum(n - 1 for n in self.received.values() if n > 1)

    # --- called by the protocol ----------------------------------------------------

    def _cut_now(self, recipients):
        """Whether this DATA transaction is cut, and where: None, "middle" or "end"."""
        if self.always_cut.intersection(recipients):
            return "middle"
        if not self.cut_rate or self.random.random() >= self.cut_rate:
            return None
        return "middle" if self.random.random() < 0.5 else "end"

    def _delivered(self, recipients):
        with self.lock:
            self.received.update(recipients)
            if self.outage_after is not None and self.accepted >= self.outage_after and not self.outages:
                self.outages += 1
                self.outage_until = time.monotonic() + self.outage_seconds


class _Protocol(asyncio.Protocol):
    def __init__(self, server):
        self.server = server
        self.buffer = b""
        self.in_data = False
        self.data = []
        self.data_size = 0
        self.cut = None
        self.mail_from = None
        self.recipients = []
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport
        self.server.connections += 1
        if self.server.in_outage():
            self.server.refused_421 += 1
            transport.write(b"421 4.3.2 Service not available, try again later\r\n")
            transport.close()
            return
        transport.write(b"220 faulty.example ESMTP\r\n")

    def reply(self, line):
        self.transport.write(line.encode("ascii") + b"\r\n")

    def abort(self):
        self.server.cuts += 1
        self.transport.abort()  # RST: the client sees a reset or an EOF
        self.buffer = b""

    def data_received(self, chunk):
        self.buffer += chunk
        while self.buffer and not self.transport.is_closing():
            if self.in_data:
                if not self._take_data():
                    return
                continue
            line, sep, rest = self.buffer.partition(b"\r\n")
            if not sep:
                return
            self.buffer = rest
            self.command(line.decode("utf-8", "replace"))

    def _take_data(self):
        end = self.buffer.find(b"\r\n.\r\n")
        if self.cut == "middle" and (self.data_size + len(self.buffer) > 64 or end >= 0):
            self.abort()
            return False
        if end < 0:
            # Keep the last 4 bytes: the terminator may straddle two chunks.
            keep = max(len(self.buffer) - 4, 0)
            self.data.append(self.buffer[:keep])
            self.data_size += keep
            self.buffer = self.buffer[keep:]
            return False
        self.buffer = self.buffer[end + 5:]
        self.in_data = False
        recipients, self.recipients, self.mail_from = self.recipients, [], None
        self.data, self.data_size = [], 0
        self.server._delivered(recipients)
        if self.cut == "end":
            self.server.cuts_after_data += 1
            self.abort()
            return False
        self.reply("250 2.0.0 OK queued")
        return True

    def command(self, line):
        verb = line[:4].upper()
        if self.server.in_outage() and verb != "QUIT":
            self.server.refused_421 += 1
            self.reply("421 4.3.2 Service not available, closing the connection")
            self.transport.close()
            return
        if verb == "EHLO":
            self.transport.write(b"250-faulty.example\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 10485760\r\n")
        elif verb == "HELO":
            self.reply("250 faulty.example")
        elif verb == "MAIL":
            self.mail_from, self.recipients = line[10:].strip(), []
            self.reply("250 2.1.0 OK")
        elif verb == "RCPT":
            address = line[8:].strip()
            if address.startswith("<") and ">" in address:
                address = address[1:address.index(">")]
            self.recipients.append(address)
            self.reply("250 2.1.5 OK")
        elif verb == "DATA":
            if self.mail_from is None or not self.recipients:
                self.reply("503 5.5.1 need MAIL and RCPT first")
                return
            self.cut = self.server._cut_now(self.recipients)
            self.in_data = True
            self.reply("354 end data with <CR><LF>.<CR><LF>")
        elif verb == "RSET":
            self.mail_from, self.recipients = None, []
            self.reply("250 2.0.0 OK")
        elif verb == "NOOP":
            self.reply("250 2.0.0 OK")
        elif verb == "QUIT":
            self.reply("221 2.0.0 bye")
            self.transport.close()
        else:
            self.reply("502 5.5.2 command not recognised")
