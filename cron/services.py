"""The dispatch service: every trigger of a cron becomes at most one dispatch per window.

``cron_trigger`` decides the mode (forced inline, inline, dispatch) and returns a
``TriggerOutcome`` the view renders. Exactly-once lives in the database: the window row's unique
key. The window is inserted, and the unique constraint's ``IntegrityError`` read as "already
there"; nothing is checked first.

Handing the window's runs to the broker (DESIGN.md "Where the guarantees come from"):
- ORM broker: the window (``enqueued``), its queued runs and their task rows commit in one
  transaction, or none of them does.
- Redis: the window is written ``dispatching`` with its runs; after the commit each run is pushed
  and the window marked ``enqueued``. A refused push sets ``dispatching -> enqueue-failed``
  (compare-and-set), cancels the runs never sent and answers 503; a retry in the same window
  takes it over. A window left ``dispatching`` by a process that died is settled by maintenance
  (``cron.maintenance.dispatch_windows_settle``).
"""

import logging
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum

from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from redis import RedisError

from cron import conf, keys
from cron.models import DispatchWindow, WindowStatus
from cron.modes import CronMode, cron_mode
from cron.overrides import cron_trigger_paused_record
from cron.observed import observed_trigger
from cron.registry import CronDefinition
from ledger.enqueue import broker_is_transactional
from ledger.errors import error_public_message
from ledger.models import FunctionRun, RunReason, RunStatus
from ledger.runner import run_inline
from ledger.services import (
    RunRequest,
    function_run_create,
    function_run_reopen,
    function_runs_cancel,
    function_runs_create,
    function_runs_send,
)

logger = logging.getLogger(__name__)
BROKER_ERRORS = (DatabaseError, RedisError)


class Mode(str, Enum):
    DISPATCH_ONLY = "dispatch-only"
    DUPLICATE = "dispatch-duplicate-suppressed"
    DISPATCH_FAILED = "dispatch-failed"
    EMERGENCY = "inline-emergency-fallback"
    INLINE = "inline"
    FORCED = "inline-forced"
    PAUSED = "paused"  # a runtime override paused the cron (cron.modes)


class Source(str, Enum):
    HTTP = "cron:http"
    SCHEDULE = "schedule"
    COMMAND = "command"
    ADMIN = "admin"


@dataclass(frozen=True)
class Trigger:
    cron: CronDefinition
    source: Source
    params: dict
    correlation_id: str
    requested_at: datetime


@dataclass
class TriggerOutcome:
    mode: Mode
    payload: dict
    task_ids: list[str] = field(default_factory=list)
    window: DispatchWindow | None = None
    runs: list[FunctionRun] = field(default_factory=list)
    enqueue_error: str = ""

    @property
    def enqueued(self) -> bool:
        """Work was handed to the broker: a dispatch with at least one run queued (a window
        whose every run the overlap policy skipped enqueued nothing)."""
        return self.mode == Mode.DISPATCH_ONLY and any(
            run.status != RunStatus.SKIPPED for run in self.runs)


def event_payload(trigger: Trigger) -> dict:
    """CONTRACT.md "Event payload": what each job function receives."""
    seconds = conf.window_seconds(trigger.cron)
    start = keys.window_start(trigger.requested_at, seconds)
    return {
        "source": trigger.source.value,
        "requestedAt": keys.iso_millis(trigger.requested_at),
        "dispatchKey": keys.dispatch_key(trigger.cron.name, seconds, start, trigger.params),
        "correlationId": trigger.correlation_id,
        "dispatchWindowStart": keys.iso_seconds(start),
        "dispatchWindowSeconds": seconds,
        "params": dict(trigger.params),
    }


@observed_trigger
def cron_trigger(*, trigger: Trigger, dispatch: bool | None = None) -> TriggerOutcome:
    """Run or dispatch a cron as its flags say (``dispatch=True`` forces the dispatch path)."""
    cron = trigger.cron
    payload = event_payload(trigger)
    decision = cron_mode(cron, dispatch=dispatch)  # overrides beat the flags (cron.modes)
    if decision.mode == CronMode.PAUSED:
        cron_trigger_paused_record(trigger=trigger, payload=payload, decision=decision)
        return TriggerOutcome(Mode.PAUSED, payload)
    if decision.mode != CronMode.QUEUE:
        return cron_run_inline(trigger=trigger, payload=payload, mode=Mode(decision.mode.value))
    try:
        return dispatch_window_dispatch(trigger=trigger, payload=payload)
    except BROKER_ERRORS as error:
        message = error_public_message(error)
        logger.error("cron dispatch failed", extra={
            "action": "cron_dispatch_failed", "cron": cron.name,
            "dispatch_key": payload["dispatchKey"], "correlation_id": trigger.correlation_id,
            "error": message})
        if conf.emergency_fallback(cron):
            outcome = _emergency_inline(trigger=trigger, payload=payload)
            outcome.enqueue_error = message
            return outcome
        return TriggerOutcome(Mode.DISPATCH_FAILED, payload, enqueue_error=message)


