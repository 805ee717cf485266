"""Handlers per event type. The app that owns the domain (jobs) registers them at start-up, so
webhooks never imports upward. A type with no handler is stored and marked ``ignored``.

A handler is ``handler(*, event: EventContext) -> dict | None``. It raises
``TerminalEventError`` for data that can never work (fails at once) and anything else for
trouble that may pass (retried with backoff). It must be idempotent on provider ids: a retry or
a duplicate re-delivery must leave the same data.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from webhooks.exceptions import DuplicateHandler

# The provider's event types (CONTRACT.md "Webhook"), in the order GET lists them.
EVENT_TYPES = (
    "EMAIL_SENT",
    "LEAD_REPLIED",
    "LEAD_INTERESTED",
    "UNTRACKED_REPLY_RECEIVED",
    "EMAIL_OPENED",
    "EMAIL_BOUNCED",
    "LEAD_UNSUBSCRIBED",
)
REPLY_EVENT_TYPES = frozenset({"LEAD_REPLIED", "LEAD_INTERESTED", "UNTRACKED_REPLY_RECEIVED"})


@dataclass(frozen=True)
class EventContext:
    """What a handler receives: the parsed body and the stored event's identity."""

    event_id: int
    event_type: str
    dedupe_key: str
    payload: dict
    received_at: datetime
    attempt: int


Handler = Callable[..., dict | None]
_handlers: dict[str, Handler] = {}


def register_handler(event_type: str, handler: Handler, *, replace: bool = False) -> None:
    event_type = event_type.upper()
    if event_type in _handlers and not replace:
        raise DuplicateHandler(
            f"A handler for {event_type} is registered already "
            f"({_handlers[event_type].__module__}); register one handler per type."
        )
    _handlers[event_type] = handler


def unregister_handler(event_type: str) -> None:
    _handlers.pop(event_type.upper(), None)


def handler_for(event_type: str) -> Handler | None:
    return _handlers.get(event_type)


def supported_event_types() -> list[str]:
    """Types with a handler: the contract's in its order, then any others alphabetically."""
    known = [t for t in EVENT_TYPES if t in _handlers]
    return known + sorted(t for t in _handlers if t not in EVENT_TYPES)
