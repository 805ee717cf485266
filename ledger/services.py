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
from django.db.models import Model

from ledger import conf
from ledger.db import insert_objects, insert_unless_taken
from ledger.enqueue import (
    HeldTasks,
    QueueRows,
    broker_is_transactional,
    enqueue_run,
    send_held,
)
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
    overlap_key: str = ""  # default: the cron


def bounded(text: str, limit: int = conf.ERROR_MAX_CHARS) -> str:
    text = text.replace("\x00", "")
    return text if len(text) <= limit else text[: limit - 20] + "… [truncated]"


# --- creating ------------------------------------------------------------------------------


def function_run_create(*, request: RunRequest, now, inline: bool = False,
                        sent_by_caller: bool = False) -> FunctionRun:
    """One run; see ``function_runs_create``."""
    return function_runs_create(requests=[request], now=now, inline=inline,
                                sent_by_caller=sent_by_caller)[0]


def function_runs_create(*, requests: list[RunRequest], now, inline: bool = False,
                         sent_by_caller: bool = False) -> list[FunctionRun]:
    """New runs in one INSERT: ``queued``, or ``skipped``/``overlap`` at once when the overlap
    policy refuses one. Inline runs are not subject to the overlap policy: they run now or find
    the concurrency slot held (``skipped``/``locked``), as the rollback path always did.

    ``sent_by_caller``: the caller sends the queued runs itself (``SENT_BY_CALLER``), so they
    are stamped ``enqueued_at`` now rather than by an UPDATE after."""
    runs = [_new_run(request, now, inline) for request in requests]
    with transaction.atomic(savepoint=False):  # part of the caller's transaction, if any
        governed = [run for run in runs if not inline and run.overlap != Overlap.ALLOW_ALL]
        if governed:
            _overlap_lock(sorted({run.overlap_key for run in governed}))
            refused = _overlap_refused(governed)
            for run in governed:
                if run in refused:
                    run.status, run.reason, run.finished_at = (
                        RunStatus.SKIPPED, RunReason.OVERLAP, now)
        if sent_by_caller:
            for run in runs:
                run.enqueued_at = now if run.status == RunStatus.QUEUED else None
        insert_objects(runs)
    for run in runs:
        if run.status == RunStatus.SKIPPED:
            logger.info("run skipped by the overlap policy", extra={
                "action": "run_skipped_overlap", "run_id": run.pk, "function": run.function,
                "cron": run.cron, "overlap": run.overlap, "correlation_id": run.correlation_id})
    return runs


def function_runs_create_with(*, head: Model, unique_field: str, requests: list[RunRequest],
                              now) -> list[FunctionRun] | None:
    """The caller's ``head`` row (a dispatch window) and new runs for ``requests``, written only
    if no row with head's ``unique_field`` exists: None, with nothing written, when one does.
    On the ORM broker the queued runs are enqueued too, all committing together (an outbox for
    free); on Redis the caller pushes them after the commit (``function_runs_enqueue``).

    PostgreSQL, with no overlap policy governing the runs: head, runs and broker rows in one
    statement (``insert_unless_taken``). Otherwise one transaction of several (SQLite has no
    data-modifying CTEs; an overlap decision must lock and read before the runs are written).
    """
    transactional = broker_is_transactional()
    if connection.vendor == "postgresql" and all(
            Overlap(request.overlap) == Overlap.ALLOW_ALL for request in requests):
        runs = [_new_run(request, now, inline=False) for request in requests]
        queue = QueueRows()
        for run in runs:
            run.enqueued_at = now  # SENT_BY_CALLER
            if transactional:
                _send(run, into=queue)
        return runs if insert_unless_taken(head, conflict_field=unique_field,
                                           then=[*runs, *queue.rows]) else None
    with transaction.atomic():
        if not insert_unless_taken(head, conflict_field=unique_field, then=[]):
            return None
        runs = function_runs_create(requests=requests, now=now, sent_by_caller=True)
        if transactional:
            function_runs_enqueue(runs=runs)
    return runs


# SENT_BY_CALLER. A dispatch's queued runs are written already stamped ``enqueued_at``: on the
# ORM broker their task rows commit with them; on Redis the push follows the commit within
# the same request. A process that dies between that commit and the push leaves them stamped
# but never sent: the sweeper sends them again once they have waited
# ``LEDGER_REQUEUE_AFTER_SECONDS`` (``sweeper._due_queued_runs``), as it does for a task Redis
# lost (a push that fails later than its window can be given back leaves them the same way).
# Stamping after the push instead
# cost every Redis dispatch an UPDATE of each run (a new row version and index entries). Runs
# reopened by a retry of a window whose push failed are stamped the same way
# (``function_run_reopen``).


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
        overlap=Overlap(request.overlap).value,
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


def _overlap_refused(runs: list[FunctionRun]) -> list[FunctionRun]:
    """skip: refused while a run of the same function and overlap key is queued or running.
    buffer-one: refused while one is already waiting (queued and never started); a run
    between two attempts is in progress, not waiting. One query for the whole dispatch."""
    active = FunctionRun.objects.filter(
        function__in={run.function for run in runs},
        overlap_key__in={run.overlap_key for run in runs},
        status__in=ACTIVE_STATUSES,
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
    it again itself: queued and stamped sent (``SENT_BY_CALLER``)."""
    reopened = FunctionRun.objects.filter(
        task_id=task_id, status=RunStatus.CANCELLED, reason=RunReason.ENQUEUE_FAILED
    ).update(status=RunStatus.QUEUED, reason="", finished_at=None, queued_at=now, enqueued_at=now)
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
        _send(run)
        FunctionRun.objects.filter(pk=run.pk, status=RunStatus.QUEUED).update(enqueued_at=now)


def function_runs_enqueue(*, runs: list[FunctionRun]) -> None:
    """Hand a dispatch's queued runs, stamped sent when written (``SENT_BY_CALLER``), to the
    broker. ORM broker: inside the caller's transaction. Redis: after the commit, all in one
    push (``send_held``); the caller then marks its window. Raises the broker's error."""
    held = HeldTasks()
    for run in runs:
        if run.status == RunStatus.QUEUED:
            _send(run, into=held)
    send_held(held)


def _send(run: FunctionRun, *, into: HeldTasks | None = None) -> None:
    """A run with a task id (a dispatched run) is delivered by it, known before the row is
    written (``function_runs_create_with``); any other by its primary key."""
    enqueue_run(run.task_id or run.pk, function=run.function,
                task_name=run.task_id or f"run:{run.pk}", timeout_seconds=_timeout(run),
                into=into)


def _timeout(run: FunctionRun) -> int:
    return get_function(run.function).timeout_seconds


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
