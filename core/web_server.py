"""How `flask serve` runs gunicorn: the options beyond bind address and worker count.

gunicorn answers some requests itself, before the app sees them: a request
line over `--limit-request-line` (414), too many or too large header fields
(431), a malformed request (400). Its answer is a small HTML page. An API
client expects JSON with a message like every other API error, so `flask
serve` runs gunicorn with `JsonErrorWorker`, a sync worker that answers those
errors as JSON when the request was for /api/.
"""
import json
import socket
from importlib.metadata import version

from gunicorn.workers.sync import SyncWorker

API_PREFIX = b"/api/"
# Enough of the request line to see the start of its target ("DELETE /api/…").
PEEK_BYTES = 64

# German messages: gunicorn's own texts are English and may quote the input.
MESSAGES = {
    400: "Die Anfrage ist fehlerhaft.",
    403: "Die Anfrage ist nicht erlaubt.",
    414: "Die Adresse (URL) der Anfrage ist zu lang.",
    417: "Die Erwartung im Header „Expect“ kann nicht erfüllt werden.",
    431: "Die Kopfzeilen der Anfrage sind zu groß.",
    500: "Interner Fehler; er wurde protokolliert.",
    501: "Diese Übertragungskodierung wird nicht unterstützt.",
}


def gunicorn_options():
    """Extra gunicorn command-line options."""
    options = ["--worker-class", f"{__name__}.JsonErrorWorker"]
    major = int(version("gunicorn").split(".")[0])
    # gunicorn 27 opens a control socket at one fixed path in $HOME, which a
    # second instance (another checkout, the test suite) would take over.
    if major >= 27:
        options.append("--no-control-socket")
    return options


class JsonErrorWorker(SyncWorker):
    """A sync worker whose own error answers are JSON for requests to /api/.

    For a request line too long to parse gunicorn knows no path, so the worker
    peeks (MSG_PEEK: nothing is consumed) at the first bytes of every
    connection before gunicorn parses them.
    """

    def handle(self, listener, client, addr):
        self._request_start = _peek(client)
        super().handle(listener, client, addr)

    def handle_error(self, req, client, addr, exc):
        if not _is_api(req, getattr(self, "_request_start", b"")):
            return super().handle_error(req, client, addr, exc)
        # gunicorn decides the status, logs and writes its HTML page; keep the
        # first two and write JSON instead of the page.
        page = _Capture()
        super().handle_error(req, page, addr, exc)
        status, reason = page.status()
        body = json.dumps(
            {"code": status, "status": reason, "message": MESSAGES.get(status, MESSAGES[400])},
            ensure_ascii=False,
        ).encode()
        head = (
            f"HTTP/1.1 {status} {reason}\r\n"
            "Connection: close\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode("latin-1")
        try:
            client.sendall(head + body)
        except OSError:
            self.log.debug("Failed to send error message.")


def _peek(client):
    try:
        return client.recv(PEEK_BYTES, socket.MSG_PEEK)
    except (OSError, ValueError):  # closed already, or a TLS socket (no peeking)
        return b""


def _is_api(req, request_start):
    path = getattr(req, "path", None)
    if path is not None:
        return path.startswith(API_PREFIX.decode())
    _, _, rest = request_start.partition(b" ")
    if rest.startswith(b"http://") or rest.startswith(b"https://"):  # absolute form
        rest = b"/" + rest.split(b"/", 3)[-1]
    return rest.startswith(API_PREFIX)


class _Capture:
    """Stands in for the client socket while gunicorn writes its error page."""

    def __init__(self):
        self.data = b""

    def gettimeout(self):
        return 0.0  # gunicorn then writes without toggling blocking mode

    def sendall(self, data):
        self.data += data

    def status(self):
        line = self.data.split(b"\r\n", 1)[0].decode("latin-1")
        try:
            _, code, reason = line.split(" ", 2)
            return int(code), reason
        except ValueError:
            return 500, "Internal Server Error"
