"""Reads for operators: one cron's status, every cron's (one registry loop), and the pipeline
around them. The admin's status page, ``cron_status`` and ``preflight`` read these."""

import math
from datetime import datetime, timedelta

from croniter import croniter
from django.db.models import Count, Q

from cron import conf, keys
from cron.models import CronOverrideAudit, DispatchWindow, PausedTrigger
from cron.modes import cron_mode
from cron.registry import CronDefinition, all_crons
from ledger.display import first_line
from ledger.models import FunctionRun, RunStatus
from ledger.selectors import cluster_last_seen, function_runs_overdue_q, sweeper_schedule_state
from webhooks.selectors import webhook_queue_health

DAY = timedelta(hours=24)


def cron_status(cron: CronDefinition, *, now) -> dict:
    """What an on-call engineer asks of one cron: its mode now and why, its last window and
    run, the last 24 h (success rate, p95 duration), what is queued, running or stuck, and
    when the next window is due."""
    decision = cron_mode(cron)
    runs = FunctionRun.objects.filter(cron=cron.name)
    day = runs.filter(finished_at__gte=now - DAY)
    counts = day.aggregate(total=Count("pk"), succeeded=Count("pk", filter=Q(
        status=RunStatus.SUCCEEDED)), failed=Count("pk", filter=Q(status=RunStatus.FAILED)))
    durations = sorted(day.filter(duration_ms__isnull=False, status__in=(
        RunStatus.SUCCEEDED, RunStatus.FAILED)).values_list("duration_ms", flat=True))
    finished = counts["succeeded"] + counts["failed"]
    window = DispatchWindow.objects.filter(cron=cron.name).order_by("-window_start", "-id").first()
    last_run = runs.exclude(finished_at__isnull=True).order_by("-finished_at", "-id").first()
    active = runs.filter(status__in=(RunStatus.QUEUED, RunStatus.RUNNING)).aggregate(
        queued=Count("pk", filter=Q(status=RunStatus.QUEUED)),
        running=Count("pk", filter=Q(status=RunStatus.RUNNING)),
        overdue=Count("pk", filter=function_runs_overdue_q(now=now)))
    next_call = croniter(cron.schedule, now).get_next(datetime)
    seconds = conf.window_seconds(cron)
    return {
        "cron": cron.name,
        "route": cron.url_path,
        "schedule": cron.schedule,
        "windowSeconds": seconds,
        "mode": decision.mode.value,
        "modeSource": decision.source.value,
        "modeWhy": decision.why,
        "lastWindow": _window(window),
        "lastRun": _run(last_run),
        "runs24h": counts["total"],
        "succeeded24h": counts["succeeded"],
        "failed24h": counts["failed"],
        "successRate24h": round(counts["succeeded"] / finished, 3) if finished else None,
        "p95DurationMs24h": percentile(durations, 0.95),
        "queued": active["queued"],
        "running": active["running"],
        "overdue": active["overdue"],
        "pausedTriggers24h": PausedTrigger.objects.filter(
            cron=cron.name, requested_at__gte=now - DAY).count(),
        "nextWindowStart": keys.window_start(next_call, seconds),
        "lastOverrideChange": _audit(CronOverrideAudit.objects.filter(cron=cron.name).first()),
    }


def cron_statuses(*, now) -> list[dict]:
    return [cron_status(cron, now=now) for cron in all_crons()]


def pipeline_status(*, now) -> dict:
    """Around the crons: the webhook backlog, runs past their deadline, the sweeper's schedule
    and when a cluster was last seen."""
    return {
        "webhooks": webhook_queue_health(now=now),
        "overdueRuns": FunctionRun.objects.filter(function_runs_overdue_q(now=now)).count(),
        "sweeper": sweeper_schedule_state(now=now),
        "cluster": cluster_last_seen(now=now),
    }


def percentile(sorted_values: list[int], fraction: float) -> int | None:
    """Nearest-rank percentile of values sorted ascending; None for none."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


def _window(window: DispatchWindow | None) -> dict | None:
    if window is None:
        return None
    return {"id": window.pk, "dispatchKey": window.dispatch_key, "status": window.status,
            "windowStart": window.window_start, "source": window.source,
            "enqueueError": window.enqueue_error}


def _run(run: FunctionRun | None) -> dict | None:
    if run is None:
        return None
    return {"id": run.pk, "function": run.function, "status": run.status, "reason": run.reason,
            "finishedAt": run.finished_at, "durationMs": run.duration_ms,
            "error": first_line(run.error)}


def _audit(row: CronOverrideAudit | None) -> dict | None:
    if row is None:
        return None
    return {"at": row.at, "actor": row.actor, "old": row.old_mode or None,
            "new": row.new_mode or None, "reason": row.reason}


def cron_next_window_start(cron: CronDefinition, *, now: datetime) -> datetime:
    """When its schedule next fires after ``now``."""
    return croniter(cron.schedule, now).get_next(datetime)


def cron_last_window(cron: CronDefinition) -> DispatchWindow | None:
    return DispatchWindow.objects.filter(cron=cron.name).order_by("-window_start", "-id").first()


def cron_last_runs(cron: CronDefinition) -> list[FunctionRun]:
    """The latest run of each of the cron's functions (those that have one)."""
    runs = []
    for function in cron.functions:
        run = (FunctionRun.objects.filter(function=function.name, cron=cron.name)
               .order_by("-queued_at", "-id").first())
        if run is not None:
            runs.append(run)
    return runs
