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

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from ledger import conf
from ledger.db import checking_the_connection
from ledger.exceptions import UnknownFunction
from ledger.models import AttemptOutcome, FunctionAttempt, FunctionRun, RunReason, RunStatus
from ledger.registry import FunctionSpec, get_function
from ledger.run_sql import claim_at_once, claim_update, finish_in_one_statement
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


def function_run_claim(*, run_id: int, spec: FunctionSpec, now, inline: bool = False,
                       run: FunctionRun | None = None) -> Claim:
    """queued -> running under a new claim token, a lease and a concurrency slot.

    ``run`` is the row as the caller last read it (read here when not given): the claim's UPDATE
    is a compare-and-set on ``status='queued'`` *and* the attempt number read, so when it matches
    nothing changed since the read and the claimed row is the read row plus the values set here,
    with no read inside the transaction and none after. When it matches nothing the run is read
    again and the claim retried (a run taken back and queued again between the read and the
    claim), so a stale read never loses a delivery.
    """
    # The first try trusts the caller's read and the claim's own checks; a try that matched
    # nothing reads the run again and decides carefully (the slow path).
    for careful in (False, True, True, True):
        if run is None:
            run = FunctionRun.objects.filter(pk=run_id).first()
        if run is None or run.status != RunStatus.QUEUED:
            return Claim(ClaimKind.NOTHING)
        if run.next_attempt_at and run.next_attempt_at > now:
            return Claim(ClaimKind.NOT_DUE, run)
        if not careful and connection.vendor == "postgresql":
            claim = _claim_in_one_statement("id", run.pk, spec, now)
            if claim is not None:
                return claim
        try:
            return _claim_once(run, spec, now, inline, careful=careful)
        except _LostRace:
            run = None  # changed since the read, or a duplicate: read again and decide again
    return Claim(ClaimKind.NOTHING)


def _claim_once(run: FunctionRun, spec: FunctionSpec, now, inline: bool, *,
                careful: bool) -> Claim:
    """One try, in one transaction. The fast path (not ``careful``) is a slot INSERT, the claim's
    UPDATE (which also refuses an idempotent duplicate) and the attempt INSERT; the careful path
    first looks for a success of the same key, so that a duplicate ends skipped instead of
    failing the claim again."""
    with transaction.atomic():
        if careful and _succeeded_already(run):
            return _skip_duplicate(run, now)
        if slot_acquire(run=run, limit=spec.concurrency_limit, now=now) is None:
            if not careful and _succeeded_already(run):
                return _skip_duplicate(run, now)  # a duplicate never waits for a slot
            if inline:
                _end_unclaimed(run, RunStatus.SKIPPED, RunReason.LOCKED, now)
                return Claim(ClaimKind.SKIPPED, run)
            # Not sent any more: the holder's finish (or the sweeper) sends it.
            if not _unclaimed(run).update(enqueued_at=None):
                raise _LostRace  # claimed since the read (perhaps the slot's holder is itself)
            if not slot_mark_waiters(run=run):
                raise _LostRace  # the holders released meanwhile: claim again
            return Claim(ClaimKind.BUSY, run)
        # The attempt starts after the slot is ours: on PostgreSQL the slot INSERT may have waited
        # for the previous holder's finish to commit its release, so a ``now`` read before it
        # could record this start before that finish (overlapping attempts in the ledger).
        now = max(now, timezone.now())
        token = uuid.uuid4()
        values = _claimed_values(spec, token, now)
        values["heartbeat_at"] = now
        attempt = _new_attempt(run, token, now)
        # One statement on PostgreSQL: the compare-and-set, the duplicate check, the attempt's
        # row and the commit without waiting for the disk (see ASYNCHRONOUS_CLAIM_COMMIT below).
        if not claim_update(run=run, values=values, now=now, attempt=attempt):
            raise _LostRace  # rolls back the slot taken above
        return _claimed(run, values, token, attempt)


def function_run_claim_delivered(*, run_ref: int | str, function: str, now) -> Claim | None:
    """A delivery's claim with no read before it, on PostgreSQL: the task names the run (its
    task id or primary key) and its function, and one statement claims it when nothing stands
    in the way (``run_sql.claim_at_once``). None when it claimed nothing, or cannot be tried
    (SQLite, a function not registered here): the caller reads the run and claims it with
    ``function_run_claim``, which decides why.

    Being a delivery's first statement, it also serves as the connection's health check
    (``db.checking_the_connection``). If the connection turns out lost, the claim may or may not
    have committed: None, and the caller's read shows which (a claim committed without us is
    an attempt nobody runs, taken back once its lease lapses, as a killed worker's)."""
    if connection.vendor != "postgresql":
        return None
    try:
        spec = get_function(function)
    except UnknownFunction:
        return None
    column = "task_id" if isinstance(run_ref, str) else "id"
    return checking_the_connection(_claim_in_one_statement, column, run_ref, spec, now,
                                   repeat=False)


