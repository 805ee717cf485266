"""Writes to the ledger outside a claim: creating runs (overlap policy), reopening, cancelling,
sending to the broker. The claim/heartbeat/finish/take-back lifecycle lives in ``claims.py``.

Every state change is a compare-and-set on the run's current status, so a second delivery, a
late worker or a concurrent sweeper changes nothing it does not own.
"""

import logging
from dataclasses import dataclass, field

from django.db import connection, transaction
from django.db.models import Q

from ledger import conf
from ledger.enqueue import broker_is_transactional, enqueue_run
from ledger.models import FunctionRun, RunReason, RunStatus
from ledger.registry import Overlap, get_function

logger = logging.getLogger(__name__)


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
    overlap_key: str = ""  # which runs are "the previous run" (default: the cron)


def bounded(text: str, limit: int = conf.ERROR_MAX_CHARS) -> str:
    text = text.replace("\x00", "")
    return text if len(text) <= limit else text[: limit - 20] + "… [truncated]"


# --- creating ------------------------------------------------------------------------------


def function_run_create(*, request: RunRequest, now, inline: bool = False) -> FunctionRun:
    """One run; see ``function_runs_create``."""
    return function_runs_create(requests=[request], now=now, inline=inline)[0]


def function_runs_create(*, requests: list[RunRequest], now,
                         inline: bool = False) -> list[FunctionRun]:
    """New runs: ``queued``, or ``skipped``/``overlap`` at once when their function's overlap
    policy (``FunctionSpec.overlap``) refuses one. Inline runs are not subject to the overlap
    policy: they run now or find the concurrency slot held (``skipped``/``locked``)."""
    runs = [_new_run(request, now, inline) for request in requests]
    with transaction.atomic():
        governed = [run for run in runs if not inline and run.overlap != Overlap.ALLOW_ALL]
        if governed:
            _overlap_lock(sorted({run.overlap_key for run in governed}))
            refused = _overlap_refused(governed, now)
            for run in governed:
                if run in refused:
                    run.status, run.reason, run.finished_at = (
                        RunStatus.SKIPPED, RunReason.OVERLAP, now)
        FunctionRun.objects.bulk_create(runs)
    for run in runs:
        if run.status == RunStatus.SKIPPED:
            logger.info("run skipped by the overlap policy", extra={
                "action": "run_skipped_overlap", "run_id": run.pk, "function": run.function,
                "cron": run.cron, "overlap": run.overlap, "correlation_id": run.correlation_id})
    return runs


def _new_run(request: RunRequest, now, inline: bool) -> FunctionRun:
    spec = get_function(request.function)
    return FunctionRun(
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
        overlap=spec.overlap.value,
        overlap_key=request.overlap_key or request.cron,
        max_attempts=1 if inline else spec.max_attempts,
        queued_at=now,
    )


