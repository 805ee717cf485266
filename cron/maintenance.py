"""The cron app's maintenance steps: windows left ``dispatching`` are settled (every minute, on
the ledger sweeper's schedule too), windows and paused triggers past retention pruned, each in
one bounded batch. Override audit rows are never pruned."""

import logging
from datetime import timedelta

from cron import conf
from cron.models import DispatchWindow, PausedTrigger, WindowStatus
from ledger.models import FunctionRun, RunStatus
from ledger.services import function_runs_send

logger = logging.getLogger(__name__)
# A Redis dispatch pushes within a request (a few seconds at most, with the broker's own
# timeouts); a window ``dispatching`` for longer than this lost its process.
SETTLE_AFTER_SECONDS = 60
SETTLE_BATCH = 100


def dispatch_windows_settle(*, now) -> dict:
    """Windows left ``dispatching`` by a process that died between its commit and its pushes:
    send their runs that were never sent, then mark them ``enqueued`` (compare-and-set). A
    broker that still refuses leaves the window for the next pass."""
    stale = DispatchWindow.objects.filter(
        status=WindowStatus.DISPATCHING,
        updated_at__lt=now - timedelta(seconds=SETTLE_AFTER_SECONDS),
    ).order_by("updated_at")[:SETTLE_BATCH]
    settled = failed = 0
    for window in stale:
        unsent = FunctionRun.objects.filter(task_id__in=window.task_ids, status=RunStatus.QUEUED,
                                            enqueued_at__isnull=True).order_by("pk")
        try:
            function_runs_send(runs=list(unsent), now=now)
        except Exception:
            logger.exception("could not send a stale window's runs", extra={
                "action": "cron_window_settle_failed", "dispatch_key": window.dispatch_key})
            failed += 1
            continue
        settled += DispatchWindow.objects.filter(
            pk=window.pk, status=WindowStatus.DISPATCHING).update(
            status=WindowStatus.ENQUEUED, updated_at=now)
    if settled:
        logger.warning("settled windows left dispatching", extra={
            "action": "cron_windows_settled", "count": settled})
    return {"settled": settled, "failed": failed}


def dispatch_windows_prune(*, now, batch_size: int = 500) -> int:
    """Delete windows past retention in one bounded batch. Returns how many went."""
    return _prune(DispatchWindow, "created_at", now=now, batch_size=batch_size)


def paused_triggers_prune(*, now, batch_size: int = 500) -> int:
    """Delete paused triggers past the windows' retention in one bounded batch."""
    return _prune(PausedTrigger, "requested_at", now=now, batch_size=batch_size)


def _prune(model, field: str, *, now, batch_size: int) -> int:
    cutoff = now - timedelta(days=conf.window_retention_days())
    ids = list(model.objects.filter(**{f"{field}__lt": cutoff}).order_by(field)
               .values_list("pk", flat=True)[:batch_size])
    if ids:
        model.objects.filter(pk__in=ids).delete()
    return len(ids)
