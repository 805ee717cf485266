"""Writes to the ledger outside a claim: creating runs (overlap policy), reopening, cancelling,
sending to the broker. The claim/heartbeat/finish/take-back lifecycle lives in ``claims.py``.

Every state change is a compare-and-set on the run's current status, so a second delivery, a
late worker or a concurrent sweeper changes nothing it does not own.
"""

import logging
from contextlib import nullcontext
from dataclasses import dataclass, field
from enum import Enum

from django.db import connection, transaction

from ledger import conf
from ledger.enqueue import broker_is_transactional, enqueue_run
from ledger.models import ACTIVE_STATUSES, FunctionRun, RunReason, RunStatus
from ledger.registry import get_function

logger = logging.getLogger(__name__)


class Overlap(str, Enum):
    SKIP = "skip"  # a new run while one is queued or running is recorded skipped
    BUFFER_ONE = "buffer-one"  # at most one waiting behind the running one
    ALLOW_ALL = "allow-all"  # every run waits its turn for a concurrency slot


@dataclass(frozen=True)
class RunRequest:
    """What a caller wants run: a registered function and its payload."""

    function: str
    payload: dict
    source: str
    cron: str = ""
    dispatch_key: str = ""
    correlation_id: str = ""
    params: dict = field(default_factory=dict)
    task_id: str | None = None
    overlap: Overlap = Overlap.ALLOW_ALL


def bounded(text: str, limit: int = conf.ERROR_MAX_CHARS) -> str:
    text = text.replace("\x00", "")
    return text if len(text) <= limit else text[: limit - 20] + "… [truncated]"


# --- creating ------------------------------------------------------------------------------


def function_run_create(*, request: RunRequest, now, inline: bool = False) -> FunctionRun:
    """A new run, ``queued``, or ``skipped``/``overlap`` at once when the cron's overlap policy
    refuses it. Inline runs are not subject to the overlap policy: they run now or find the
    concurrency slot held (``skipped``/``locked``), as the rollback path always did."""
    spec = get_function(request.function)
    run = FunctionRun(
        function=request.function,
        cron=request.cron,
        dispatch_key=request.dispatch_key,
        # Inline runs are the rollback path and run every time, as before; dispatched runs
        # succeed at most once per key.
        idempotency_key="" if inline else spec.idempotency_key_for(request.payload),
        concurrency_key=spec.concurrency_key_for(request.payload),
        task_id=request.task_id,
        correlation_id=request.correlation_id,
        source=request.source,
        params=request.params,
        payload=request.payload,
        inline=inline,
        overlap=Overlap(request.overlap).value,
        max_attempts=1 if inline else spec.max_attempts,
        queued_at=now,
    )
    with transaction.atomic():
        if not inline and run.overlap != Overlap.ALLOW_ALL:
            _overlap_lock(run)
            if _overlap_refuses(run):
                run.status, run.reason, run.finished_at = RunStatus.SKIPPED, RunReason.OVERLAP, now
        run.save(force_insert=True)
    if run.status == RunStatus.SKIPPED:
        logger.info("run skipped by the overlap policy", extra={
            "action": "run_skipped_overlap", "run_id": run.pk, "function": run.function,
            "cron": run.cron, "overlap": run.overlap, "correlation_id": run.correlation_id})
    return run


def _overlap_lock(run: FunctionRun) -> None:
    """Serialize overlap decisions per (function, cron) until the transaction ends.

    PostgreSQL: a transaction-scoped advisory lock. SQLite: transactions are IMMEDIATE (see
    settings), so the write lock is already held from BEGIN."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))",
                           [f"ledger-overlap:{run.function}:{run.cron}"])


def _overlap_refuses(run: FunctionRun) -> bool:
    """skip: refused while a run of the same function and cron is queued or running.
    buffer-one: refused while one is already waiting (queued and never started); a run
    between two attempts is in progress, not waiting."""
    active = FunctionRun.objects.filter(
        function=run.function, cron=run.cron, status__in=ACTIVE_STATUSES, inline=False
    )
    if run.overlap == Overlap.BUFFER_ONE:
        active = active.filter(status=RunStatus.QUEUED, attempt=0)
    return active.exists()


def function_run_reopen(*, task_id: str, now) -> FunctionRun | None:
    """Take back a run cancelled by a failed enqueue, for a retry of the same window."""
    reopened = FunctionRun.objects.filter(
        task_id=task_id, status=RunStatus.CANCELLED, reason=RunReason.ENQUEUE_FAILED
    ).update(status=RunStatus.QUEUED, reason="", finished_at=None, queued_at=now, enqueued_at=None)
    return FunctionRun.objects.get(task_id=task_id) if reopened else None


def function_runs_cancel(*, run_ids, reason: RunReason, now) -> int:
    """Cancel runs still queued (running ones cannot be stopped from outside)."""
    return FunctionRun.objects.filter(pk__in=list(run_ids), status=RunStatus.QUEUED).update(
        status=RunStatus.CANCELLED, reason=reason, finished_at=now, enqueued_at=None
    )


def function_run_send(*, run: FunctionRun, now) -> None:
    """Hand the run to the broker (again). Raises the broker's error.

    On the ORM broker the task row and ``enqueued_at`` commit together; on Redis the push comes
    first, so a crash in between leaves ``enqueued_at`` empty and the sweeper sends it again
    (a duplicate delivery finds nothing to claim)."""
    with transaction.atomic() if broker_is_transactional() else nullcontext():
        enqueue_run(run.pk, task_name=run.task_id or f"run:{run.pk}",
                    timeout_seconds=_timeout(run))
        FunctionRun.objects.filter(pk=run.pk, status=RunStatus.QUEUED).update(enqueued_at=now)


def _timeout(run: FunctionRun) -> int:
    return get_function(run.function).timeout_seconds


# --- waiting for a slot --------------------------------------------------------------------


def function_run_next_waiting(*, function: str, concurrency_key: str, now) -> FunctionRun | None:
    """The oldest queued run waiting for a slot of this (function, key), with no delivery out."""
    return (
        FunctionRun.objects.filter(
            function=function, concurrency_key=concurrency_key, status=RunStatus.QUEUED,
            inline=False, enqueued_at__isnull=True,
        )
        .exclude(next_attempt_at__gt=now)
        .order_by("queued_at", "pk")
        .first()
    )
