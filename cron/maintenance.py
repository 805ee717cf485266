"""The cron app's maintenance step, run by ``background-maintenance``:
``dispatch_windows_prune``, windows past retention go, in one bounded batch."""

from datetime import timedelta

from cron import conf
from cron.models import DispatchWindow


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
