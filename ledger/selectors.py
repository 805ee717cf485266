"""Reads of the ledger: queue health for maintenance results, the admin, commands and probes."""

from datetime import timedelta

from django.db.models import Count, Min

from ledger import conf
from ledger.models import ACTIVE_STATUSES, FunctionRun, RunStatus


def ledger_health(*, now) -> dict:
    """Runs queued and running, and the age of the oldest queued one, in seconds."""
    queued = FunctionRun.objects.filter(status=RunStatus.QUEUED)
    oldest = queued.aggregate(oldest=Min("queued_at"))["oldest"]
    return {
        "runsQueued": queued.count(),
        "runsRunning": FunctionRun.objects.filter(status=RunStatus.RUNNING).count(),
        "oldestQueuedAgeSeconds": round((now - oldest).total_seconds(), 1) if oldest else None,
    }


def active_runs_by_function() -> dict[tuple[str, str], int]:
    """{(function, status): count} of queued and running runs (the partial index's rows)."""
    rows = (FunctionRun.objects.filter(status__in=ACTIVE_STATUSES)
            .values("function", "status").annotate(count=Count("id")).order_by())
    return {(row["function"], row["status"]): row["count"] for row in rows}


def runs_overdue(*, now):
    """Running runs past their timeout plus grace: their lease (never past timeout + grace)
    expired more than ``LEDGER_GRACE_SECONDS`` ago and the sweeper, every minute, has not taken
    them back: no sweeper runs, or the database refuses it."""
    return FunctionRun.objects.filter(
        status=RunStatus.RUNNING,
        lease_expires_at__lt=now - timedelta(seconds=conf.grace_seconds()))


def last_success_at(*, cron: str):
    """When the cron's latest succeeded run finished (None: none in the ledger). Walks the
    finished runs' index from the newest, so a cron that succeeds regularly costs a few rows."""
    return (FunctionRun.objects.filter(cron=cron, status=RunStatus.SUCCEEDED)
            .order_by("-finished_at").values_list("finished_at", flat=True).first())
