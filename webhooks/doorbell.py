"""The doorbell: ingestion wakes a drainer at once instead of waiting for the next cron tick.

One row holds a flag. Ringing reads it and stops when a drain task is already waiting (under
load, almost every ring). Otherwise it sets the flag with a compare-and-set, and only the caller
that set it enqueues one drain task through ``ledger.enqueue``; a failed enqueue clears the flag
again. A drain clears the flag when it starts, so an event stored after that rings again: at
most one drain task waits in the broker however fast events arrive, and no wake-up is lost (an
event committed before a ring that found the flag set is claimed by the drain that clears it,
which claims after its clear).

A flag set longer than ``DOORBELL_STALE_SECONDS`` (its task lost with a killed cluster or by
Redis) is rung through; the ledger's sweeper also rings every minute while due events wait
(``webhooks.wake``), so a stranded queue never waits for the next delivery.

The ring runs after the event's commit, never inside its INSERT: a flag read before the commit
could see "pending" just before a drain clears it and claims, and the drain would miss the
event.
"""

import logging
from datetime import timedelta

from django.db import transaction
from django.db.models import Q
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
    waiting = DrainDoorbell.objects.filter(pk=DOORBELL_PK, pending=True,
                                           rung_at__gte=stale_before)
    if waiting.exists() or not _flag_set(now, stale_before):
        return False
    try:
        enqueue(DRAIN_TASK, task_name=DRAIN_TASK_NAME,
                timeout_seconds=int(conf.doorbell_budget_seconds()) + conf.lease_seconds())
    except Exception:
        DrainDoorbell.objects.filter(pk=DOORBELL_PK).update(pending=False)
        raise
    return True


def _flag_set(now, stale_before) -> bool:
    """Compare-and-set the flag from clear (or stale) to pending: True when this call set it.
    The row is made on the first ring after a flush."""
    idle = Q(pending=False) | Q(rung_at__lt=stale_before) | Q(rung_at__isnull=True)
    if DrainDoorbell.objects.filter(idle, pk=DOORBELL_PK).update(pending=True, rung_at=now):
        return True
    _, created = DrainDoorbell.objects.get_or_create(
        pk=DOORBELL_PK, defaults={"pending": True, "rung_at": now})
    return created


def doorbell_clear(*, now) -> None:
    """A drain is starting: the next stored event may ring again."""
    DrainDoorbell.objects.filter(pk=DOORBELL_PK, pending=True).update(pending=False,
                                                                      cleared_at=now)


def doorbell_ring_after_commit() -> None:
    """Ring once the current transaction commits; a failure is logged, never raised: the event
    is stored and the sweeper's next pass (or ``process-background-jobs``) drains it."""
    transaction.on_commit(_ring_quietly)


def _ring_quietly() -> None:
    try:
        doorbell_ring(now=timezone.now())
    except Exception:
        logger.exception("could not ring the drain doorbell",
                         extra={"action": "webhook_doorbell_failed"})
