"""Concurrency slots: at most ``limit`` running runs per (function, key).

The lock is a row per held slot, unique on (function, key, slot number), so the database
enforces the limit across processes and machines on SQLite and PostgreSQL alike. A slot whose
run is no longer running under a live lease is stale: the next claimant deletes it and takes it,
so a dead worker never holds a slot past its lease. Call these inside the claim's transaction.
"""

from django.db import IntegrityError, transaction
from django.db.models import Q

from ledger.models import ConcurrencySlot, FunctionRun, RunStatus


def slot_acquire(*, run: FunctionRun, limit: int, now) -> int | None:
    """Take a free slot for ``run``; the slot number, or None when all ``limit`` are held."""
    ConcurrencySlot.objects.filter(run=run).delete()  # a leftover of this run's earlier attempt
    for number in range(limit):
        if _try_insert(run, number, now):
            return number
        held_by_live_run = Q(run__status=RunStatus.RUNNING, run__lease_expires_at__gt=now)
        stale = ConcurrencySlot.objects.filter(
            function=run.function, key=run.concurrency_key, slot=number
        ).exclude(held_by_live_run)
        if stale.delete()[0] and _try_insert(run, number, now):
            return number
    return None


def slot_release(*, run_id: int) -> None:
    ConcurrencySlot.objects.filter(run_id=run_id).delete()


def _try_insert(run: FunctionRun, number: int, now) -> bool:
    try:
        with transaction.atomic():
            ConcurrencySlot.objects.create(
                function=run.function,
                key=run.concurrency_key,
                slot=number,
                run=run,
                acquired_at=now,
            )
    except IntegrityError:
        return False
    return True
