"""The lease lifecycle in-process: claim by compare-and-set, heartbeat, fenced finish, take-back."""

import threading
import time
from datetime import timedelta

import pytest
from django.db import IntegrityError, connection, transaction
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
from tests.ledger.helpers import (
    attempts,
    fresh,
    run_create,
    stored_row,
    wait_until_another_backend_waits_for_us,
)

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
    before = stored_row(run)
    assert claim(run).kind == ClaimKind.NOTHING
    assert stored_row(run) == before
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


def test_claim__taken_back_run__claimed_again_as_the_next_attempt():
    """A run taken back and queued again after its first claim is claimed again, as attempt 2."""
    run = run_create("t-hang-once")
    claim(run)
    function_run_take_back(run=fresh(run), now=timezone.now() + timedelta(hours=1))
    later = timezone.now() + timedelta(hours=1, seconds=1)
    got = claim(run, now=later)
    assert got.kind == ClaimKind.CLAIMED and got.run.attempt == 2
    assert [a.number for a in attempts(run)] == [1, 2]
    assert ConcurrencySlot.objects.get().run_id == run.pk


def test_claim__duplicate_of_a_success__skipped_with_no_attempt_and_no_slot_left():
    """A run whose idempotency key already succeeded ends skipped, with no attempt and no slot."""
    first = run_create("t-ok", {"dispatchKey": "k:dup"})
    got = claim(first)
    function_run_finish(run=got.run, claim=got, now=timezone.now(),
                        outcome=Outcome(AttemptOutcome.SUCCEEDED))
    second = run_create("t-ok", {"dispatchKey": "k:dup"})
    assert claim(second).kind == ClaimKind.SKIPPED
    stored = fresh(second)
    assert (stored.status, stored.reason, stored.attempt) == (
        RunStatus.SKIPPED, RunReason.IDEMPOTENT_DUPLICATE, 0)
    assert attempts(second) == [] and not ConcurrencySlot.objects.exists()


def test_claim__duplicate_whose_slot_is_held__skipped_rather_than_left_waiting():
    """A duplicate never waits for a slot: it ends skipped even while another run holds it."""
    done = run_create("t-limited", {"dispatchKey": "k:held"})
    got = claim(done)
    function_run_finish(run=got.run, claim=got, now=timezone.now(),
                        outcome=Outcome(AttemptOutcome.SUCCEEDED))
    holder = run_create("t-limited", {"dispatchKey": "k:other"})
    assert claim(holder).kind == ClaimKind.CLAIMED
    duplicate = run_create("t-limited", {"dispatchKey": "k:held"})
    assert claim(duplicate).kind == ClaimKind.SKIPPED
    assert fresh(duplicate).reason == RunReason.IDEMPOTENT_DUPLICATE
    assert ConcurrencySlot.objects.get().waiters is False  # nobody marked as waiting


@pytest.mark.django_db(transaction=True)
def test_finish__idempotency_key_won_by_another_run_meanwhile__skipped_duplicate():
    """Both claimed before either succeeded: the later success is recorded as a duplicate."""
    first = run_create("t-ok", {"dispatchKey": "k:race"})
    second = run_create("t-ok", {"dispatchKey": "k:race"})
    FunctionRun.objects.filter(pk=second.pk).update(concurrency_key="other")  # not BUSY
    second = fresh(second)
    got_first, got_second = claim(first), claim(second)
    function_run_finish(run=got_first.run, claim=got_first, now=timezone.now(),
                        outcome=Outcome(AttemptOutcome.SUCCEEDED))
    done = function_run_finish(run=got_second.run, claim=got_second, now=timezone.now(),
                               outcome=Outcome(AttemptOutcome.SUCCEEDED))
    assert (done.status, done.reason) == (RunStatus.SKIPPED, RunReason.IDEMPOTENT_DUPLICATE)
    assert attempts(second)[0].outcome == AttemptOutcome.SUCCEEDED
    assert not ConcurrencySlot.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_finish__taken_back_meanwhile__writes_nothing_and_keeps_the_new_holders_slot():
    """Fenced: a finish whose token is gone touches neither the run, the attempt nor a slot."""
    run = run_create("t-hang-once", {"counter": "/dev/null"})
    got = claim(run)
    function_run_take_back(run=fresh(run), now=timezone.now() + timedelta(hours=1))
    again = claim(run, now=timezone.now() + timedelta(hours=1, seconds=1))
    assert again.kind == ClaimKind.CLAIMED
    late = function_run_finish(run=got.run, claim=got, now=timezone.now(),
                               outcome=Outcome(AttemptOutcome.SUCCEEDED))
    assert (late.status, late.claim_token) == (RunStatus.RUNNING, again.token)
    first, second = attempts(run)
    assert (first.outcome, second.outcome) == (AttemptOutcome.ABANDONED, AttemptOutcome.RUNNING)
    assert ConcurrencySlot.objects.get().run_id == run.pk


@pytest.mark.django_db(transaction=True)  # a real thread with its own connection
def test_claim__that_waited_for_a_release__records_its_start_after_that_release():
    """A claim whose slot INSERT waits for the holder's uncommitted release (PostgreSQL), or whose
    transaction waits for the writer (SQLite), starts its attempt after the release committed,
    so the ledger never shows the two attempts overlapping."""
    holder, waiting = run_create("t-limited"), run_create("t-limited")
    claim(holder)
    asked_at = timezone.now()  # the claimant's clock read before it waits
    got = {}

    def claim_in_thread():
        try:
            got["claim"] = claim(waiting, now=asked_at)
        finally:
            connection.close()

    with transaction.atomic():
        ConcurrencySlot.objects.filter(run=holder).delete()  # the finish's release, uncommitted
        thread = threading.Thread(target=claim_in_thread)
        thread.start()
        if connection.vendor == "postgresql":
            wait_until_another_backend_waits_for_us()  # the claim's slot INSERT
        else:  # SQLite: the claim waits for the writer's lock, which nothing here can observe
            time.sleep(0.5)
        released_at = timezone.now()
    thread.join(timeout=20)
    assert got["claim"].kind == ClaimKind.CLAIMED
    [attempt] = attempts(waiting)
    assert attempt.started_at >= released_at > asked_at
    assert fresh(waiting).started_at == attempt.started_at


def test_execute_run__function_raising_run_skipped__skipped_and_its_key_still_free(make_function):
    """A job that declines its work (its own lock held) ends skipped with the reason it gave,
    not succeeded, so a later run of the same window may still succeed."""
    from ledger.exceptions import RunSkipped
    from ledger.runner import execute_run

    calls = []

    def declines_once(payload):
        calls.append(payload)
        if len(calls) == 1:
            raise RunSkipped(RunReason.LOCKED, result={"why": "held"})
        return {"done": True}

    make_function("t-declines", declines_once, retries=0)
    first = execute_run(run_create("t-declines", {"dispatchKey": "k:declined"}).pk)
    assert (first.status, first.reason, first.result) == (
        RunStatus.SKIPPED, RunReason.LOCKED, {"why": "held"})
    assert attempts(first)[0].outcome == AttemptOutcome.SKIPPED
    second = execute_run(run_create("t-declines", {"dispatchKey": "k:declined"}).pk)
    assert second.status == RunStatus.SUCCEEDED
