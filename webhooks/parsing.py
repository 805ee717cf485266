"""From raw bytes to what ingestion needs: the parsed body, its type and its dedupe key.

Dedupe key (CONTRACT.md): ``EMAIL_SENT`` -> ``inboxxia:EMAIL_SENT:<scheduled_email.id>``;
replies -> ``inboxxia:<type>:<reply.id>``; otherwise the ``webhook-id`` header; otherwise the
SHA-256 of the raw body. Anything the parser cannot use is a WebhookBadRequest (400).
"""

import hashlib
import json
from dataclasses import dataclass

from webhooks.exceptions import WebhookBadRequest
from webhooks.registry import REPLY_EVENT_TYPES
from webhooks.text import clean_text

KEY_MAX_CHARS = 255
TYPE_MAX_CHARS = 64


@dataclass(frozen=True)
class ParsedEvent:
    payload: dict
    event_type: str
    dedupe_key: str
    webhook_id: str
    lead_email: str


def parse_body(body: bytes) -> dict:
    """The JSON object in ``body``. Bytes that are not UTF-8 are decoded with replacement (the
    raw body keeps them as sent); anything that is not a JSON object is a WebhookBadRequest."""
    if not body or not body.strip():
        raise WebhookBadRequest("empty body: send the event as a JSON object")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        text = body.decode("utf-8", "replace")
    try:
        payload = json.loads(text.removeprefix("\ufeff"))
    except (ValueError, RecursionError):  # JSONDecodeError, huge ints, absurd nesting
        raise WebhookBadRequest("body is not JSON") from None
    if not isinstance(payload, dict):
        raise WebhookBadRequest("body is not a JSON object")
    return payload


def provider_id(value) -> str:
    """A provider id as text: a whole number or a non-empty string, else ""."""
    if isinstance(value, bool) or value is None:
        return ""
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return clean_text(value).strip()
    return ""


def section(payload: dict, *path: str) -> dict:
    """``payload[path[0]][path[1]]...`` when every step is an object, else {}."""
    node = payload
    for name in path:
        node = node.get(name) if isinstance(node, dict) else None
    return node if isinstance(node, dict) else {}


def event_type_of(payload: dict) -> str:
    raw = section(payload, "event").get("type")
    event_type = clean_text(raw, max_chars=TYPE_MAX_CHARS).strip().upper() if isinstance(
        raw, str) else ""
    if not event_type:
        raise WebhookBadRequest("event.type is missing: not an EmailBison/Inboxxia event")
    return event_type


def dedupe_key_of(*, payload: dict, event_type: str, body: bytes, webhook_id: str) -> str:
    if event_type == "EMAIL_SENT":
        scheduled_id = provider_id(section(payload, "data", "scheduled_email").get("id"))
        if not scheduled_id:
            raise WebhookBadRequest("EMAIL_SENT without data.scheduled_email.id")
        return _bounded(f"inboxxia:EMAIL_SENT:{scheduled_id}")
    if event_type in REPLY_EVENT_TYPES:
        reply_id = provider_id(section(payload, "data", "reply").get("id"))
        if not reply_id:
            raise WebhookBadRequest(f"{event_type} without data.reply.id")
        return _bounded(f"inboxxia:{event_type}:{reply_id}")
    if webhook_id:
        return _bounded(webhook_id)
    return hashlib.sha256(body).hexdigest()


def lead_email_of(payload: dict) -> str:
    data = section(payload, "data")
    email = section(data, "lead").get("email") or section(data, "reply").get("from_email_address")
    return clean_text(email, max_chars=254).strip().lower() if isinstance(email, str) else ""


def parse_event(*, body: bytes, webhook_id: str = "") -> ParsedEvent:
    payload = parse_body(body)
    event_type = event_type_of(payload)
    webhook_id = clean_text(webhook_id, max_chars=KEY_MAX_CHARS).strip()
    return ParsedEvent(
        payload=payload,
        event_type=event_type,
        dedupe_key=dedupe_key_of(payload=payload, event_type=event_type, body=body,
                                 webhook_id=webhook_id),
        webhook_id=webhook_id,
        lead_email=lead_email_of(payload),
    )


def _bounded(key: str) -> str:
    """Keys longer than the column keep their prefix and end in a hash of the whole key."""
    if len(key) <= KEY_MAX_CHARS:
        return key
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()
    return f"{key[:KEY_MAX_CHARS - 65]}:{digest}"
