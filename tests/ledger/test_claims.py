"""The lease lifecycle in-process: claim by compare-and-set, heartbeat, fenced finish, take-back."""

from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from ledger import conf
from ledger.claims import (
    ClaimKind,
    Outcome,
    function_run_claim,
    function_run_finish,
    function_run_heartbeat,
    function_run_take_back,
    lease_expiry,
)
from ledger.models import AttemptOutcome, ConcurrencySlot, FunctionRun, RunReason, RunStatus
from ledger.registry import get_function
from tests.ledger.helpers import attempts, fresh, run_create

pytestmark = pytest.mark.django_db


def claim(run, now=None, **kwargs):
    spec = get_function(run.function)
    return function_run_claim(run_id=run.pk, spec=spec, now=now or timezone.now(), **kwargs)


def test_claim__queued_to_running_with_token_lease_slot_and_attempt():
    """A claim moves queued to running with a token, a lease, a slot and attempt 1."""
    run = run_create("t-limited")
    got = claim(run)
    run = fresh(run)
    assert got.kind == ClaimKind.CLAIMED
    assert run.status == RunStatus.RUNNING and run.claim_token == got.token
    assert run.lease_expires_at > timezone.now() and run.attempt == 1
    assert ConcurrencySlot.objects.get(run=run).slot == 0
    assert [(a.number, a.outcome, a.claim_token) for a in attempts(run)] == [
        (1, AttemptOutcome.RUNNING, got.token)]


def test_claim__second_delivery_finds_nothing_and_records_nothing():
    """A second claim of a running run returns NOTHING and leaves the row as it was."""
    run = run_create("t-ok")
    claim(run)
    before = fresh(run)
    assert claim(run).kind == ClaimKind.NOTHING
    after = fresh(run)
    assert (after.attempt, after.claim_token, after.updated_at) == (
        before.attempt, before.claim_token, before.updated_at)
    assert len(attempts(run)) == 1


def test_finish__fenced_by_token_after_take_back():
    """A worker whose run was taken back cannot overwrite the outcome of the one after it."""
    run = run_create("t-hang-once")
    late = claim(run)
    expired = timezone.now() + timedelta(seconds=conf.heartbeat_ttl_seconds() + 1)
    taken = function_run_take_back(run=fresh(run), now=expired)
    assert taken.status == RunStatus.QUEUED and taken.next_attempt_at == expired
    current = claim(taken, now=expired)
    finished = function_run_finish(run=late.run, claim=late,
                                   outcome=Outcome(AttemptOutcome.SUCCEEDED, result={"late": 1}),
                                   now=expired)
    assert finished.status == RunStatus.RUNNING and finished.claim_token == current.token
    assert finished.result is None
    assert [a.outcome for a in attempts(run)] == [AttemptOutcome.ABANDONED,
                                                  AttemptOutcome.RUNNING]


def test_heartbeat__renews_the_lease_while_ours_and_stops_when_not():
    """A beat moves the lease on; after a take-back the beat reports it lost the run."""
    run = run_create("t-ok")
    got = claim(run)
    spec = get_function("t-ok")
    later = timezone.now() + timedelta(seconds=3)
    assert function_run_heartbeat(run_id=run.pk, token=got.token, spec=spec,
                                  attempt_started_at=got.attempt.started_at, now=later)
    assert fresh(run).lease_expires_at == later + timedelta(seconds=conf.heartbeat_ttl_seconds())
    function_run_take_back(run=fresh(run), now=later + timedelta(hours=1))
    assert not function_run_heartbeat(run_id=run.pk, token=got.token, spec=spec,
                                      attempt_started_at=got.attempt.started_at, now=later)


