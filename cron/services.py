"""The dispatch service: every trigger of a cron becomes at most one dispatch per window.

``cron_trigger`` decides the mode (forced inline, inline, dispatch) and returns a
``TriggerOutcome`` the view renders. Exactly-once lives in the database: the window row's unique
key, inserted with ``ON CONFLICT DO NOTHING``: no row back means "already there". Never
checked first.
"""

import logging
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum

from django.db import DatabaseError, transaction
from django.db.models import F
from django.utils import timezone
from redis import RedisError

from cron import conf, keys
from cron.known_windows import known_window_exists, known_window_recall, known_window_remember
from cron.models import DispatchWindow, WindowStatus
from cron.observed import observed_trigger
from cron.registry import CronDefinition
from ledger.db import select_row
from ledger.enqueue import broker_is_transactional
from ledger.models import FunctionRun, RunReason
from ledger.runner import run_inline
from ledger.services import (
    Overlap,
    RunRequest,
    function_run_create,
    function_run_reopen,
    function_runs_cancel,
    function_runs_create_with,
    function_runs_enqueue,
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
        return self.mode == Mode.DISPATCH_ONLY


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
    if dispatch is None:
        if conf.forced_inline(cron):
            return cron_run_inline(trigger=trigger, payload=payload, mode=Mode.FORCED)
        if not conf.uses_queue(cron):
            return cron_run_inline(trigger=trigger, payload=payload, mode=Mode.INLINE)
    try:
        return dispatch_window_dispatch(trigger=trigger, payload=payload)
    except BROKER_ERRORS as error:
        message = scrub(f"{type(error).__name__}: {error}")
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
    overlap = _overlap_key(trigger, payload)
    runs = [
        run_inline(request=_run_request(trigger, payload, function.name, task_id=None,
                                        overlap_key=overlap))
        for function in trigger.cron.functions
    ]
    return TriggerOutcome(mode, payload, runs=runs)


def _emergency_inline(*, trigger: Trigger, payload: dict) -> TriggerOutcome:
    window = _window_mark_emergency(trigger=trigger, payload=payload)
    outcome = cron_run_inline(trigger=trigger, payload=payload, mode=Mode.EMERGENCY)
    outcome.window = window
    return outcome


def dispatch_window_dispatch(*, trigger: Trigger, payload: dict) -> TriggerOutcome:
    """Claim the window and hand its functions to the broker, or report the duplicate.

    The window row's unique key is the guarantee: ``INSERT … ON CONFLICT DO NOTHING`` either
    inserts it (this trigger owns the window) or finds it there. A duplicate of a window this
    process already saw handed over is answered from memory (``known_windows``).

    The window is written ``enqueued`` with its queued runs (on PostgreSQL one statement,
    ``function_runs_create_with``). On the ORM broker the enqueue commits with them (an outbox
    for free). On Redis the push follows the commit (HANDED_OVER_AT_COMMIT); a push that fails
    gives the window back (``enqueue-failed``, runs cancelled), so a retry in the same window
    dispatches again.
    """
    key = payload["dispatchKey"]
    now = trigger.requested_at
    known = known_window_recall(key, now=now)
    if known is not None:
        return _duplicate(known, payload)
    if known_window_exists(key, now=now):  # seen, not trusted yet: read it, skip the INSERT
        existing = _window_read(key)
        if existing is not None:
            return _dispatch_existing(trigger=trigger, payload=payload, now=now, window=existing)
    task_ids = _task_ids(trigger, payload)  # the window's and its runs', computed once
    window = _window_new(trigger, payload, now, task_ids)
    runs = function_runs_create_with(head=window, unique_field="dispatch_key",
                                     requests=_run_requests(trigger, payload, task_ids), now=now)
    if runs is None:
        existing = _window_read(key)
        if existing is None:
            raise DispatchWindow.DoesNotExist(f"window {key} was deleted during its dispatch")
        return _dispatch_existing(trigger=trigger, payload=payload, now=now, window=existing)
    if not broker_is_transactional():
        _push(window, runs)
    return _dispatched(trigger, payload, window, runs)


# HANDED_OVER_AT_COMMIT. On Redis a window is ``enqueued`` from the commit that writes its
# runs, before the push: from that commit the ledger owes the work, its runs are stamped sent
# (``ledger.services.SENT_BY_CALLER``) and the push is the doorbell. Nothing is written after a
# push that succeeds (a second statement per dispatch, measured in docs/performance.md).
# - A push that fails within ``conf.GIVE_BACK_SECONDS`` of the commit gives the window back:
#   ``enqueue-failed`` and its runs cancelled, in a compare-and-set, then 503; a retry in the
#   window takes it over.
# - A push that fails later (a broker that took the connection and hung) no longer can: the
#   window stays handed over, the dispatch answers 202, and the sweeper sends the runs once
#   they have waited ``LEDGER_REQUEUE_AFTER_SECONDS``, as for a web process that died between
#   its commit and its push, or a task Redis lost.
# Because the status is written before the push, a window another process reads from the
# database is answered from memory only once it can no longer be given back
# (``conf.TRUST_READ_WINDOW_AFTER_SECONDS``); until then that process reads it again.


def _window_read(key: str) -> DispatchWindow | None:
    """The window by its key, in SQL written once (``ledger.db.select_row``): a duplicate's
    only statement until its window is trusted."""
    return select_row(DispatchWindow, "dispatch_key", key)


def _dispatch_existing(*, trigger: Trigger, payload: dict, now,
                       window: DispatchWindow) -> TriggerOutcome:
    """The window exists: a duplicate, unless its last enqueue failed, in which case this
    trigger takes it over (compare-and-set) and sends its runs again."""
    key = payload["dispatchKey"]
    if window.status == WindowStatus.ENQUEUE_FAILED:
        taken_over = _take_over(trigger=trigger, payload=payload, now=now)
        if taken_over is not None:
            return taken_over
        window = DispatchWindow.objects.get(dispatch_key=key)
    _remember_read(window)
    return _duplicate(window, payload)


def _remember_read(window: DispatchWindow) -> None:
    """Remember a window read from the database. On Redis an ``enqueued`` one may still be
    given back by the process pushing it (HANDED_OVER_AT_COMMIT): memory answers for it only
    once that can no longer happen."""
    if broker_is_transactional() or window.status != WindowStatus.ENQUEUED:
        known_window_remember(window)
    else:
        known_window_remember(window, trusted_from=window.updated_at + timedelta(
            seconds=conf.TRUST_READ_WINDOW_AFTER_SECONDS))


def _take_over(*, trigger: Trigger, payload: dict, now) -> TriggerOutcome | None:
    """An ``enqueue-failed`` window dispatched again by this trigger; None when another trigger
    took it over first."""
    key = payload["dispatchKey"]
    transactional = broker_is_transactional()
    with transaction.atomic():
        taken_over = DispatchWindow.objects.filter(
            dispatch_key=key, status=WindowStatus.ENQUEUE_FAILED
        ).update(
            status=WindowStatus.ENQUEUED,
            source=trigger.source.value, correlation_id=trigger.correlation_id,
            requested_at=now, updated_at=now, enqueue_error="",
            dispatch_attempts=F("dispatch_attempts") + 1,
        )
        if not taken_over:
            return None
        window = DispatchWindow.objects.get(dispatch_key=key)
        runs = _reopen_runs(trigger, payload, now)
        if transactional:
            function_runs_enqueue(runs=runs)
    if not transactional:
        _push(window, runs)
    return _dispatched(trigger, payload, window, runs)


def _push(window: DispatchWindow, runs: list[FunctionRun]) -> None:
    """Redis: push after the commit, every task in one ``RPUSH``. Nothing is written when it
    succeeds; a refusal gives the window back and re-raises, unless it came too late to
    (HANDED_OVER_AT_COMMIT)."""
    try:
        function_runs_enqueue(runs=runs)
    except BROKER_ERRORS as error:
        message = scrub(f"{type(error).__name__}: {error}")
        if _window_give_back(window, runs, message):
            raise
        _window_note_late_failure(window, message)


def _window_note_late_failure(window: DispatchWindow, message: str) -> None:
    """A push failed too late to give its window back: the window stays ``enqueued`` and the
    sweeper sends its runs. Logged, and written on the window for the operator who wonders why
    its runs started late; a database that refuses this note changes nothing else."""
    note = f"push failed after the handover; the sweeper sends the runs: {message}"
    logger.warning("cron push failed after its window was handed over", extra={
        "action": "cron_push_failed_late", "dispatch_key": window.dispatch_key,
        "correlation_id": window.correlation_id, "error": message,
        "hint": "the window stays enqueued; the ledger's sweeper sends its queued runs "
                "once the broker answers"})
    try:
        DispatchWindow.objects.filter(pk=window.pk).update(enqueue_error=note[:2000])
    except DatabaseError:
        logger.warning("could not note the late push failure on its window", exc_info=True,
                       extra={"action": "cron_push_failed_late_unrecorded",
                              "dispatch_key": window.dispatch_key})


def _dispatched(trigger, payload, window, runs) -> TriggerOutcome:
    known_window_remember(window)  # committed: its status is final unless the push failed
    logger.info("cron dispatched", extra={
        "action": "cron_dispatched", "cron": trigger.cron.name, "dispatch_key": window.dispatch_key,
        "correlation_id": trigger.correlation_id, "task_ids": window.task_ids})
    return TriggerOutcome(Mode.DISPATCH_ONLY, payload, list(window.task_ids), window, runs)


def _window_new(trigger: Trigger, payload: dict, now, task_ids: list[str]) -> DispatchWindow:
    """The window's row, not written yet: ``enqueued``, as it is from the commit that writes it
    with its runs (HANDED_OVER_AT_COMMIT)."""
    return DispatchWindow(
        dispatch_key=payload["dispatchKey"],
        cron=trigger.cron.name,
        window_start=keys.window_start(now, payload["dispatchWindowSeconds"]),
        window_seconds=payload["dispatchWindowSeconds"],
        params=payload["params"],
        status=WindowStatus.ENQUEUED,
        source=trigger.source.value,
        correlation_id=trigger.correlation_id,
        requested_at=now,
        task_ids=task_ids,
        created_at=now,
        updated_at=now,
    )


def _task_ids(trigger: Trigger, payload: dict) -> list[str]:
    return [keys.task_id(function.task_prefix, payload["dispatchKey"])
            for function in trigger.cron.functions]


def _run_request(trigger: Trigger, payload: dict, function: str, *, task_id,
                 overlap_key: str) -> RunRequest:
    # Inline runs are serialized by the concurrency slot (a held slot means "locked"); the
    # overlap policy is for dispatched windows.
    inline = task_id is None
    return RunRequest(
        function=function,
        payload=payload,
        source=trigger.source.value,
        cron=trigger.cron.name,
        dispatch_key=payload["dispatchKey"],
        correlation_id=trigger.correlation_id,
        params=payload["params"],
        task_id=task_id,
        overlap=Overlap.ALLOW_ALL if inline else trigger.cron.overlap,
        overlap_key=overlap_key,
    )


def _overlap_key(trigger: Trigger, payload: dict) -> str:
    """"The previous run" for the overlap policy: same cron, same params."""
    return overlap_key(trigger.cron.name, payload["params"])


def overlap_key(cron_name: str, params: dict) -> str:
    """Runs of the same cron with the same params are "the previous run" for each other."""
    return f"{cron_name}:{keys.params_hash(params)}" if params else cron_name


def _run_requests(trigger: Trigger, payload: dict,
                  task_ids: list[str] | None = None) -> list[RunRequest]:
    """A request per function of the cron, with the dispatch's task ids (computed here when
    the caller has none)."""
    task_ids = task_ids or _task_ids(trigger, payload)
    overlap = _overlap_key(trigger, payload)  # one for all the window's runs
    return [
        _run_request(trigger, payload, function.name, task_id=task_id, overlap_key=overlap)
        for function, task_id in zip(trigger.cron.functions, task_ids)
    ]


def _reopen_runs(trigger: Trigger, payload: dict, now) -> list[FunctionRun]:
    """The runs a failed enqueue cancelled, queued again and stamped sent like new ones
    (``SENT_BY_CALLER``); any missing one is created."""
    runs = []
    for request in _run_requests(trigger, payload):
        run = function_run_reopen(task_id=request.task_id, now=now)
        if run is None:
            run = function_run_create(request=request, now=now, sent_by_caller=True)
        runs.append(run)
    return runs


def _window_give_back(window: DispatchWindow, runs, error: str) -> bool:
    """The broker refused: the window becomes retryable and its runs will not run from this
    push, if the refusal came within ``conf.GIVE_BACK_SECONDS`` of the window's handover
    (compare-and-set on that handover). False when it came too late (HANDED_OVER_AT_COMMIT)."""
    handed_over_at, failed_at = window.updated_at, timezone.now()
    if failed_at >= handed_over_at + timedelta(seconds=conf.GIVE_BACK_SECONDS):
        return False
    with transaction.atomic():
        given_back = DispatchWindow.objects.filter(
            pk=window.pk, status=WindowStatus.ENQUEUED, updated_at=handed_over_at
        ).update(status=WindowStatus.ENQUEUE_FAILED, enqueue_error=error[:2000],
                 updated_at=failed_at, task_ids=[run.task_id for run in runs])
        if given_back:
            function_runs_cancel(run_ids=[run.pk for run in runs],
                                 reason=RunReason.ENQUEUE_FAILED, now=failed_at)
    return bool(given_back)


def _window_mark_emergency(*, trigger: Trigger, payload: dict) -> DispatchWindow:
    now = trigger.requested_at
    window, _ = DispatchWindow.objects.update_or_create(
        dispatch_key=payload["dispatchKey"],
        defaults={"status": WindowStatus.INLINE_EMERGENCY, "updated_at": now},
        create_defaults={
            "cron": trigger.cron.name,
            "window_start": keys.window_start(now, payload["dispatchWindowSeconds"]),
            "window_seconds": payload["dispatchWindowSeconds"],
            "params": payload["params"],
            "status": WindowStatus.INLINE_EMERGENCY,
            "source": trigger.source.value,
            "correlation_id": trigger.correlation_id,
            "requested_at": now,
            "created_at": now,
            "updated_at": now,
        },
    )
    return window


def _duplicate(window: DispatchWindow, payload: dict) -> TriggerOutcome:
    logger.info("cron dispatch suppressed as a duplicate", extra={
        "action": "cron_duplicate_suppressed", "dispatch_key": window.dispatch_key,
        "correlation_id": payload["correlationId"]})
    return TriggerOutcome(Mode.DUPLICATE, payload, list(window.task_ids), window)


_URL_CREDENTIALS = re.compile(r"(\w+://)[^/@\s]+@")
_PASSWORD = re.compile(r"(password=)\S+", re.IGNORECASE)


def scrub(message: str) -> str:
    """An error message safe to return: no credentials from URLs or DSNs."""
    message = _URL_CREDENTIALS.sub(r"\1***@", message)
    return _PASSWORD.sub(r"\1***", message)[:500]
