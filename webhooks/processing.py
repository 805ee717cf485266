"""Processing claimed events: the handler and the finish run in one transaction, so an event
whose claim was lost (its lease expired and another drainer took it) rolls its work back.

``webhook_events_drain`` claims batches until the queue is empty or the time budget is spent and
returns the counts ``process-background-jobs`` reports.
"""

import json
import logging
import os
import socket
import threading
import time
import traceback
from enum import Enum

from django.db import transaction
from django.utils import timezone

from ledger import metrics
from ledger.exceptions import NonRetryableError
from webhooks import conf
from webhooks.claims import (
    ClaimedEvent,
    webhook_event_fail,
    webhook_event_succeed,
    webhook_events_claim,
    webhook_events_rescue,
)
from webhooks.exceptions import LeaseLost, TerminalEventError, WebhookBadRequest
from webhooks.models import EventStatus
from webhooks.parsing import parse_body
from webhooks.registry import EventContext, handler_for
from webhooks.selectors import webhook_events_due
from webhooks.text import clean_text

logger = logging.getLogger(__name__)
RESULT_MAX_BYTES = 4096
TERMINAL_ERRORS = (TerminalEventError, NonRetryableError, WebhookBadRequest)


class Result(str, Enum):
    SUCCEEDED = "succeeded"
    RETRIED = "retried"
    FAILED = "failed"
    SKIPPED = "skipped"  # the claim was lost; another drainer owns the event now


def worker_name(role: str = "drain") -> str:
    return f"{role}@{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"[:128]


def webhook_event_process(*, event: ClaimedEvent, clock=timezone.now) -> Result:
    """Run the event's handler and record the outcome, fenced by the claim token."""
    started = time.monotonic()
    result = _process(event=event, clock=clock)
    metrics.webhook_processed(event_type=event.event_type, seconds=time.monotonic() - started)
    return result


def _process(*, event: ClaimedEvent, clock) -> Result:
    log = {"event_id": event.id, "event_type": event.event_type, "attempt": event.attempts}
    try:
        handler = handler_for(event.event_type)
        if handler is None:
            raise TerminalEventError(f"no handler is registered for {event.event_type}; "
                                     "register one and requeue the event")
        context = EventContext(event_id=event.id, event_type=event.event_type,
                               dedupe_key=event.dedupe_key, payload=parse_body(event.raw_body),
                               received_at=event.received_at, attempt=event.attempts)
        with transaction.atomic():
            result = handler(event=context)
            if not webhook_event_succeed(event=event, result=small_result(result), now=clock()):
                raise LeaseLost
    except LeaseLost:
        logger.warning("webhook claim lost", extra={"action": "webhook_claim_lost", **log})
        return Result.SKIPPED
    except Exception as error:
        terminal = isinstance(error, TERMINAL_ERRORS)
        status = webhook_event_fail(event=event, error=_describe(error, terminal),
                                    terminal=terminal, now=clock())
        logger.warning("webhook handler failed", extra={
            "action": "webhook_failed", "terminal": terminal, "status": status, **log})
        if status is None:
            return Result.SKIPPED
        return Result.FAILED if status == EventStatus.FAILED else Result.RETRIED
    return Result.SUCCEEDED


def webhook_events_drain(*, budget_seconds: float | None = None, worker: str | None = None,
                         batch_size: int | None = None, clock=timezone.now) -> dict:
    """Process due events until none are left or ``budget_seconds`` is spent (a claimed batch
    is always finished). Rescues expired leases first."""
    budget = conf.drain_budget_seconds() if budget_seconds is None else budget_seconds
    deadline = time.monotonic() + budget
    worker = worker or worker_name()
    counts = {result.value: 0 for result in Result}
    webhook_events_rescue(now=clock())
    while time.monotonic() < deadline:
        batch = webhook_events_claim(now=clock(), limit=batch_size or conf.batch_size(),
                                     worker=worker)
        if not batch:
            break
        for event in batch:
            counts[webhook_event_process(event=event, clock=clock).value] += 1
    processed = sum(counts.values())
    remaining = webhook_events_due(now=clock()).count()
    if processed:
        logger.info("webhook events drained", extra={"action": "webhook_drained",
                                                      "processed": processed, **counts})
    return {"processed": processed, **counts, "remaining": remaining}


def small_result(result) -> dict | None:
    """The handler's result as small JSON (no NUL: PostgreSQL's jsonb refuses it)."""
    if result is None:
        return None
    text = json.dumps(result, default=str).replace("\\u0000", "")
    if len(text) > RESULT_MAX_BYTES:
        return {"truncated": True}
    return json.loads(text)


def _describe(error: BaseException, terminal: bool) -> str:
    kind = "terminal" if terminal else "retryable"
    detail = "".join(traceback.format_exception_only(type(error), error)).strip()
    return clean_text(f"[{kind}] {detail}", max_chars=conf.ERROR_MAX_CHARS)
