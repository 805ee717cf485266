"""The runner: executes one ledger run, on a Django-Q worker or in-process.

One attempt per call: claim the run (compare-and-set, lease, concurrency slot), call the
function with its payload while a heartbeat renews the lease, enforce the timeout, record the
outcome fenced by the claim token, then hand on: the next attempt of a failed run, the next run
waiting for the slot just released. Inline runs (commands, the forced-inline and emergency
modes) go through the same code, so the ledger sees every execution.
"""

import json
import logging
import signal
import threading
import time
import traceback
from contextlib import contextmanager

from django.utils import timezone

from ledger import conf, observe
from ledger.claims import (
    Claim,
    ClaimKind,
    Outcome,
    function_run_claim,
    function_run_finish,
    function_run_take_back,
)
from ledger.exceptions import RunSkipped, RunTimedOut, UnknownFunction
from ledger.heartbeat import heartbeat
from ledger.models import AttemptOutcome, FunctionRun, RunReason, RunStatus
from ledger.registry import FunctionSpec, get_function
from ledger.services import (
    RunRequest,
    bounded,
    function_run_create,
    function_run_next_waiting,
    function_run_send,
)

logger = logging.getLogger(__name__)


def execute_run(run_ref: int | str, *, inline: bool = False) -> FunctionRun | None:
    """Run one attempt of the run if it is ours to run. Never raises for the job's errors.

    ``run_ref`` is the run's primary key (or, for tasks queued by an earlier version, its task
    id)."""
    claim, run = _claim(run_ref, inline=inline)
    if claim is None:
        return run
    spec = get_function(claim.run.function)
    observe.run_claimed(claim)
    outcome = _call(spec, claim, inline=inline)
    run = function_run_finish(run=claim.run, claim=claim, outcome=outcome, now=timezone.now())
    observe.run_finished(run)
    _hand_on(run)
    return run


def _claim(run_ref: int | str, *, inline: bool) -> tuple[Claim | None, FunctionRun | None]:
    """Read the run and claim it, deciding on the way: a run held by a dead worker is taken
    back, a next attempt due soon is waited for. (None, the run as read) when this delivery does
    not run it."""
    lookup = {"task_id": run_ref} if isinstance(run_ref, str) else {"pk": run_ref}
    run = FunctionRun.objects.filter(**lookup).first()
    if run is None:
        return None, None
    try:
        spec = get_function(run.function)
    except UnknownFunction as error:
        _fail_unknown(run, error)
        return None, run
    now = timezone.now()
    if run.status == RunStatus.RUNNING and run.lease_expires_at and run.lease_expires_at <= now:
        # A redelivery of a task whose worker died: take the run back before deciding.
        run = function_run_take_back(run=run, now=now) or run
    if run.status == RunStatus.QUEUED and run.next_attempt_at and run.next_attempt_at > now:
        wait = (run.next_attempt_at - now).total_seconds()
        if wait > conf.INLINE_RETRY_WAIT_MAX_SECONDS:
            # Too early to hold a worker for: the sweeper sends it when it is due.
            FunctionRun.objects.filter(pk=run.pk, status=RunStatus.QUEUED).update(
                enqueued_at=None)
            return None, run
        time.sleep(wait)
        now = timezone.now()
    claim = function_run_claim(run_id=run.pk, spec=spec, now=now, inline=inline)
    if claim.kind == ClaimKind.BUSY:
        # The holder may have released the slot before our "waiting" mark committed, and then
        # found nobody to wake: look once more, now that the mark is visible to everyone.
        claim = function_run_claim(run_id=run.pk, spec=spec, now=timezone.now(), inline=inline)
    if claim.kind != ClaimKind.CLAIMED:
        _log_unclaimed(run, claim)
        return None, claim.run or run
    return claim, claim.run


def _log_unclaimed(run: FunctionRun, claim: Claim) -> None:
    status = claim.run.status if claim.run else FunctionRun.objects.filter(pk=run.pk).values_list(
        "status", flat=True).first()
    logger.info("delivery did not claim the run", extra={
        "action": f"run_delivery_{claim.kind.value}", "run_id": run.pk, "function": run.function,
        "status": status, "correlation_id": run.correlation_id})


