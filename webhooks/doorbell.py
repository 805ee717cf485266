"""The doorbell: ingestion wakes a drainer at once instead of waiting for the next cron tick.

One row holds a flag. Ringing sets it with a compare-and-set and, only when it was clear,
enqueues one drain task (through ledger.enqueue, in the same transaction as the flag: on the ORM
broker both commit together, and a failed enqueue leaves the flag clear). A drain clears the
flag when it starts, so an event stored after that rings again: no wake-up is lost, and at most
one drain task waits in the broker however fast events arrive. A flag set longer than
DOORBELL_STALE_SECONDS (a task lost by the Redis broker) is rung through.
"""

import logging
from datetime import timedelta

from django.db import IntegrityError, transaction
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
    Raises the broker's error (nothing is left set when it does)."""
    stale_before = now - timedelta(seconds=conf.DOORBELL_STALE_SECONDS)
    with transaction.atomic():
        rung = DrainDoorbell.objects.filter(pk=DOORBELL_PK).filter(
            Q(pending=False) | Q(rung_at__lt=stale_before)
        ).update(pending=True, rung_at=now)
        if not rung and not _create_rung(now):
            return False
        enqueue(DRAIN_TASK, task_name=DRAIN_TASK_NAME,
                timeout_seconds=int(conf.drain_budget_seconds()) + conf.lease_seconds())
    return True


def _create_rung(now) -> bool:
    """The row does not exist yet (a fresh or flushed database): create it rung."""
    if DrainDoorbell.objects.filter(pk=DOORBELL_PK).exists():
        return False
    try:
        with transaction.atomic():
            DrainDoorbell.objects.create(pk=DOORBELL_PK, pending=True, rung_at=now)
    except IntegrityError:
        return False
    return True


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