def cron_run_inline(*, trigger: Trigger, payload: dict, mode: Mode) -> TriggerOutcome:
    """Run every function of the cron here and now through the ledger's runner."""
    runs = [run_inline(request=request) for request in _run_requests(trigger, payload, inline=True)]
    return TriggerOutcome(mode, payload, runs=runs)


def _emergency_inline(*, trigger: Trigger, payload: dict) -> TriggerOutcome:
    window = _window_mark_emergency(trigger=trigger, payload=payload)
    outcome = cron_run_inline(trigger=trigger, payload=payload, mode=Mode.EMERGENCY)
    outcome.window = window
    return outcome


def dispatch_window_dispatch(*, trigger: Trigger, payload: dict) -> TriggerOutcome:
    """Claim the window and hand its functions to the broker, or report the duplicate."""
    now = trigger.requested_at
    transactional = broker_is_transactional()
    try:
        with transaction.atomic():
            window = DispatchWindow.objects.create(**_window_fields(
                trigger, payload,
                status=WindowStatus.ENQUEUED if transactional else WindowStatus.DISPATCHING))
            runs = function_runs_create(requests=_run_requests(trigger, payload), now=now)
            if transactional:
                function_runs_send(runs=runs, now=now)
    except IntegrityError:
        window = DispatchWindow.objects.filter(dispatch_key=payload["dispatchKey"]).first()
        if window is None:
            raise  # not the window's key: another constraint refused the write
        return _dispatch_existing(trigger=trigger, payload=payload, window=window)
    if not transactional:
        _push(window, runs, now)
    return _dispatched(trigger, payload, window, runs)


def _dispatch_existing(*, trigger: Trigger, payload: dict,
                       window: DispatchWindow) -> TriggerOutcome:
    """The window exists: a duplicate, unless its last enqueue failed, in which case this
    trigger takes it over (compare-and-set) and sends its runs again."""
    if window.status == WindowStatus.ENQUEUE_FAILED:
        taken_over = _take_over(trigger=trigger, payload=payload)
        if taken_over is not None:
            return taken_over
        window.refresh_from_db()
    return _duplicate(window, payload)


def _take_over(*, trigger: Trigger, payload: dict) -> TriggerOutcome | None:
    """An ``enqueue-failed`` window dispatched again by this trigger; None when another trigger
    took it over first."""
    key, now = payload["dispatchKey"], trigger.requested_at
    transactional = broker_is_transactional()
    with transaction.atomic():
        taken_over = DispatchWindow.objects.filter(
            dispatch_key=key, status=WindowStatus.ENQUEUE_FAILED
        ).update(
            status=WindowStatus.ENQUEUED if transactional else WindowStatus.DISPATCHING,
            source=trigger.source.value, correlation_id=trigger.correlation_id,
            requested_at=now, updated_at=now, enqueue_error="",
            dispatch_attempts=F("dispatch_attempts") + 1,
        )
        if not taken_over:
            return None
        window = DispatchWindow.objects.get(dispatch_key=key)
        runs = _reopen_runs(trigger, payload, now)
        if transactional:
            function_runs_send(runs=runs, now=now)
    if not transactional:
        _push(window, runs, now)
    return _dispatched(trigger, payload, window, runs)


def _reopen_runs(trigger: Trigger, payload: dict, now) -> list[FunctionRun]:
    """The runs a failed enqueue cancelled, queued again; a missing one is created. A run the
    failed dispatch did send (its push went through before another's failed) is left alone."""
    runs = []
    for request in _run_requests(trigger, payload):
        run = function_run_reopen(task_id=request.task_id, now=now)
        if run is None and not FunctionRun.objects.filter(task_id=request.task_id).exists():
            run = function_run_create(request=request, now=now)
        if run is not None:
            runs.append(run)
    return runs


