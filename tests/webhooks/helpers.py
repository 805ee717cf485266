"""Helpers for webhook tests: fixture files, signed requests, draining with a test clock."""

import base64
import json
from datetime import UTC, datetime
from pathlib import Path

from standardwebhooks.webhooks import Webhook

FIXTURES = Path(__file__).parent / "fixtures"
URL = "/api/webhooks/email"
TOKEN = "test-webhook-token"
SECRET = "whsec_" + base64.b64encode(b"test-signing-secret-0123456789ab").decode()
OTHER_SECRET = "whsec_" + base64.b64encode(b"another-secret-zyxwvutsrqponmlk").decode()


def fixture_body(name: str) -> bytes:
    """The fixture file's bytes, exactly as stored (``<event>__<variant>``)."""
    return (FIXTURES / f"{name}.json").read_bytes()


def fixture_payload(name: str) -> dict:
    return json.loads(fixture_body(name))


def body_of(payload: dict) -> bytes:
    return json.dumps(payload).encode()


def post(client, body: bytes, *, token: str | None = TOKEN, query: str = "", **headers):
    """POST ``body`` to the webhook route with the token header (unless ``token`` is None)."""
    if token is not None:
        headers.setdefault("HTTP_X_WEBHOOK_TOKEN", token)
    url = f"{URL}?{query}" if query else URL
    return client.post(url, data=body, content_type="application/json", **headers)


def signature_headers(body: bytes, *, secret: str = SECRET, msg_id: str = "msg_1",
                      timestamp: datetime | None = None) -> dict:
    """Client kwargs carrying a Standard Webhooks signature of ``body``."""
    timestamp = timestamp or datetime.now(UTC)
    signature = Webhook(secret).sign(msg_id, timestamp, body.decode())
    return {
        "HTTP_WEBHOOK_ID": msg_id,
        "HTTP_WEBHOOK_TIMESTAMP": str(int(timestamp.timestamp())),
        "HTTP_WEBHOOK_SIGNATURE": signature,
    }
