"""Reads of the ledger: queue health for maintenance results, the admin, commands and probes."""

from datetime import timedelta

from django.db.models import Count, Max, Min, Q
from django_q.conf import Conf
from django_q.models import Schedule

from ledger import conf
from ledger.cluster_stats import clusters_alive
from ledger.enqueue import broker_is_transactional
from ledger.models import ACTIVE_STATUSES, FunctionAttempt, FunctionRun, RunStatus
from ledger.schedules import SWEEP_SCHEDULE_NAME


def ledger_health(*, now) -> dict:
    """Runs queued and running, and the age of the oldest queued one, in seconds."""
    queued = FunctionRun.objects.filter(status=RunStatus.QUEUED)
    oldest = queued.aggregate(oldest=Min("queued_at"))["oldest"]
    return {
        "runsQueued": queued.count(),
        "runsRunning": FunctionRun.objects.filter(status=RunStatus.RUNNING).count(),
        "oldestQueuedAgeSeconds": round((now - oldest).total_seconds(), 1) if oldest else None,
    }


def queued_deadline_seconds() -> int:
    """How long a due queued run may wait before it counts as stuck: the sweeper's re-send
    threshold (plus Django-Q's own redelivery on the ORM broker)."""
    seconds = conf.requeue_after_seconds()
    return seconds + (Conf.RETRY or 0) if broker_is_transactional() else seconds


def function_runs_overdue_q(*, now) -> Q:
    """Runs past their deadline: running with an expired lease (its worker stopped renewing
    it), or queued and due for longer than ``queued_deadline_seconds``."""
    before = now - timedelta(seconds=queued_deadline_seconds())
    running = Q(status=RunStatus.RUNNING, lease_expires_at__lt=now)
    queued = Q(status=RunStatus.QUEUED, queued_at__lt=before) & (
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lt=before))
    return running | queued


def function_run_is_overdue(run: FunctionRun, *, now) -> bool:
    """``function_runs_overdue_q`` for one row already read."""
    if run.status == RunStatus.RUNNING:
        return bool(run.lease_expires_at and run.lease_expires_at < now)
    if run.status != RunStatus.QUEUED:
        return False
    before = now - timedelta(seconds=queued_deadline_seconds())
    return run.queued_at < before and (run.next_attempt_at is None or run.next_attempt_at < before)


def sweeper_schedule_state(*, now) -> dict:
    """The sweeper's schedule: there, its next run, and whether a cluster's scheduler ticked it
    recently (a scheduler moves ``next_run`` past now on every tick, about every 30 s)."""
    schedule = Schedule.objects.filter(name=SWEEP_SCHEDULE_NAME).first()
    if schedule is None:
        return {"scheduled": False, "nextRunAt": None, "lastTickAt": None}
    ticked = bool(schedule.task) and schedule.next_run is not None
    last_tick = schedule.next_run - timedelta(minutes=schedule.minutes or 1) if ticked else None
    return {"scheduled": True, "nextRunAt": schedule.next_run, "lastTickAt": last_tick}


def cluster_last_seen(*, now) -> dict:
    """When a cluster was last seen: Django-Q's own stat of a running cluster
    (``ledger.cluster_stats``, what ``/healthz/pipeline`` reads), and the ledger's side of it,
    which outlives a dead cluster's stat: the sweeper schedule's last tick, and the last attempt
    a worker started or heartbeat it renewed (inline runs left out). ``at`` is the latest of
    them, None when no cluster was ever seen."""
    stat = max((seen.seen_at for seen in clusters_alive(now=now)), default=None)
    worker = FunctionAttempt.objects.filter(run__inline=False).aggregate(at=Max("started_at"))["at"]
    beat = FunctionRun.objects.filter(inline=False, status=RunStatus.RUNNING).aggregate(
        at=Max("heartbeat_at"))["at"]
    tick = sweeper_schedule_state(now=now)["lastTickAt"]
    seen = [moment for moment in (stat, worker, beat, tick) if moment is not None]
    at = max(seen) if seen else None
    return {"at": at, "ageSeconds": round((now - at).total_seconds(), 1) if at else None,
            "scheduleTickAt": tick, "workerAt": max(filter(None, (worker, beat)), default=None),
            "statAt": stat}


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
