"""Reads of the ledger: queue health for maintenance results, the admin and commands."""

from django.db.models import Min

from ledger.models import FunctionRun, RunStatus


def ledger_health(*, now) -> dict:
    """Runs queued and running, and the age of the oldest queued one, in seconds."""
    queued = FunctionRun.objects.filter(status=RunStatus.QUEUED)
    oldest = queued.aggregate(oldest=Min("queued_at"))["oldest"]
    return {
        "runsQueued": queued.count(),
        "runsRunning": FunctionRun.objects.filter(status=RunStatus.RUNNING).count(),
        "oldestQueuedAgeSeconds": round((now - oldest).total_seconds(), 1) if oldest else None,
    }
