"""The lease lifecycle of a run, fenced by its claim token: claim, heartbeat, finish, take back.

- Claim: a compare-and-set ``queued -> running`` with a new claim token, a lease and a
  concurrency slot, and an attempt row. A second delivery of the same run finds nothing to claim
  and records nothing.
- Heartbeat: one small UPDATE of the lease, only while the token is still ours.
- Finish: the attempt's outcome, recorded only while the token is still ours; a worker that lost
  its lease (taken back) changes nothing.
- Take back: a run whose lease expired (its worker died) gets a new attempt while attempts
  remain, else ends ``failed``/``abandoned``.
"""

import logging
import os
import socket
import uuid
from dataclasses import dataclass
from datetime import timedelta
from enum import Enum

from django.db import IntegrityError, transaction
from django.utils import timezone

from ledger import conf
from ledger.models import AttemptOutcome, FunctionAttempt, FunctionRun, RunReason, RunStatus
from ledger.registry import FunctionSpec, get_function
from ledger.services import bounded
from ledger.slots import slot_acquire, slot_mark_waiters, slot_release

logger = logging.getLogger(__name__)
HOSTNAME = socket.gethostname()


class ClaimKind(str, Enum):
    CLAIMED = "claimed"  # this caller runs it now
    NOTHING = "nothing"  # not queued any more (a second delivery): nothing recorded
    NOT_DUE = "not-due"  # its next attempt is later
    BUSY = "busy"  # every concurrency slot is held; it waits queued and is woken on release
    SKIPPED = "skipped"  # ended skipped (idempotent duplicate, or an inline run found it locked)


@dataclass(frozen=True)
class Claim:
    kind: ClaimKind
    run: FunctionRun | None = None
    token: uuid.UUID | None = None
    attempt: FunctionAttempt | None = None


class _LostRace(Exception):
    pass


def function_run_claim(*, run_id: int, spec: FunctionSpec, now, inline: bool = False) -> Claim:
    """queued -> running under a new claim token, a lease and a concurrency slot.

    Read, decide and claim in one transaction; the claim's UPDATE is a compare-and-set on the
    status and attempt number read, so a run changed since the read (claimed by a second
    delivery, taken back and queued again) is read again and decided again."""
    for _ in range(3):
        try:
            return _claim_once(run_id, spec, now, inline)
        except _LostRace:
            now = max(now, timezone.now())
    return Claim(ClaimKind.NOTHING)


def _claim_once(run_id: int, spec: FunctionSpec, now, inline: bool) -> Claim:
    with transaction.atomic():
        run = FunctionRun.objects.filter(pk=run_id).first()
        if run is None or run.status != RunStatus.QUEUED:
            return Claim(ClaimKind.NOTHING, run)
        if run.next_attempt_at and run.next_attempt_at > now:
            return Claim(ClaimKind.NOT_DUE, run)
        if _succeeded_already(run):
            _end_unclaimed(run, RunStatus.SKIPPED, RunReason.IDEMPOTENT_DUPLICATE, now)
            return Claim(ClaimKind.SKIPPED, run)
        if slot_acquire(run=run, limit=spec.concurrency_limit, now=now) is None:
            if inline:
                _end_unclaimed(run, RunStatus.SKIPPED, RunReason.LOCKED, now)
                return Claim(ClaimKind.SKIPPED, run)
            # Not sent any more: the holder's finish (or the sweeper) sends it.
            if not _unclaimed(run).update(enqueued_at=None):
                raise _LostRace  # claimed since the read (perhaps the slot's holder is itself)
            if not slot_mark_waiters(run=run):
                raise _LostRace  # the holders released meanwhile: claim again
            return Claim(ClaimKind.BUSY, run)
        # The attempt starts after the slot is ours: on PostgreSQL the slot INSERT may have
        # waited for the previous holder's finish to commit its release, so a ``now`` read
        # before it could record this start before that finish.
        now = max(now, timezone.now())
        token = uuid.uuid4()
        values = dict(status=RunStatus.RUNNING, claim_token=token, heartbeat_at=now,
                      lease_expires_at=lease_expiry(spec=spec, attempt_started_at=now, now=now),
                      next_attempt_at=None, attempt=run.attempt + 1,
                      started_at=run.started_at or now)
        if not _unclaimed(run).update(**values):
            raise _LostRace  # rolls back the slot taken above
        for field, value in values.items():
            setattr(run, field, value)
        attempt = FunctionAttempt.objects.create(
            run=run, number=run.attempt, claim_token=token, started_at=now,
            worker_host=HOSTNAME[:255], worker_pid=os.getpid())
        return Claim(ClaimKind.CLAIMED, run, token, attempt)