def _overlap_lock(overlap_keys: list[str]) -> None:
    """Serialize overlap decisions per overlap key until the transaction ends.

    PostgreSQL: transaction-scoped advisory locks, taken in sorted order. SQLite: transactions
    are IMMEDIATE (see settings), so the write lock is already held from BEGIN."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            for key in overlap_keys:
                cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))",
                               [f"ledger-overlap:{key}"])


def _overlap_refused(runs: list[FunctionRun], now) -> list[FunctionRun]:
    """skip: refused while a run of the same function and overlap key is queued or running.
    buffer-one: refused while one is already waiting (queued and never started); a run
    between two attempts is in progress, not waiting. One query for the whole dispatch.

    A run ``running`` past its lease is not in progress: its worker died and the sweeper takes
    it back. Counting it would make every later window skip until then (and, for the cron
    whose function runs the sweeper, for ever)."""
    alive = Q(status=RunStatus.QUEUED) | Q(status=RunStatus.RUNNING, lease_expires_at__gt=now)
    active = FunctionRun.objects.filter(
        alive,
        function__in={run.function for run in runs},
        overlap_key__in={run.overlap_key for run in runs},
        inline=False,
    ).values_list("function", "overlap_key", "status", "attempt")
    busy, waiting = set(), set()
    for function, overlap_key, status, attempt in active:
        busy.add((function, overlap_key))
        if status == RunStatus.QUEUED and attempt == 0:
            waiting.add((function, overlap_key))
    blocking = {Overlap.SKIP.value: busy, Overlap.BUFFER_ONE.value: waiting}
    return [run for run in runs if (run.function, run.overlap_key) in blocking[run.overlap]]


def function_run_reopen(*, task_id: str, now) -> FunctionRun | None:
    """Take back a run cancelled by a failed enqueue, for a retry of the same window that sends
    it again: queued, not sent yet."""
    reopened = FunctionRun.objects.filter(
        task_id=task_id, status=RunStatus.CANCELLED, reason=RunReason.ENQUEUE_FAILED
    ).update(status=RunStatus.QUEUED, reason="", finished_at=None, queued_at=now, enqueued_at=None)
    return FunctionRun.objects.get(task_id=task_id) if reopened else None


def function_runs_cancel(*, run_ids, reason: RunReason, now, unsent_only: bool = False) -> int:
    """Cancel runs still queued (running ones cannot be stopped from outside); with
    ``unsent_only``, only those never handed to the broker."""
    runs = FunctionRun.objects.filter(pk__in=list(run_ids), status=RunStatus.QUEUED)
    if unsent_only:
        runs = runs.filter(enqueued_at__isnull=True)
    return runs.update(
        status=RunStatus.CANCELLED, reason=reason, finished_at=now, enqueued_at=None
    )


def function_run_send(*, run: FunctionRun, now) -> None:
    """Hand one run to the broker (again) and stamp it sent; see ``function_runs_send``."""
    function_runs_send(runs=[run], now=now)


def function_runs_send(*, runs: list[FunctionRun], now) -> list[FunctionRun]:
    """Hand each of ``runs`` that is queued to the broker, in order, and stamp them sent
    (``enqueued_at``) in one UPDATE. Raises the broker's error. Returns the runs sent.

    ORM broker: the task rows and the stamp commit together, with the caller's transaction if
    there is one (a dispatch's window and runs): all or none. Redis: each push comes first; a
    refusal part-way stamps the runs pushed before it and re-raises, so the caller can cancel
    the others. A crash between a push and its stamp leaves ``enqueued_at`` empty and the sweeper
    sends the run again (a duplicate delivery finds nothing to claim)."""
    queued = [run for run in runs if run.status == RunStatus.QUEUED]
    if not queued:
        return []
    if broker_is_transactional():
        with transaction.atomic():
            for run in queued:
                _enqueue(run)
            _stamp_sent(queued, now)
        return queued
    sent = []
    try:
        for run in queued:
            _enqueue(run)
            sent.append(run)
    finally:
        _stamp_sent(sent, now)
    return sent


def _enqueue(run: FunctionRun) -> None:
    enqueue_run(run.pk, task_name=run.task_id or f"run:{run.pk}",
                timeout_seconds=get_function(run.function).timeout_seconds)


def _stamp_sent(runs: list[FunctionRun], now) -> None:
    if runs:
        FunctionRun.objects.filter(pk__in=[run.pk for run in runs],
                                   status=RunStatus.QUEUED).update(enqueued_at=now)
        for run in runs:
            run.enqueued_at = now


# --- waiting for a slot --------------------------------------------------------------------


def function_run_next_waiting(*, function: str, concurrency_key: str, now,
                              count: int = 1) -> list[FunctionRun]:
    """The oldest ``count`` queued runs waiting for a slot of this (function, key), with no
    delivery out."""
    return list(
        FunctionRun.objects.filter(
            function=function, concurrency_key=concurrency_key, status=RunStatus.QUEUED,
            inline=False, enqueued_at__isnull=True,
        )
        .exclude(next_attempt_at__gt=now)
        .order_by("queued_at", "pk")[:count]
    )
