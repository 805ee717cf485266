"""Reads about crons for the read API, the metrics and the probes."""

from dataclasses import dataclass
from datetime import datetime

from croniter import croniter

from cron import conf
from cron.models import DispatchWindow
from cron.registry import CronDefinition
from ledger.models import FunctionRun


@dataclass(frozen=True)
class CronMode:
    mode: str  # "use-queue", "inline", "force-inline" ("pause" with runtime overrides)
    source: str  # "env", "forced" ("override" with runtime overrides)


def cron_mode(cron: CronDefinition) -> CronMode:
    """The cron's effective mode and where it comes from, from the environment flags.
    (Issue 20's runtime overrides replace this with ``cron.modes.cron_mode``.)"""
    if conf.forced_inline(cron):
        return CronMode("force-inline", "forced")
    return CronMode("use-queue" if conf.uses_queue(cron) else "inline", "env")


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