def _push(window: DispatchWindow, runs: list[FunctionRun], now) -> None:
    """Redis, after the commit: push each run, then mark the window ``enqueued``. A refusal
    gives the window back (``enqueue-failed``, the runs never sent cancelled) and re-raises."""
    try:
        function_runs_send(runs=runs, now=now)
    except BROKER_ERRORS as error:
        _window_give_back(window, runs, error_public_message(error))
        raise
    handed_over_at = timezone.now()
    DispatchWindow.objects.filter(pk=window.pk, status=WindowStatus.DISPATCHING).update(
        status=WindowStatus.ENQUEUED, updated_at=handed_over_at)
    window.status, window.updated_at = WindowStatus.ENQUEUED, handed_over_at


def _window_give_back(window: DispatchWindow, runs: list[FunctionRun], error: str) -> None:
    """The broker refused: the window becomes retryable (compare-and-set on ``dispatching``)
    and its runs that were never sent will not run. A database that refuses this too leaves the
    window ``dispatching`` for maintenance to settle."""
    failed_at = timezone.now()
    try:
        with transaction.atomic():
            given_back = DispatchWindow.objects.filter(
                pk=window.pk, status=WindowStatus.DISPATCHING
            ).update(status=WindowStatus.ENQUEUE_FAILED, enqueue_error=error[:2000],
                     updated_at=failed_at)
            if given_back:
                function_runs_cancel(run_ids=[run.pk for run in runs],
                                     reason=RunReason.ENQUEUE_FAILED, now=failed_at,
                                     unsent_only=True)
    except DatabaseError:
        logger.warning("could not give a window back after its push failed", exc_info=True,
                       extra={"action": "cron_give_back_failed",
                              "dispatch_key": window.dispatch_key,
                              "correlation_id": window.correlation_id})


def _dispatched(trigger, payload, window, runs) -> TriggerOutcome:
    outcome = TriggerOutcome(Mode.DISPATCH_ONLY, payload, list(window.task_ids), window, runs)
    logger.info("cron dispatched", extra={
        "action": "cron_dispatched", "cron": trigger.cron.name, "dispatch_key": window.dispatch_key,
        "correlation_id": trigger.correlation_id, "task_ids": window.task_ids,
        "enqueued": outcome.enqueued})
    return outcome


def _window_fields(trigger: Trigger, payload: dict, *, status: WindowStatus) -> dict:
    now = trigger.requested_at
    return {
        "dispatch_key": payload["dispatchKey"],
        "cron": trigger.cron.name,
        "window_start": keys.window_start(now, payload["dispatchWindowSeconds"]),
        "window_seconds": payload["dispatchWindowSeconds"],
        "params": payload["params"],
        "status": status,
        "source": trigger.source.value,
        "correlation_id": trigger.correlation_id,
        "requested_at": now,
        "task_ids": _task_ids(trigger, payload),
        "created_at": now,
        "updated_at": now,
    }


def _task_ids(trigger: Trigger, payload: dict) -> list[str]:
    return [keys.task_id(function.task_prefix, payload["dispatchKey"])
            for function in trigger.cron.functions]


def overlap_key(cron_name: str, params: dict) -> str:
    """Runs of the same cron with the same params are "the previous run" for each other."""
    return f"{cron_name}:{keys.params_hash(params)}" if params else cron_name


def _run_requests(trigger: Trigger, payload: dict, *, inline: bool = False) -> list[RunRequest]:
    """A request per function of the cron; dispatched ones carry their task ids."""
    task_ids = [None] * len(trigger.cron.functions) if inline else _task_ids(trigger, payload)
    return [
        RunRequest(
            function=function.name,
            payload=payload,
            source=trigger.source.value,
            cron=trigger.cron.name,
            dispatch_key=payload["dispatchKey"],
            correlation_id=trigger.correlation_id,
            params=payload["params"],
            task_id=task_id,
            overlap_key=overlap_key(trigger.cron.name, payload["params"]),
        )
        for function, task_id in zip(trigger.cron.functions, task_ids, strict=True)
    ]


def _window_mark_emergency(*, trigger: Trigger, payload: dict) -> DispatchWindow:
    fields = _window_fields(trigger, payload, status=WindowStatus.INLINE_EMERGENCY)
    key = fields.pop("dispatch_key")
    window, _ = DispatchWindow.objects.update_or_create(
        dispatch_key=key,
        defaults={"status": WindowStatus.INLINE_EMERGENCY, "updated_at": trigger.requested_at},
        create_defaults={**fields, "task_ids": []},
    )
    return window


def _duplicate(window: DispatchWindow, payload: dict) -> TriggerOutcome:
    logger.info("cron dispatch suppressed as a duplicate", extra={
        "action": "cron_duplicate_suppressed", "dispatch_key": window.dispatch_key,
        "correlation_id": payload["correlationId"]})
    return TriggerOutcome(Mode.DUPLICATE, payload, list(window.task_ids), window)
