"""What an operator asks of a cron from the admin or a command: dispatch it now (no window row
needed), re-run a window. Each goes through the dispatch service or the ledger with the caller's
source (``admin``), so the ledger records it like any other run."""

import uuid
from dataclasses import dataclass, field

from cron.models import DispatchWindow
from cron.registry import CronDefinition
from cron.services import Source, Trigger, TriggerOutcome, cron_trigger
from ledger.models import FunctionRun, RunStatus
from ledger.operator import function_run_retry


def cron_dispatch_now(*, cron: CronDefinition, source: Source, actor: str, now) -> TriggerOutcome:
    """Dispatch ``cron``'s current window, as its route would with the queue on (same window,
    same dedupe): a window dispatched already comes back ``dispatch-duplicate-suppressed``."""
    return cron_trigger(trigger=Trigger(
        cron=cron, source=source, params={}, requested_at=now,
        correlation_id=f"{source.value}:{_token(actor)}:{uuid.uuid4().hex[:12]}"), dispatch=True)


@dataclass
class RerunResult:
    retried: list[FunctionRun] = field(default_factory=list)
    succeeded: list[FunctionRun] = field(default_factory=list)  # nothing to do
    active: list[FunctionRun] = field(default_factory=list)  # queued or running: left alone


def dispatch_window_rerun(*, window: DispatchWindow, source: Source, actor: str,
                          now) -> RerunResult:
    """Run again the window's work that did not succeed: each of its functions' latest run
    that ended failed, cancelled or skipped is retried (``function_run_retry``); succeeded
    and active ones are left alone."""
    result = RerunResult()
    for run in window_latest_runs(window):
        if run.status == RunStatus.SUCCEEDED:
            result.succeeded.append(run)
        elif run.status in (RunStatus.QUEUED, RunStatus.RUNNING):
            result.active.append(run)
        else:
            result.retried.append(function_run_retry(run=run, source=source.value, actor=actor,
                                                     now=now))
    return result


def window_latest_runs(window: DispatchWindow) -> list[FunctionRun]:
    """The window's latest run per function: its dispatched runs (by task id) and any retried
    since (same dispatch key)."""
    latest: dict[str, FunctionRun] = {}
    runs = FunctionRun.objects.filter(dispatch_key=window.dispatch_key).order_by("queued_at", "pk")
    for run in runs:
        latest[run.function] = run
    return list(latest.values())


def _token(actor: str) -> str:
    """The actor's name as correlation id characters (``[A-Za-z0-9._:-]``)."""
    return "".join(ch if ch.isalnum() or ch in "._-" else "-" for ch in actor)[:40] or "operator"
