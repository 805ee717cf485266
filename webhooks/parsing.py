"""From raw bytes to what ingestion needs: the parsed body, its type and its dedupe key.

Dedupe key, one namespace per source so no source can take another's key (CONTRACT.md keeps
the first two): ``EMAIL_SENT`` -> ``inboxxia:EMAIL_SENT:<scheduled_email.id>``; replies ->
``inboxxia:<type>:<reply.id>``; otherwise ``webhook-id:<webhook-id header>``; otherwise
``sha256:<hex of the raw body>``. Ids are compared as sent (only surrounding whitespace is
trimmed): a key longer than the column, or one that is not storable text (NUL, lone
surrogates), is stored as ``sha256-of:<hex>``, the hash of its exact JSON text (see
``storable``). Provider times are checked here too (webhooks.dates). Anything the parser
cannot use is a WebhookBadRequest (400).
"""

import hashlib
import json
from dataclasses import dataclass

from webhooks.dates import provider_datetime
from webhooks.exceptions import WebhookBadRequest
from webhooks.registry import REPLY_EVENT_TYPES
from webhooks.text import clean_text

KEY_MAX_CHARS = 255
TYPE_MAX_CHARS = 64
HASHED_PREFIX = "sha256-of:"  # marks a value stored as the hash of what was sent
# Where each event type carries a provider time: (path to its object, field name).
DATETIME_FIELDS = {
    "EMAIL_SENT": ((("data", "scheduled_email"), "sent_at"),),
    **{event_type: ((("data", "reply"), "date_received"), (("data", "reply"), "created_at"))
       for event_type in REPLY_EVENT_TYPES},
}


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
    """A provider id as clean text (for lookups and display): a whole number or a non-empty
    string, else ""."""
    return clean_text(sent_id(value)).strip()


def sent_id(value) -> str:
    """A provider id as sent (surrounding whitespace trimmed): a whole number or a string,
    else ""."""
    if isinstance(value, bool) or value is None:
        return ""
    if isinstance(value, int):
        return str(value)
    return value.strip() if isinstance(value, str) else ""


def storable(value: str, *, max_chars: int) -> str:
    """``value`` itself when it fits ``max_chars``, is clean text and does not start with
    HASHED_PREFIX; otherwise HASHED_PREFIX and the SHA-256 of its exact JSON text (lone
    surrogates escaped, so distinct values stay distinct), cut to ``max_chars``. Injective
    (up to SHA-256): kept values never start with the prefix, hashed ones always do."""
    if (len(value) <= max_chars and clean_text(value) == value
            and not value.startswith(HASHED_PREFIX)):
        return value
    digest = hashlib.sha256(json.dumps(value).encode("ascii")).hexdigest()
    return (HASHED_PREFIX + digest)[:max_chars]


def provider_id_column(value, *, max_chars: int) -> str:
    """A provider id for a unique text column of ``max_chars``: as sent when it fits, else
    hashed whole (``storable``); "" when there is none."""
    identifier = sent_id(value)
    return storable(identifier, max_chars=max_chars) if identifier else ""


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
    """The event's dedupe key (module docstring); ``webhook_id`` is the header as sent."""
    if event_type == "EMAIL_SENT":
        scheduled_id = sent_id(section(payload, "data", "scheduled_email").get("id"))
        if not clean_text(scheduled_id).strip():
            raise WebhookBadRequest("EMAIL_SENT without data.scheduled_email.id")
        return storable(f"inboxxia:EMAIL_SENT:{scheduled_id}", max_chars=KEY_MAX_CHARS)
    if event_type in REPLY_EVENT_TYPES:
        reply_id = sent_id(section(payload, "data", "reply").get("id"))
        if not clean_text(reply_id).strip():
            raise WebhookBadRequest(f"{event_type} without data.reply.id")
        return storable(f"inboxxia:{event_type}:{reply_id}", max_chars=KEY_MAX_CHARS)
    if webhook_id.strip():
        return storable(f"webhook-id:{webhook_id.strip()}", max_chars=KEY_MAX_CHARS)
    return f"sha256:{hashlib.sha256(body).hexdigest()}"


def provider_datetimes_check(*, payload: dict, event_type: str) -> None:
    """Refuse (400, naming the field) provider times that could not be stored and read back."""
    for path, name in DATETIME_FIELDS.get(event_type, ()):
        provider_datetime(section(payload, *path).get(name), field=".".join((*path, name)))


def lead_email_of(payload: dict) -> str:
    data = section(payload, "data")
    email = section(data, "lead").get("email") or section(data, "reply").get("from_email_address")
    return clean_text(email, max_chars=254).strip().lower() if isinstance(email, str) else ""


def parse_event(*, body: bytes, webhook_id: str = "") -> ParsedEvent:
    payload = parse_body(body)
    event_type = event_type_of(payload)
    dedupe_key = dedupe_key_of(payload=payload, event_type=event_type, body=body,
                               webhook_id=webhook_id)
    provider_datetimes_check(payload=payload, event_type=event_type)
    return ParsedEvent(
        payload=payload,
        event_type=event_type,
        dedupe_key=dedupe_key,
        webhook_id=clean_text(webhook_id, max_chars=KEY_MAX_CHARS).strip(),
        lead_email=lead_email_of(payload),
    )
