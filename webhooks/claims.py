"""Claiming events: one drainer per event, a token and a lease, finishes fenced by the token.

- PostgreSQL: ``UPDATE ... FROM (SELECT ... FOR UPDATE SKIP LOCKED LIMIT n) RETURNING``;
  concurrent drainers skip each other's rows instead of waiting or double-claiming.
- SQLite: one ``UPDATE ... WHERE id IN (SELECT ... LIMIT n) RETURNING`` in an IMMEDIATE
  transaction (Django's select_for_update is a no-op there; the write lock serialises claims).
Both read the partial index on due pending rows. A claim counts an attempt, so a drainer that
dies mid-batch has used one: the rescue sends the event back, or fails it after max_attempts.
"""

import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db import connection, transaction
from django.db.models import F
from django.utils.dateparse import parse_datetime

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


def _prep(field: str, value):
    return WebhookEvent._meta.get_field(field).get_db_prep_value(value, connection)


RETURNED = "id, event_type, dedupe_key, raw_body, attempts, max_attempts, received_at"


def _claim_sql(*, only_ids: bool) -> str:
    table = connection.ops.quote_name(WebhookEvent._meta.db_table)
    postgres = connection.vendor == "postgresql"
    only = ""
    if only_ids:
        only = "AND id = ANY(%s)" if postgres else "AND id IN (SELECT value FROM json_each(%s))"
    due = (f"SELECT id FROM {table} WHERE status = 'pending' AND next_attempt_at <= %s {only} "
           "ORDER BY next_attempt_at, id LIMIT %s")
    assign = ("status = 'processing', claim_token = %s, claimed_by = %s, lease_expires_at = %s, "
              "attempts = attempts + 1")
    if postgres:
        returned = ", ".join(f"e.{column}" for column in RETURNED.split(", "))
        return (f"UPDATE {table} AS e SET {assign} FROM ({due} FOR UPDATE SKIP LOCKED) AS due "
                f"WHERE e.id = due.id RETURNING {returned}")
    return (f"UPDATE {table} SET {assign} WHERE id IN ({due}) AND status = 'pending' "
            f"RETURNING {RETURNED}")


def webhook_events_claim(*, now: datetime, limit: int, worker: str,
                         lease_seconds: int | None = None,
                         event_ids: list[int] | None = None) -> list[ClaimedEvent]:
    """Claim up to ``limit`` due pending events (oldest due first) for ``worker``."""
    token = uuid.uuid4()
    lease = now + timedelta(seconds=lease_seconds or conf.lease_seconds())
    params = [_prep("claim_token", token), worker[:128], _prep("lease_expires_at", lease),
              _prep("next_attempt_at", now)]
    if event_ids is not None:
        if connection.vendor == "postgresql":
            params.append(list(event_ids))
        else:
            params.append("[" + ",".join(str(int(i)) for i in event_ids) + "]")
    params.append(int(limit))
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_claim_sql(only_ids=event_ids is not None), params)
        rows = cursor.fetchall()
    claimed = [
        ClaimedEvent(id=row[0], event_type=row[1], dedupe_key=row[2], raw_body=bytes(row[3]),
                     attempts=row[4], max_attempts=row[5],
                     received_at=_as_datetime(row[6]), claim_token=token)
        for row in rows
    ]
    return sorted(claimed, key=lambda event: event.id)


def _as_datetime(value) -> datetime:
    """SQLite hands RETURNING datetimes back as text (stored in UTC)."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return parse_datetime(value).replace(tzinfo=UTC)


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
