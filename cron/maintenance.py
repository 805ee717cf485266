"""The cron app's maintenance steps, run by ``background-maintenance``.

- ``dispatch_windows_prune``: windows past retention go, in one bounded batch.
- ``dispatch_windows_settle``: a window left ``dispatching`` by a web process that died between
  its commit and its push to Redis. Its queued runs are sent by the ledger's sweeper; once every
  run was handed over (or has ended), the window says ``enqueued``, so the admin does not show
  work as still being handed over long after it was.
"""

from datetime import timedelta

from cron import conf
from cron.models import DispatchWindow, WindowStatus
from ledger.models import FunctionRun, RunStatus

SETTLE_AFTER = timedelta(minutes=2)
BATCH = 100


def dispatch_windows_prune(*, now, batch_size: int = 500) -> int:
    """Delete windows past retention in one bounded batch. Returns how many went."""
    cutoff = now - timedelta(days=conf.window_retention_days())
    ids = list(
        DispatchWindow.objects.filter(created_at__lt=cutoff)
        .order_by("created_at")
        .values_list("pk", flat=True)[:batch_size]
    )
    if ids:
        DispatchWindow.objects.filter(pk__in=ids).delete()
    return len(ids)


def dispatch_windows_settle(*, now) -> int:
    """``dispatching`` windows older than two minutes whose runs were all sent (or ended)
    become ``enqueued``. Returns how many."""
    stale = DispatchWindow.objects.filter(
        status=WindowStatus.DISPATCHING, updated_at__lt=now - SETTLE_AFTER
    ).order_by("updated_at")[:BATCH]
    settled = 0
    for window in stale:
        unsent = FunctionRun.objects.filter(
            task_id__in=window.task_ids, status=RunStatus.QUEUED, enqueued_at__isnull=True
        )
        if unsent.exists():
            continue
        settled += DispatchWindow.objects.filter(
            pk=window.pk, status=WindowStatus.DISPATCHING
        ).update(status=WindowStatus.ENQUEUED, updated_at=now)
    return settled