def lease_expiry(*, spec: FunctionSpec, attempt_started_at, now):
    """A lease lasts a heartbeat TTL past the last beat, never past timeout plus grace."""
    deadline = attempt_started_at + timedelta(seconds=spec.timeout_seconds + conf.grace_seconds())
    return min(deadline, now + timedelta(seconds=conf.heartbeat_ttl_seconds()))


def _succeeded_already(run: FunctionRun) -> bool:
    if not run.idempotency_key:
        return False
    return (
        FunctionRun.objects.filter(
            function=run.function, idempotency_key=run.idempotency_key, status=RunStatus.SUCCEEDED
        )
        .exclude(pk=run.pk)
        .exists()
    )


def _unclaimed(run: FunctionRun):
    """The run's row while it is still as the caller read it: queued, same attempt."""
    return FunctionRun.objects.filter(pk=run.pk, status=RunStatus.QUEUED, attempt=run.attempt)


def _end_unclaimed(run: FunctionRun, status: RunStatus, reason: RunReason, now) -> None:
    if not _unclaimed(run).update(status=status, reason=reason, finished_at=now):
        raise _LostRace
    run.refresh_from_db()


def function_run_heartbeat(*, run_id: int, token: uuid.UUID, spec: FunctionSpec,
                           attempt_started_at, now) -> bool:
    """Renew the lease; False when the run is no longer ours (taken back)."""
    return bool(
        FunctionRun.objects.filter(pk=run_id, claim_token=token, status=RunStatus.RUNNING).update(
            heartbeat_at=now,
            lease_expires_at=lease_expiry(spec=spec, attempt_started_at=attempt_started_at, now=now),
        )
    )


# --- finishing -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """How one attempt ended, as the runner saw it."""

    attempt: AttemptOutcome  # succeeded, skipped, failed or timeout
    result: dict | None = None
    error: str = ""
    retryable: bool = True
    skip_reason: str = ""  # skipped: why the function declined (RunReason)


def function_run_finish(*, run: FunctionRun, claim: Claim, outcome: Outcome, now) -> FunctionRun:
    """Record the attempt's outcome, fenced by the claim token.

    The run ends succeeded or failed, or goes back to queued for its next attempt. A worker that
    lost its lease (taken back by the sweeper) changes nothing. Returns the run as stored, with
    ``slot_waiters``: whether a run waits for the slot this finish released.
    """
    spec = get_function(run.function)
    run.slot_waiters = False
    started_at = claim.attempt.started_at
    attempt_ms = _ms(now - started_at)
    retry = (
        outcome.attempt not in (AttemptOutcome.SUCCEEDED, AttemptOutcome.SKIPPED)
        and outcome.retryable
        and run.attempt < run.max_attempts
    )
    error = bounded(outcome.error)
    released = dict(claim_token=None, lease_expires_at=None)
    if outcome.attempt == AttemptOutcome.SUCCEEDED:
        values = dict(status=RunStatus.SUCCEEDED, reason="", finished_at=now,
                      duration_ms=_ms(now - run.started_at), result=outcome.result, error="")
    elif outcome.attempt == AttemptOutcome.SKIPPED:
        values = dict(status=RunStatus.SKIPPED, reason=RunReason(outcome.skip_reason),
                      finished_at=now, duration_ms=_ms(now - run.started_at),
                      result=outcome.result, error="")
    elif retry:
        delay = timedelta(seconds=spec.backoff_seconds(run.attempt))
        values = dict(status=RunStatus.QUEUED, next_attempt_at=now + delay, enqueued_at=None,
                      error=error)
    else:
        timed_out = outcome.attempt == AttemptOutcome.TIMEOUT
        values = dict(status=RunStatus.FAILED,
                      reason=RunReason.TIMEOUT if timed_out else RunReason.ERROR,
                      finished_at=now, duration_ms=_ms(now - run.started_at), error=error)
    values.update(released)
    try:
        updated = _record(run, claim, outcome, values, attempt_ms, error, now)
    except IntegrityError:
        # Only a success can collide: another run with the same idempotency key succeeded
        # first. Nothing was written (one transaction): record it skipped instead.
        if values["status"] != RunStatus.SUCCEEDED or not run.idempotency_key:
            raise
        values.update(status=RunStatus.SKIPPED, reason=RunReason.IDEMPOTENT_DUPLICATE)
        updated = _record(run, claim, outcome, values, attempt_ms, error, now)
    if not updated:
        logger.warning(
            "run finished after losing its lease; its outcome was not recorded",
            extra={"action": "run_finish_fenced", "run_id": run.pk, "attempt": run.attempt,
                   "outcome": outcome.attempt, "correlation_id": run.correlation_id},
        )
        run.refresh_from_db()
        return run
    # The fenced UPDATE matched, so the row now holds exactly these values: no read back.
    for field, value in values.items():
        setattr(run, field, value)
    return run


