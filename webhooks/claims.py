"""Claiming events: one drainer per event, a token and a lease, finishes fenced by the token.

A claim locks the oldest due pending rows with ``SELECT ... FOR UPDATE SKIP LOCKED`` (PostgreSQL:
concurrent drainers skip each other's rows instead of waiting or double-claiming; SQLite: the
IMMEDIATE transaction's write lock serialises claims, and ``select_for_update`` is a no-op), then
marks them ``processing`` in one UPDATE, in one transaction. Both read the partial index on due
pending rows. A claim counts an attempt, so a drainer that dies mid-batch has used one: the
rescue sends the event back, or fails it after max_attempts.
"""

import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import F

from webhooks import conf
from webhooks.models import EventStatus, WebhookEvent


@dataclass(frozen=True)
class ClaimedEvent:
    id: int
    event_type: str
    dedupe_key: str
    raw_body: bytes
    attempts: int
    max_attempts: int
    received_at: datetime
    claim_token: uuid.UUID


def webhook_events_claim(*, now: datetime, limit: int, worker: str,
                         lease_seconds: int | None = None,
                         event_ids: list[int] | None = None) -> list[ClaimedEvent]:
    """Claim up to ``limit`` due pending events (oldest due first) for ``worker``."""
    token = uuid.uuid4()
    lease = now + timedelta(seconds=lease_seconds or conf.lease_seconds())
    due = WebhookEvent.objects.filter(status=EventStatus.PENDING, next_attempt_at__lte=now)
    if event_ids is not None:
        due = due.filter(pk__in=list(event_ids))
    with transaction.atomic():
        rows = list(
            due.select_for_update(skip_locked=True)
            .order_by("next_attempt_at", "id")
            .values_list("id", "event_type", "dedupe_key", "raw_body", "attempts",
                         "max_attempts", "received_at")[:limit]
        )
        if rows:
            WebhookEvent.objects.filter(pk__in=[row[0] for row in rows]).update(
                status=EventStatus.PROCESSING, claim_token=token, claimed_by=worker[:128],
                lease_expires_at=lease, attempts=F("attempts") + 1)
    return [
        ClaimedEvent(id=pk, event_type=event_type, dedupe_key=dedupe_key,
                     raw_body=bytes(raw_body), attempts=attempts + 1, max_attempts=max_attempts,
                     received_at=received_at, claim_token=token)
        for pk, event_type, dedupe_key, raw_body, attempts, max_attempts, received_at
        in sorted(rows)
    ]


def backoff_seconds(attempts: int, *, rng: random.Random | None = None) -> float:
    """2^attempts s plus up to a quarter of it as jitter, capped at 15 minutes."""
    base = 2.0 ** min(attempts, 20)
    return min(conf.BACKOFF_CAP_SECONDS, base + (rng or random).uniform(0, base / 4))


def _mine(event: ClaimedEvent):
    return WebhookEvent.objects.filter(pk=event.id, claim_token=event.claim_token,
                                       status=EventStatus.PROCESSING)


def webhook_event_succeed(*, event: ClaimedEvent, result: dict | None, now: datetime) -> bool:
    """Mark succeeded, fenced by the claim token. False when the claim was lost."""
    return bool(_mine(event).update(
        status=EventStatus.SUCCEEDED, processed_at=now, result=result, last_error="",
        claim_token=None, lease_expires_at=None, next_attempt_at=None,
    ))


def webhook_event_fail(*, event: ClaimedEvent, error: str, terminal: bool,
                       now: datetime) -> EventStatus | None:
    """Retry later with backoff, or fail for good when terminal or out of attempts. Fenced by
    the token; returns the new status, or None when the claim was lost."""
    error = error[:conf.ERROR_MAX_CHARS]
    if terminal or event.attempts >= event.max_attempts:
        status, changes = EventStatus.FAILED, {"processed_at": now, "next_attempt_at": None}
    else:
        status = EventStatus.PENDING
        changes = {"next_attempt_at": now + timedelta(seconds=backoff_seconds(event.attempts))}
    updated = _mine(event).update(status=status, last_error=error, claim_token=None,
                                  lease_expires_at=None, **changes)
    return status if updated else None


def webhook_events_rescue(*, now: datetime) -> dict:
    """Events whose lease expired (their drainer died): back to pending while attempts remain,
    else failed. Both updates re-check the lease, so a live drainer's event is never touched."""
    expired = WebhookEvent.objects.filter(status=EventStatus.PROCESSING,
                                          lease_expires_at__lte=now)
    message = "lease expired: the drainer stopped before finishing (attempt counted)"
    with transaction.atomic():
        failed = expired.filter(attempts__gte=F("max_attempts")).update(
            status=EventStatus.FAILED, processed_at=now, last_error=message, claim_token=None,
            lease_expires_at=None, next_attempt_at=None)
        retried = expired.update(status=EventStatus.PENDING, next_attempt_at=now,
                                 last_error=message, claim_token=None, lease_expires_at=None)
    return {"rescued": retried, "failed": failed}
