"""gunicorn's own error answers (414, 431, 400) are JSON with a message on /api/.

A real gunicorn process, started with the options `flask serve` passes
(`core.web_server.gunicorn_options`), on a free port; requests go over a raw
socket, because an HTTP client library would refuse to send some of them.
"""
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.web_server import gunicorn_options
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def gunicorn(tmp_path_factory):
    instance = tmp_path_factory.mktemp("gunicorn")
    port = free_port()
    env = dict(os.environ, INSTANCE_PATH=str(instance), PYTHONUNBUFFERED="1")
    env.pop("DATABASE_URL", None)  # the app's default: SQLite in the instance folder
    log = open(instance / "gunicorn.log", "wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "1",
         *gunicorn_options(), "app:create_app()"],
        cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, (instance / "gunicorn.log").read_text()
            try:
                status, _headers, _body = send(port, b"GET /api/v1/districts HTTP/1.1\r\nHost: x\r\n\r\n")
                if status:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "gunicorn did not answer within 30 s"
            time.sleep(0.2)
        yield port
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def send(port, raw):
    """(status, headers, body) of one raw request."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(raw)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            headers = dict(
                line.split(b": ", 1) for line in head.split(b"\r\n")[1:] if b": " in line
            )
            if b"Content-Length" in headers and len(body) >= int(headers[b"Content-Length"]):
                break
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v for k, v in (line.split(": ", 1) for line in lines[1:] if ": " in line)}
    return int(lines[0].split(" ")[1]), headers, body


def request(port, target, extra_headers=b""):
    return send(port, b"GET " + target + b" HTTP/1.1\r\nHost: localhost\r\n" + extra_headers + b"\r\n")


def assert_json_error(answer, code):
    status, headers, body = answer
    assert status == code
    assert headers["content-type"] == "application/json"
    payload = json.loads(body)
    assert payload["code"] == code and payload["message"]


def test_the_app_answers_api_errors_as_json(gunicorn):
    assert_json_error(request(gunicorn, b"/api/v1/districts"), 401)  # the app's own answer, for comparison


def test_a_request_line_too_long_for_gunicorn_is_json_on_the_api(gunicorn):
    long_query = b"?q=" + b"x" * 5000
    assert_json_error(request(gunicorn, b"/api/v1/districts" + long_query), 414)
    assert_json_error(request(gunicorn, b"http://localhost/api/v1/districts" + long_query), 414)
    # Elsewhere gunicorn's own page stays.
    status, headers, _body = request(gunicorn, b"/d/08115/subscribe" + long_query)
    assert status == 414 and headers["content-type"] == "text/html"


def test_header_fields_too_large_are_json_on_the_api(gunicorn):
    assert_json_error(request(gunicorn, b"/api/v1/districts", b"X-Big: " + b"y" * 10000 + b"\r\n"), 431)
    many = b"".join(b"X-H%d: 1\r\n" % n for n in range(150))
    assert_json_error(request(gunicorn, b"/api/v1/districts", many), 431)


def test_a_malformed_request_is_json_on_the_api(gunicorn):
    status, headers, body = send(gunicorn, b"GET /api/v1/districts HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n")
    assert status == 400 and headers["content-type"] == "application/json"
    assert json.loads(body)["message"]
