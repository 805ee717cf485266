"""The shipped gunicorn.conf.py under hostile clients (issue 22, items 4-6), through a real
gunicorn on the test database: chunked deliveries, slow clients, short bodies, huge POSTs."""

import http.client
import json
import socket
import time

import pytest

from tests.server import gunicorn_server
from tests.webhooks.helpers import TOKEN, fixture_body
from webhooks.models import WebhookEvent

pytestmark = [pytest.mark.server, pytest.mark.django_db(transaction=True)]
READ_TIMEOUT = 3  # GUNICORN_READ_TIMEOUT for these servers (10 s shipped)
SMALL_LIMIT = 4096  # WEBHOOK_MAX_BODY_BYTES where a test needs a small one


def chunked_post(port: int, body: bytes, *, chunk: int = 100) -> tuple[int, dict]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        connection.request("POST", "/api/webhooks/email",
                           body=(body[i:i + chunk] for i in range(0, len(body), chunk)),
                           headers={"X-Webhook-Token": TOKEN,
                                    "Content-Type": "application/json"},
                           encode_chunked=True)
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"{}")
    finally:
        connection.close()


def raw_request(port: int, head: bytes, *, timeout: float = 20) -> tuple[bytes, float]:
    """Send ``head`` (and no more) on a new connection; the first response line and how long
    it took to arrive."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as connection:
        connection.sendall(head)
        answer = connection.recv(65536)
    return answer.split(b"\r\n", 1)[0], time.monotonic() - started


def test_chunked__webhook_without_content_length_is_read_and_stored():
    """Transfer-Encoding: chunked, no Content-Length: 202 and the body stored byte for byte."""
    body = fixture_body("email_sent__basic")
    with gunicorn_server() as server:
        status, answer = chunked_post(server.port, body)
    assert status == 202, answer
    assert bytes(WebhookEvent.objects.get(pk=answer["eventId"]).raw_body) == body


def test_chunked__over_the_limit_is_413_and_nothing_stored():
    """A chunked body past WEBHOOK_MAX_BODY_BYTES is refused like a declared one."""
    payload = json.loads(fixture_body("email_sent__basic"))
    payload["padding"] = "x" * SMALL_LIMIT
    with gunicorn_server(env={"WEBHOOK_MAX_BODY_BYTES": SMALL_LIMIT}) as server:
        status, _ = chunked_post(server.port, json.dumps(payload).encode(), chunk=1000)
    assert status == 413
    assert not WebhookEvent.objects.exists()


def test_body__one_mebibyte_webhook_is_accepted():
    """Django's upload limits stay on, and a webhook at WEBHOOK_MAX_BODY_BYTES still works."""
    payload = json.loads(fixture_body("email_sent__basic"))
    payload["padding"] = ""
    payload["padding"] = "x" * (1024 * 1024 - len(json.dumps(payload)))
    body = json.dumps(payload).encode()
    assert len(body) == 1024 * 1024
    with gunicorn_server() as server:
        status, answer = server.request("POST", "/api/webhooks/email", body,
                                        {"X-Webhook-Token": TOKEN})
    assert status == 202, answer
    assert WebhookEvent.objects.count() == 1


def test_slow_clients__partial_headers_do_not_hold_a_normal_request():
    """Four connections stalled mid-header: a normal request is answered at once, and the
    stalled ones are cut off after the read timeout."""
    with gunicorn_server(env={"GUNICORN_READ_TIMEOUT": READ_TIMEOUT}) as server:
        slow = []
        for _ in range(4):
            connection = socket.create_connection(("127.0.0.1", server.port), timeout=30)
            connection.sendall(b"POST /api/webhooks/email HTTP/1.1\r\nHost: x\r\nX-Partial: ")
            slow.append(connection)
        time.sleep(0.5)  # let the server's threads take them
        started = time.monotonic()
        status, _ = server.request("GET", "/api/webhooks/email", timeout=30)
        waited = time.monotonic() - started
        closed_after = []
        for connection in slow:
            began = time.monotonic()
            try:
                connection.recv(1024)  # b"" (closed) or a 4xx: either way the server let go
            except ConnectionResetError:
                pass
            closed_after.append(time.monotonic() - began)
            connection.close()
    assert status == 200
    assert waited < 2, f"a normal request waited {waited:.1f} s behind slow clients"
    assert max(closed_after) < READ_TIMEOUT + 3, closed_after


def test_short_body__content_length_larger_than_the_body_is_400_within_the_timeout():
    """A client that declares more than it sends gets a 400 once the read times out, not a
    500 after 30 s; nothing is stored."""
    head = (b"POST /api/webhooks/email HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"X-Webhook-Token: " + TOKEN.encode() + b"\r\nContent-Length: 5000\r\n\r\n"
            + fixture_body("email_sent__basic")[:100])
    with gunicorn_server(env={"GUNICORN_READ_TIMEOUT": READ_TIMEOUT}) as server:
        status_line, took = raw_request(server.port, head)
    assert status_line.startswith(b"HTTP/1.1 400"), status_line
    assert took < READ_TIMEOUT + 3
    assert not WebhookEvent.objects.exists()


def test_memory__huge_post_to_admin_login_is_refused_without_reading_it():
    """256 MiB declared to /admin/login/ with a made-up CSRF cookie: refused (400) after a
    few KiB were sent, so the worker never buffered the body."""
    head = (b"POST /admin/login/ HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            b"Cookie: csrftoken=" + b"a" * 32 + b"\r\n"
            b"Content-Length: " + str(256 * 1024 * 1024).encode() + b"\r\n\r\n"
            + b"username=a&password=" + b"x" * 65536)
    with gunicorn_server() as server:
        status_line, took = raw_request(server.port, head)
        again, _ = server.request("GET", "/api/webhooks/email")
    assert status_line.startswith(b"HTTP/1.1 400"), status_line
    assert took < 5
    assert again == 200
