"""The cron app's maintenance steps, run by ``background-maintenance``: windows and paused
triggers past retention go, each in one bounded batch. Override audit rows are never pruned."""

from datetime import timedelta

from cron import conf
from cron.models import DispatchWindow, PausedTrigger


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
