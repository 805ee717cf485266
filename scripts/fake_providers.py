"""Fake EmailBison, availability and booking endpoints for ``make run`` (stdlib only).

One HTTP server answers all three APIs on distinct paths, so a demo client can point every
provider base URL at it (``manage.py seed_demo --provider-base-url http://127.0.0.1:<port>``):

- ``GET /api/campaigns/<id>/leads?page=N``: EmailBison's paginated leads (15 a page, 3 pages).
- ``PATCH /api/leads/<id>`` (``{"custom_variables": [{"name", "value"}]}``): kept in memory;
  ``GET /api/leads/<id>`` shows them, so the demo's ``availability_slot`` can be looked at.
- ``GET /slots?start=YYYY-MM-DD&days=N``: weekday office hours in New York, as slots.
- ``GET /appointments?email=E``: the demo's hedy@example.com has a booked meeting and
  katherine@example.com a canceled one (so appointment-reconcile shows a booking completing
  follow-ups and a cancellation making a task); of other leads, by a hash of the email, a sixth
  have a booked meeting.

Every request needs an ``Authorization: Bearer`` header (any key). Run alone with
``python scripts/fake_providers.py [PORT]``.
"""

import hashlib
import json
import re
import sys
import threading
from datetime import date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

OFFICE = ZoneInfo("America/New_York")
OFFICE_HOURS = ((9, 12), (13, 17))
PAGE_SIZE, PAGES = 15, 3
DEMO_APPOINTMENTS = {"hedy@example.com": "booked", "katherine@example.com": "canceled"}


class FakeProviders(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, host: str, port: int):
        super().__init__((host, port), _Handler)
        self.custom_variables: dict[str, dict[str, str]] = {}
        self.lock = threading.Lock()

    @property
    def base_url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def campaign_leads(self, campaign_id: str, page: int) -> dict:
        first = (page - 1) * PAGE_SIZE
        data = [{"id": int(campaign_id) * 1000 + n, "email": f"prospect{n}@example.com",
                 "first_name": f"Prospect {n}", "last_name": "Demo",
                 "lead_campaign_data": {"status": "in_sequence", "emails_sent": 0}}
                for n in range(first, first + PAGE_SIZE)] if 1 <= page <= PAGES else []
        return {"data": data, "meta": {"current_page": page, "last_page": PAGES,
                                       "per_page": PAGE_SIZE, "total": PAGE_SIZE * PAGES}}

    def lead(self, lead_id: str) -> dict:
        with self.lock:
            variables = dict(self.custom_variables.get(lead_id, {}))
        return {"data": {"id": int(lead_id), "custom_variables": [
            {"name": name, "value": value} for name, value in sorted(variables.items())]}}

    def lead_patch(self, lead_id: str, body: dict) -> dict:
        with self.lock:
            kept = self.custom_variables.setdefault(lead_id, {})
            for variable in body.get("custom_variables") or []:
                kept[str(variable["name"])] = str(variable["value"])
        return self.lead(lead_id)

    def slots(self, start: date, days: int) -> dict:
        found = []
        for offset in range(min(days, 60)):
            day = start + timedelta(days=offset)
            if day.weekday() >= 5:
                continue
            for opens, closes in OFFICE_HOURS:
                found.append({
                    "start": datetime(day.year, day.month, day.day, opens,
                                      tzinfo=OFFICE).isoformat(),
                    "end": datetime(day.year, day.month, day.day, closes,
                                    tzinfo=OFFICE).isoformat()})
        return {"timezone": str(OFFICE), "slots": found}

    def appointments(self, email: str) -> dict:
        digest = hashlib.sha256(email.lower().encode()).hexdigest()
        status = DEMO_APPOINTMENTS.get(email.lower(),
                                       "booked" if int(digest, 16) % 6 == 0 else None)
        if status is None:
            return {"appointments": []}
        day = date.today() + timedelta(days=2)
        start = datetime(day.year, day.month, day.day, 10, tzinfo=OFFICE)
        return {"appointments": [{
            "id": f"demo-{digest[:12]}", "status": status, "start": start.isoformat(),
            "end": (start + timedelta(minutes=30)).isoformat()}]}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _serve(self):
        url = urlsplit(self.path)
        query = {name: values[0] for name, values in parse_qs(url.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not self.headers.get("Authorization", "").startswith("Bearer "):
            return self._send(401, {"message": "Unauthenticated."})
        try:
            status, answer = self._route(self.command, url.path, query, raw)
        except (ValueError, KeyError, TypeError) as error:
            status, answer = 422, {"message": f"bad request: {error}"}
        self._send(status, answer)

    def _route(self, method: str, path: str, query: dict, raw: bytes):
        server: FakeProviders = self.server
        if method == "GET" and (match := re.fullmatch(r"/api/campaigns/(\d+)/leads", path)):
            return 200, server.campaign_leads(match[1], int(query.get("page", 1)))
        if match := re.fullmatch(r"/api/leads/(\d+)", path):
            if method == "PATCH":
                return 200, server.lead_patch(match[1], json.loads(raw or b"{}"))
            if method == "GET":
                return 200, server.lead(match[1])
        if method == "GET" and path == "/slots":
            return 200, server.slots(date.fromisoformat(query["start"]),
                                     int(query.get("days", 30)))
        if method == "GET" and path == "/appointments":
            return 200, server.appointments(query["email"])
        return 404, {"message": "Not found."}

    def _send(self, status: int, answer: dict):
        body = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_PATCH = do_POST = do_PUT = _serve

    def log_message(self, *args):
        pass


def start(host: str = "127.0.0.1", port: int = 0) -> FakeProviders:
    """Serve in a daemon thread; ``server.shutdown()`` stops it."""
    server = FakeProviders(host, port)
    threading.Thread(target=server.serve_forever, name="fake-providers", daemon=True).start()
    return server


if __name__ == "__main__":
    server = start(port=int(sys.argv[1]) if len(sys.argv) > 1 else 8765)
    print(f"Fake providers on {server.base_url} (Ctrl-C stops)", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.shutdown()
