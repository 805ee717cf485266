"""A real local HTTP server for the provider clients' tests: scripted answers, every request
recorded.

``server.script("GET", "/slots", Reply(200, {...}), Reply(500))`` answers that method and path
(the query string ignored) with each reply in turn, the last one repeating; a reply may also be a
function of the recorded request (for pages). Anything unscripted is a 404. ``server.requests``
lists what arrived, in order; ``max_in_flight`` the most requests it was answering at once.
"""

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: object = None  # JSON-encoded unless bytes
    headers: dict = field(default_factory=dict)
    delay_seconds: float = 0.0


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict
    headers: dict
    body: bytes

    def json(self):
        return json.loads(self.body) if self.body else None


class ProviderServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[Request] = []
        self._scripts: dict[tuple[str, str], list] = {}
        self._lock = threading.Lock()
        self.in_flight = self.max_in_flight = 0

    @property
    def base_url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def script(self, method: str, path: str, *replies: Reply | Callable[[Request], Reply]):
        with self._lock:
            self._scripts[(method.upper(), path)] = list(replies)

    def requests_to(self, method: str, path: str | None = None) -> list[Request]:
        return [r for r in self.requests
                if r.method == method.upper() and (path is None or r.path == path)]

    def _answer(self, request: Request) -> Reply:
        with self._lock:
            self.requests.append(request)
            replies = self._scripts.get((request.method, request.path))
            if not replies:
                return Reply(404, {"message": "not scripted"})
            reply = replies.pop(0) if len(replies) > 1 else replies[0]
        return reply(request) if callable(reply) else reply

    def handle_error(self, request, client_address):
        """A client that gave up on a slow answer closes its socket: not a test failure."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _serve(self):
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        request = Request(self.command, url.path,
                          {k: v[0] for k, v in parse_qs(url.query).items()},
                          {k.lower(): v for k, v in self.headers.items()},
                          self.rfile.read(length) if length else b"")
        reply = self.server._answer(request)
        with self.server._lock:
            self.server.in_flight += 1
            self.server.max_in_flight = max(self.server.max_in_flight, self.server.in_flight)
        try:
            if reply.delay_seconds:
                time.sleep(reply.delay_seconds)
            self._reply(reply)
        finally:
            with self.server._lock:
                self.server.in_flight -= 1

    def _reply(self, reply: Reply):
        body = reply.body if isinstance(reply.body, bytes) else (
            b"" if reply.body is None else json.dumps(reply.body).encode())
        self.send_response(reply.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve

    def log_message(self, *args):
        pass


@pytest.fixture
def provider_server():
    """A started ProviderServer on 127.0.0.1 and a free port, shut down after the test."""
    server = ProviderServer()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)