def test_lease__never_past_timeout_plus_grace_however_often_it_beats(settings):
    """Heartbeats cannot keep a run past its attempt's timeout plus grace."""
    settings.LEDGER_GRACE_SECONDS = 5
    spec = get_function("t-ok")
    started = timezone.now()
    near_end = started + timedelta(seconds=spec.timeout_seconds + 4)
    assert lease_expiry(spec=spec, attempt_started_at=started, now=near_end) == (
        started + timedelta(seconds=spec.timeout_seconds + 5))


def test_take_back__last_attempt_ends_failed_abandoned():
    """A run out of attempts is failed/abandoned, its slot released, attempt abandoned."""
    run = run_create("t-ok")  # retries=0: one attempt
    claim(run)
    taken = function_run_take_back(run=fresh(run), now=timezone.now() + timedelta(hours=1))
    assert (taken.status, taken.reason) == (RunStatus.FAILED, RunReason.ABANDONED)
    assert "abandoned" in taken.error and taken.finished_at is not None
    assert not ConcurrencySlot.objects.filter(run=run).exists()
    assert function_run_take_back(run=fresh(run), now=timezone.now()) is None


def test_take_back__refuses_a_live_lease():
    """A run whose lease has not expired is not taken back."""
    run = run_create("t-ok")
    claim(run)
    assert function_run_take_back(run=fresh(run), now=timezone.now()) is None
    assert fresh(run).status == RunStatus.RUNNING


def test_finish__retry_queues_the_next_attempt_after_the_backoff():
    """A retryable failure goes back to queued, due after the backoff, slot released."""
    run = run_create("t-flaky")
    got = claim(run)
    now = timezone.now()
    done = function_run_finish(run=got.run, claim=got,
                               outcome=Outcome(AttemptOutcome.FAILED, error="boom"), now=now)
    assert done.status == RunStatus.QUEUED and done.reason == ""
    assert now + timedelta(seconds=1) <= done.next_attempt_at <= now + timedelta(seconds=1.25)
    assert done.enqueued_at is None and not ConcurrencySlot.objects.exists()
    assert claim(done, now=now).kind == ClaimKind.NOT_DUE


def test_busy__second_run_waits_for_the_slot_and_takes_over_a_stale_one():
    """Limit 1: a second run is BUSY; once the holder's lease lapses its slot is taken over."""
    holder, waiting = run_create("t-limited"), run_create("t-limited")
    claim(holder)
    assert claim(waiting).kind == ClaimKind.BUSY
    assert fresh(waiting).status == RunStatus.QUEUED and fresh(waiting).enqueued_at is None
    later = timezone.now() + timedelta(hours=1)
    assert claim(waiting, now=later).kind == ClaimKind.CLAIMED
    assert ConcurrencySlot.objects.get().run_id == waiting.pk


def test_inline_claim__slot_held__skipped_locked():
    """An inline run that finds the slot held ends skipped/locked (the cron's 'locked')."""
    holder = run_create("t-limited")
    claim(holder)
    inline = run_create("t-limited")
    FunctionRun.objects.filter(pk=inline.pk).update(inline=True)
    got = claim(fresh(inline), inline=True)
    assert got.kind == ClaimKind.SKIPPED
    assert (fresh(inline).status, fresh(inline).reason) == (RunStatus.SKIPPED, RunReason.LOCKED)


def test_idempotency__second_run_of_a_key_is_skipped_and_the_database_refuses_two_successes():
    """One success per (function, idempotency key): a later run is skipped as a duplicate."""
    first = run_create("t-ok", {"dispatchKey": "k:1"})
    got = claim(first)
    function_run_finish(run=got.run, claim=got, outcome=Outcome(AttemptOutcome.SUCCEEDED),
                        now=timezone.now())
    second = run_create("t-ok", {"dispatchKey": "k:1"})
    assert claim(second).kind == ClaimKind.SKIPPED
    assert fresh(second).reason == RunReason.IDEMPOTENT_DUPLICATE
    with pytest.raises(IntegrityError), transaction.atomic():
        FunctionRun.objects.filter(pk=second.pk).update(status=RunStatus.SUCCEEDED, reason="")
