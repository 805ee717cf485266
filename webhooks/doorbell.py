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
"""

import logging
from datetime import timedelta

from django.db import connection, transaction
from django.utils import timezone

from ledger.enqueue import enqueue
from webhooks import conf
from webhooks.models import DrainDoorbell

logger = logging.getLogger(__name__)
DRAIN_TASK = "webhooks.tasks.drain_on_doorbell"
DRAIN_TASK_NAME = "webhook-drain"
DOORBELL_PK = 1


def doorbell_ring(*, now) -> bool:
    """Enqueue a drain task unless one is waiting already. True when one was enqueued.
    Raises the broker's error, after clearing the flag again."""
    stale_before = now - timedelta(seconds=conf.DOORBELL_STALE_SECONDS)
    if _flag_waiting(stale_before) or not _flag_set(now, stale_before):
        return False
    try:
        enqueue(DRAIN_TASK, task_name=DRAIN_TASK_NAME,
                timeout_seconds=int(conf.drain_budget_seconds()) + conf.lease_seconds())
    except Exception:
        DrainDoorbell.objects.filter(pk=DOORBELL_PK).update(pending=False)
        raise
    return True


def _flag_waiting(stale_before) -> bool:
    """A read, no lock: True when a drain task was enqueued since ``stale_before`` and has not
    started yet (nothing to do)."""
    table = connection.ops.quote_name(DrainDoorbell._meta.db_table)
    prep = DrainDoorbell._meta.get_field("rung_at").get_db_prep_value
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT 1 FROM {table} WHERE id = %s AND pending AND rung_at >= %s",
                       [DOORBELL_PK, prep(stale_before, connection)])
        return cursor.fetchone() is not None


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


def doorbell_clear(*, now) -> None:
    """A drain is starting: the next stored event may ring again."""
    DrainDoorbell.objects.filter(pk=DOORBELL_PK, pending=True).update(pending=False,
                                                                      cleared_at=now)


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