def _claim_in_one_statement(column: str, value, spec: FunctionSpec, now) -> Claim | None:
    """The uncontended claim in one round trip (``run_sql.claim_at_once``); None when it claimed
    nothing, for the transaction path to decide why."""
    token = uuid.uuid4()
    values = _claimed_values(spec, token, now)
    attempt = _attempt_here(token)  # its run, number and start come from the claimed row
    run = claim_at_once(column=column, value=value, function=spec.name, values=values, now=now,
                        attempt=attempt)
    return None if run is None else Claim(ClaimKind.CLAIMED, run, token, attempt)


def _claimed_values(spec: FunctionSpec, token: uuid.UUID, now) -> dict:
    """What a claim writes to the run row (with ``heartbeat_at``, the attempt's start)."""
    return dict(
        status=RunStatus.RUNNING,
        claim_token=token,
        lease_expires_at=lease_expiry(spec=spec, attempt_started_at=now, now=now),
        next_attempt_at=None,
    )


def _new_attempt(run: FunctionRun, token: uuid.UUID, now) -> FunctionAttempt:
    return _attempt_here(token, run=run, number=run.attempt + 1, started_at=now)


def _attempt_here(token: uuid.UUID, **fields) -> FunctionAttempt:
    """An attempt made by this worker process (host and pid, for the operator)."""
    return FunctionAttempt(claim_token=token, worker_host=HOSTNAME[:255], worker_pid=os.getpid(),
                           **fields)


def _claimed(run: FunctionRun, values: dict, token: uuid.UUID, attempt: FunctionAttempt) -> Claim:
    """The claim matched the row as read (same status and attempt), so the row now holds exactly
    the read values plus these: no read back."""
    for field, value in values.items():
        setattr(run, field, value)
    run.attempt += 1
    run.started_at = run.started_at or attempt.started_at
    return Claim(ClaimKind.CLAIMED, run, token, attempt)


def _skip_duplicate(run: FunctionRun, now) -> Claim:
    _end_unclaimed(run, RunStatus.SKIPPED, RunReason.IDEMPOTENT_DUPLICATE, now)
    return Claim(ClaimKind.SKIPPED, run)


# ASYNCHRONOUS_CLAIM_COMMIT. On PostgreSQL a claim's COMMIT returns before its WAL reaches the
# disk (``run_sql.claim_update`` sets ``synchronous_commit`` off for the claim's transaction,
# only when its UPDATE matched). Safe for a claim, and only a claim: a database crash can lose at
# most the last moments of such commits, and a lost claim leaves the run `queued` with no
# attempt row, so it is claimed again (a delivery that already ran it makes it run again: at
# least once, as with a killed worker). The finish stays synchronous, and WAL is flushed in
# order, so once a finish is durable its claim is too. Skips and busy marks are not claims and
# keep the synchronous commit.


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

    attempt: AttemptOutcome  # succeeded, failed or timeout
    result: dict | None = None
    error: str = ""
    retryable: bool = True


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
        outcome.attempt != AttemptOutcome.SUCCEEDED
        and outcome.retryable
        and run.attempt < run.max_attempts
    )
    error = bounded(outcome.error)
    released = dict(claim_token=None, lease_expires_at=None)
    if outcome.attempt == AttemptOutcome.SUCCEEDED:
        values = dict(status=RunStatus.SUCCEEDED, reason="", finished_at=now,
                      duration_ms=_ms(now - run.started_at), result=outcome.result, error="")
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
        # first. Nothing was written (one statement, or one transaction on SQLite): redo it.
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
    if connection.vendor == "postgresql":
        finished, run.slot_waiters = finish_in_one_statement(
            run_id=run.pk, token=claim.token, run_values=values, attempt_id=claim.attempt.pk,
            attempt_values=attempt_values)
        return int(finished)
    # SQLite (no data-modifying CTEs): one transaction. The run row first, then the attempt: the
    # same order as the take-back.
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