def _record(run: FunctionRun, claim: Claim, outcome: Outcome, values: dict, attempt_ms: int,
            error: str, now) -> int:
    """The run's values, the attempt's outcome and the slot's release, all or nothing; sets
    ``run.slot_waiters``. Returns how many run rows matched the claim token (0 or 1)."""
    attempt_values = dict(outcome=outcome.attempt, finished_at=now, duration_ms=attempt_ms,
                          error=error)
    # The run row first, then the attempt, then the slot: the same order as the take-back.
    with transaction.atomic():
        updated = FunctionRun.objects.filter(
            pk=run.pk, claim_token=claim.token, status=RunStatus.RUNNING
        ).update(**values)
        if updated:
            FunctionAttempt.objects.filter(pk=claim.attempt.pk).update(**attempt_values)
            run.slot_waiters = slot_release(run_id=run.pk)
    return updated


def function_run_take_back(*, run: FunctionRun, now) -> FunctionRun | None:
    """A running run whose lease expired (its worker died): the attempt is ``abandoned``; the run
    is queued for its next attempt while attempts remain, else it ends ``failed``/``abandoned``.
    Returns the run when this caller took it back, None when someone else did first."""
    error = (
        f"attempt {run.attempt} abandoned: its worker stopped renewing the lease "
        f"(last heartbeat {run.heartbeat_at:%Y-%m-%dT%H:%M:%SZ})"
    )
    with transaction.atomic():
        mine = FunctionRun.objects.filter(
            pk=run.pk, claim_token=run.claim_token, status=RunStatus.RUNNING,
            lease_expires_at__lte=now,
        )
        if run.attempt < run.max_attempts:
            updated = mine.update(
                status=RunStatus.QUEUED, claim_token=None, lease_expires_at=None,
                next_attempt_at=now, enqueued_at=None, error=error,
            )
        else:
            updated = mine.update(
                status=RunStatus.FAILED, reason=RunReason.ABANDONED, claim_token=None,
                lease_expires_at=None, finished_at=now,
                duration_ms=_ms(now - run.started_at), error=error,
            )
        if not updated:
            return None
        FunctionAttempt.objects.filter(
            run_id=run.pk, claim_token=run.claim_token, outcome=AttemptOutcome.RUNNING
        ).update(outcome=AttemptOutcome.ABANDONED, finished_at=now, error=error)
        slot_release(run_id=run.pk)
    logger.warning(
        "took back an abandoned run",
        extra={"action": "run_taken_back", "run_id": run.pk, "function": run.function,
               "attempt": run.attempt, "correlation_id": run.correlation_id},
    )
    run.refresh_from_db()
    return run


def _ms(delta: timedelta) -> int:
    return max(0, int(delta.total_seconds() * 1000))
