"""The doorbell: ingestion wakes a drainer at once instead of waiting for the next cron tick.

One row holds a flag. Ringing first reads it (a plain SELECT: no row lock, no transaction id,
no WAL, so concurrent requests never queue on the row) and stops when a drain is already waiting,
which under load is almost every ring. Only a clear (or stale) flag is set, with a compare-and-set
(one upsert statement), and only the caller that set it enqueues one drain task through
ledger.enqueue; a failed enqueue clears the flag again. A drain clears the flag when it starts,
so an event stored after that rings again: no wake-up is lost, and at most one drain task waits
in the broker however fast events arrive. A flag set longer than DOORBELL_STALE_SECONDS (a task
lost by the Redis broker) is rung through.

The ring runs after the event's commit, never inside its INSERT: a flag read before the commit
could see "pending" just before a drain clears it and claims, and the drain would miss the
event (a lost wake-up until the next cron tick).

A process that saw a drain waiting remembers it for RECALL_SECONDS and rings without a query in
that time (under load most deliveries then cost one statement, the INSERT). That memory can be
out of date only if a drain cleared the flag after the read, so a drain keeps claiming until
RECALL_SECONDS after its clear (``webhook_events_drain(linger_until=...)``): every event whose
ring was skipped on the memory was committed before then, and is claimed by that drain.
"""

import logging
import time
from datetime import UTC, timedelta

from django.db import connection, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from ledger.enqueue import enqueue
from webhooks import conf
from webhooks.models import DrainDoorbell

logger = logging.getLogger(__name__)
DRAIN_TASK = "webhooks.tasks.drain_on_doorbell"
DRAIN_TASK_NAME = "webhook-drain"
DOORBELL_PK = 1
# How long a process trusts that a drain is waiting, and how long a drain lingers after its clear.
RECALL_SECONDS = 0.1
_seen_waiting: tuple[float, object] | None = None  # (monotonic time before the read, rung_at)


def doorbell_ring(*, now) -> bool:
    """Enqueue a drain task unless one is waiting already. True when one was enqueued.
    Raises the broker's error, after clearing the flag again."""
    global _seen_waiting
    stale_before = now - timedelta(seconds=conf.DOORBELL_STALE_SECONDS)
    if _seen_waiting and time.monotonic() - _seen_waiting[0] < RECALL_SECONDS \
            and _seen_waiting[1] >= stale_before:
        return False
    asked_at = time.monotonic()  # before the read: a drain that clears later lingers past this
    rung_at = _flag_waiting(stale_before)
    if rung_at is not None:
        _seen_waiting = (asked_at, rung_at)
        return False
    if not _flag_set(now, stale_before):
        return False
    _seen_waiting = (asked_at, now)
    try:
        enqueue(DRAIN_TASK, task_name=DRAIN_TASK_NAME,
                timeout_seconds=int(conf.drain_budget_seconds()) + conf.lease_seconds())
    except Exception:
        _seen_waiting = None
        DrainDoorbell.objects.filter(pk=DOORBELL_PK).update(pending=False)
        raise
    return True


def doorbell_forget() -> None:
    """Drop this process's memory of a waiting drain (a drain here cleared the flag; tests)."""
    global _seen_waiting
    _seen_waiting = None


def _flag_waiting(stale_before):
    """A read, no lock: the ``rung_at`` of a drain task enqueued since ``stale_before`` that has
    not started yet (nothing to do), else None."""
    table = connection.ops.quote_name(DrainDoorbell._meta.db_table)
    prep = DrainDoorbell._meta.get_field("rung_at").get_db_prep_value
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT rung_at FROM {table} WHERE id = %s AND pending AND rung_at >= %s",
                       [DOORBELL_PK, prep(stale_before, connection)])
        row = cursor.fetchone()
    return None if row is None else _aware(row[0])


def _aware(value):
    """A timestamp read with a raw cursor: aware from PostgreSQL, naive UTC from SQLite."""
    if isinstance(value, str):
        value = parse_datetime(value)
    return timezone.make_aware(value, UTC) if timezone.is_naive(value) else value


def _flag_set(now, stale_before) -> bool:
    """One statement, whatever state the row is in (missing after a flush, idle, pending,
    stale): True when this call set the flag."""
    table = connection.ops.quote_name(DrainDoorbell._meta.db_table)
    prep = DrainDoorbell._meta.get_field("rung_at").get_db_prep_value
    sql = (f"INSERT INTO {table} (id, pending, rung_at) VALUES (%s, true, %s) "
           f"ON CONFLICT (id) DO UPDATE SET pending = true, rung_at = excluded.rung_at "
           f"WHERE {table}.pending = false OR {table}.rung_at < %s RETURNING id")
    with connection.cursor() as cursor:
        cursor.execute(sql, [DOORBELL_PK, prep(now, connection), prep(stale_before, connection)])
        return cursor.fetchone() is not None


def doorbell_clear(*, now) -> float:
    """A drain is starting: the next stored event may ring again. Returns the monotonic time
    until which the drain must keep claiming (see RECALL_SECONDS)."""
    DrainDoorbell.objects.filter(pk=DOORBELL_PK, pending=True).update(pending=False,
                                                                      cleared_at=now)
    doorbell_forget()
    return time.monotonic() + RECALL_SECONDS


def doorbell_ring_after_commit() -> None:
    """Ring once the current transaction commits; a failure is logged, never raised: the event
    is stored and the next ``process-background-jobs`` drains it."""
    transaction.on_commit(_ring_quietly)


def _ring_quietly() -> None:
    try:
        doorbell_ring(now=timezone.now())
    except Exception:
        logger.exception("could not ring the drain doorbell",
                         extra={"action": "webhook_doorbell_failed"})
