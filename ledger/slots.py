"""Concurrency slots: at most ``limit`` running runs per (function, key).

The lock is a row per held slot, unique on (function, key, slot number), so the database
enforces the limit across processes and machines on SQLite and PostgreSQL alike. A slot whose
run is no longer running under a live lease is stale: the next claimant deletes it and takes it,
so a dead worker never holds a slot past its lease. Call these inside the claim's transaction.

A run that finds every slot held marks them (``waiters``) so the release knows to wake it; a
release of an unmarked slot looks for no waiting run. A try is an INSERT in a savepoint: a taken
slot is the unique constraint's ``IntegrityError``, and the claim's transaction goes on.
"""

from django.db import IntegrityError, transaction
from django.db.models import Q

from ledger.models import ConcurrencySlot, FunctionRun, RunStatus


def slot_acquire(*, run: FunctionRun, limit: int, now) -> int | None:
    """Take a free slot for ``run``; the slot number, or None when all ``limit`` are held.

    ``run.attempt`` is the number of attempts started before this claim: on the first (0) the run
    never held a slot, so there is no leftover to delete."""
    if run.attempt:
        ConcurrencySlot.objects.filter(run=run).delete()  # a leftover of an earlier attempt
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


def slot_mark_waiters(*, run: FunctionRun) -> bool:
    """Every slot was held when ``run`` tried: mark the held slots so that their release wakes a
    waiting run. False when none is held any more (released meanwhile: claim again).

    On PostgreSQL a release committing meanwhile either comes first (nothing marked: False) or
    waits for this transaction's row lock and then sees the mark; SQLite serializes writers."""
    return bool(ConcurrencySlot.objects.filter(
        function=run.function, key=run.concurrency_key).update(waiters=True))


def slot_release(*, run_id: int) -> bool:
    """Release the run's slot; True when a waiting run had marked it (wake one).

    The slot row is locked before it is read, so a claim marking it meanwhile either commits
    first (its mark is read here) or finds the row gone and claims again."""
    held = ConcurrencySlot.objects.select_for_update().filter(run_id=run_id)
    waiters = any(held.values_list("waiters", flat=True))
    held.delete()
    return waiters


def _try_insert(run: FunctionRun, number: int, now) -> bool:
    """True when the slot row was inserted; False when (function, key, slot) is taken."""
    try:
        with transaction.atomic():
            ConcurrencySlot.objects.create(function=run.function, key=run.concurrency_key,
                                           slot=number, run=run, acquired_at=now)
    except IntegrityError:
        return False
    return True
