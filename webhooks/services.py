"""Writes: ingesting an event, requeueing failed ones, pruning finished ones.

Ingestion stores first and answers at once: one ``INSERT ... ON CONFLICT (dedupe_key) DO
NOTHING RETURNING id`` (``webhooks.sql``); no id back means a duplicate delivery, answered with
the first event's id and changing nothing. Queued events ring the doorbell after commit; inline
ones are claimed and processed here through the same code a drainer runs.
"""

import logging
from dataclasses import dataclass
from datetime import timedelta
from enum import Enum

from django.db import connection, transaction
from django.db.models import F

from webhooks import conf, sql
from webhooks.claims import webhook_events_claim
from webhooks.doorbell import doorbell_ring_after_commit
from webhooks.models import EventSource, EventStatus, FINISHED_STATUSES, WebhookEvent
from webhooks.parsing import parse_event
from webhooks.processing import Result, webhook_event_process, worker_name
from webhooks.registry import handler_for

logger = logging.getLogger(__name__)


class IngestMode(str, Enum):
    QUEUED = "queued"  # stored; a drainer processes it
    INLINE = "inline"  # stored and processed in the request
    IGNORED = "ignored"  # stored as ignored: no handler for the type


@dataclass(frozen=True)
class IngestOutcome:
    event_id: int
    event_type: str
    dedupe_key: str
    duplicate: bool
    mode: IngestMode
    status: str


def ingest_mode(event_type: str) -> IngestMode:
    if handler_for(event_type) is None:
        return IngestMode.IGNORED
    if event_type == "EMAIL_SENT":
        return IngestMode.QUEUED if conf.email_sent_async() else IngestMode.INLINE
    return IngestMode.INLINE if event_type in conf.inline_event_types() else IngestMode.QUEUED


def webhook_event_ingest(*, body: bytes, headers, now,
                         source: EventSource = EventSource.HTTP) -> IngestOutcome:
    """Store one delivery (raises WebhookBadRequest for a body that is not an event)."""
    parsed = parse_event(body=body, webhook_id=headers.get("webhook-id", "") or "")
    mode = ingest_mode(parsed.event_type)
    ignored = mode == IngestMode.IGNORED
    values = {
        "provider": conf.SUPPORTED_PROVIDER,
        "event_type": parsed.event_type,
        "dedupe_key": parsed.dedupe_key,
        "webhook_id": parsed.webhook_id,
        "lead_email": parsed.lead_email,
        "source": str(source),
        "raw_body": bytes(body),
        "status": str(EventStatus.IGNORED if ignored else EventStatus.PENDING),
        "max_attempts": conf.max_attempts(),
        "next_attempt_at": None if ignored else now,
        "received_at": now,
        "processed_at": now if ignored else None,
    }
    event_id = _insert_unless_duplicate(values)
    if event_id is None:
        existing = WebhookEvent.objects.values("pk", "event_type", "status").get(
            dedupe_key=parsed.dedupe_key)
        logger.info("duplicate webhook delivery", extra={
            "action": "webhook_duplicate", "event_id": existing["pk"],
            "dedupe_key": parsed.dedupe_key})
        return IngestOutcome(existing["pk"], existing["event_type"], parsed.dedupe_key, True,
                             mode, existing["status"])
    status = values["status"]
    if mode == IngestMode.QUEUED:
        doorbell_ring_after_commit()
    elif mode == IngestMode.INLINE:
        status = webhook_event_process_now(event_id=event_id, now=now)
    return IngestOutcome(event_id, parsed.event_type, parsed.dedupe_key, False, mode, status)


def _insert_unless_duplicate(values: dict) -> int | None:
    """The new event's id, or None when its dedupe key is stored already."""
    params = {name: connection.ops.adapt_datetimefield_value(value)
              if name.endswith("_at") else value for name, value in values.items()}
    with connection.cursor() as cursor:
        cursor.execute(sql.INSERT_EVENT_UNLESS_DUPLICATE, params)
        row = cursor.fetchone()
    return row[0] if row else None


def webhook_event_process_now(*, event_id: int, now) -> str:
    """Claim one stored event and process it in this process (inline mode). Its status after."""
    for event in webhook_events_claim(now=now, limit=1, worker=worker_name("inline"),
                                      event_ids=[event_id]):
        if webhook_event_process(event=event) == Result.RETRIED:
            doorbell_ring_after_commit()
    return WebhookEvent.objects.values_list("status", flat=True).get(pk=event_id)


def webhook_events_requeue(*, event_ids, now, actor: str) -> int:
    """Failed events back to pending, due now, attempts reset to 0 (deliberately: an operator
    fixed the cause). The requeue is recorded on the event. Returns how many."""
    with transaction.atomic():
        count = WebhookEvent.objects.filter(pk__in=list(event_ids),
                                            status=EventStatus.FAILED).update(
            status=EventStatus.PENDING, attempts=0, next_attempt_at=now, processed_at=None,
            requeue_count=F("requeue_count") + 1, requeued_at=now, requeued_by=actor[:150],
        )
        if count:
            doorbell_ring_after_commit()
    logger.info("requeued webhook events", extra={"action": "webhook_requeued", "count": count,
                                                   "actor": actor})
    return count


def webhook_events_prune(*, now, batch_size: int | None = None) -> int:
    """Delete succeeded and ignored events past retention, one bounded batch. Failed events stay:
    nothing is deleted by failure."""
    cutoff = now - timedelta(days=conf.retention_days())
    old = WebhookEvent.objects.filter(status__in=FINISHED_STATUSES, processed_at__lt=cutoff)
    ids = list(old.order_by("processed_at").values_list("pk", flat=True)[
        :batch_size or conf.prune_batch_size()])
    if ids:
        WebhookEvent.objects.filter(pk__in=ids).delete()
    return len(ids)