def run_inline(*, request: RunRequest) -> FunctionRun:
    """Create a run and execute it here and now (one attempt); the ledger records it."""
    run = function_run_create(request=request, now=timezone.now(), inline=True)
    if run.status == RunStatus.QUEUED:
        run = execute_run(run.pk, inline=True) or run
    return run


def _call(spec: FunctionSpec, claim: Claim, *, inline: bool) -> Outcome:
    run = claim.run
    log = {"run_id": run.pk, "function": run.function, "attempt": run.attempt,
           "correlation_id": run.correlation_id}
    logger.info("run started", extra={"action": "run_started", **log})
    try:
        with heartbeat(spec, claim), _timeout(spec.timeout_seconds, enabled=not inline):
            result = spec.func(dict(run.payload))
        outcome = Outcome(AttemptOutcome.SUCCEEDED, result=_small_json(result))
    except RunSkipped as skip:
        outcome = Outcome(AttemptOutcome.SKIPPED, result=_small_json(skip.result),
                          skip_reason=skip.reason)
    except RunTimedOut:
        outcome = Outcome(
            AttemptOutcome.TIMEOUT, error=f"timed out after {spec.timeout_seconds} s"
        )
    except Exception as error:  # the job's error, recorded; the worker carries on
        outcome = Outcome(
            AttemptOutcome.FAILED,
            error=bounded(f"{type(error).__name__}: {error}\n{traceback.format_exc()}"),
            retryable=spec.is_retryable(error),
        )
    level = logging.WARNING if outcome.attempt in (AttemptOutcome.FAILED,
                                                   AttemptOutcome.TIMEOUT) else logging.INFO
    logger.log(level, "run attempt ended", extra={"action": "run_attempt_ended",
                                                  "outcome": outcome.attempt, **log})
    return outcome


def _hand_on(run: FunctionRun) -> None:
    """After an attempt: send the run's next attempt when it is due soon (a later one is the
    sweeper's), and wake the oldest run waiting for the slot just released.

    Only a slot marked by a claim that found it held can have a run waiting for it
    (``slots.slot_mark_waiters``), so an uncontended run looks for none. The two oldest waiting
    runs are sent: one takes the slot, the other finds it held and marks it again, so each
    release passes the wake-up on until nobody waits."""
    now = timezone.now()
    try:
        if run.status == RunStatus.QUEUED and not run.inline and _due_soon(run, now):
            function_run_send(run=run, now=now)
        if not getattr(run, "slot_waiters", True):
            return
        for waiting in function_run_next_waiting(
            function=run.function, concurrency_key=run.concurrency_key, now=now, count=2
        ):
            if waiting.pk != run.pk:
                function_run_send(run=waiting, now=now)
    except Exception:  # the broker is down: the sweeper sends them later
        logger.exception("could not hand on after a run", extra={"action": "run_hand_on_failed",
                                                                  "run_id": run.pk})


def _due_soon(run: FunctionRun, now) -> bool:
    if run.next_attempt_at is None:
        return True
    return (run.next_attempt_at - now).total_seconds() <= conf.INLINE_RETRY_WAIT_MAX_SECONDS


def _small_json(result) -> dict | None:
    if result is None:
        return None
    if not isinstance(result, dict):
        result = {"value": result}
    text = json.dumps(result, default=str)
    if len(text) > conf.RESULT_MAX_BYTES:
        return {"truncated": True, "bytes": len(text), "keys": sorted(result)[:50]}
    return json.loads(text)


def _fail_unknown(run: FunctionRun, error: Exception) -> None:
    FunctionRun.objects.filter(pk=run.pk, status__in=[RunStatus.QUEUED, RunStatus.RUNNING]).update(
        status=RunStatus.FAILED, reason=RunReason.ERROR, finished_at=timezone.now(),
        error=bounded(str(error)), claim_token=None, lease_expires_at=None,
    )


@contextmanager
def _timeout(seconds: int, *, enabled: bool):
    """Raise RunTimedOut in the worker's main thread after ``seconds``.

    Django-Q's own alarm (the function's timeout plus bookkeeping room) is set around us; it is
    replaced for the call and restored afterwards so our bookkeeping still has its limit."""
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum, frame):
        raise RunTimedOut(f"timed out after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    remaining = signal.alarm(seconds)
    started = time.monotonic()
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
        if remaining:
            signal.alarm(max(1, remaining - int(time.monotonic() - started)))
