"""Concurrency slots: the limit held in the database, taken over after a lapsed lease, and the
release that wakes the runs waiting for it."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from ledger import runner
from ledger.claims import ClaimKind, Outcome, function_run_claim, function_run_finish
from ledger.models import AttemptOutcome, ConcurrencySlot, FunctionRun, RunStatus
from ledger.registry import get_function
from ledger.slots import slot_acquire
from tests.ledger.helpers import fresh, run_create


def claim(target, now=None):
    return function_run_claim(run_id=target.pk, spec=get_function(target.function),
                              now=now or timezone.now())


@pytest.mark.django_db
def test_slot_acquire__first_attempt_inserts_only_and_a_later_one_drops_its_leftover():
    """A slot held under a live lease answers None; a lapsed lease's slot is taken over; a later
    attempt drops its own leftover."""
    spec = get_function("t-limited")
    first, second = run_create("t-limited"), run_create("t-limited")
    now = timezone.now()
    assert slot_acquire(run=first, limit=spec.concurrency_limit, now=now) == 0
    FunctionRun.objects.filter(pk=first.pk).update(
        status=RunStatus.RUNNING, lease_expires_at=now + timedelta(minutes=1))
    assert slot_acquire(run=second, limit=1, now=now) is None  # held under a live lease
    later = now + timedelta(minutes=2)
    assert slot_acquire(run=second, limit=1, now=later) == 0  # the lapsed lease: taken over
    assert ConcurrencySlot.objects.get().run_id == second.pk
    FunctionRun.objects.filter(pk=second.pk).update(attempt=1)
    assert slot_acquire(run=fresh(second), limit=1, now=later) == 0  # its own leftover dropped
    assert ConcurrencySlot.objects.get().run_id == second.pk


@pytest.mark.django_db
def test_hand_on__uncontended_release_looks_for_no_waiting_run(monkeypatch):
    """Nobody found the slot held: the finish says so and the hand-on reads nothing."""
    run = run_create("t-limited")
    got = claim(run)
    done = function_run_finish(run=got.run, claim=got, now=timezone.now(),
                               outcome=Outcome(AttemptOutcome.SUCCEEDED))
    assert done.slot_waiters is False
    with CaptureQueriesContext(connection) as queries:
        runner._hand_on(done)
    assert queries.captured_queries == []


@pytest.mark.django_db
def test_hand_on__a_busy_claim_marks_the_slot_and_its_release_wakes_the_waiting_runs(monkeypatch):
    """Two runs wait: the release sends both, so the one that finds the slot taken again marks
    the new holder's slot and is woken by its release in turn."""
    sent = []
    monkeypatch.setattr(runner, "function_run_send", lambda run, now: sent.append(run.pk))
    holder, first, second = (run_create("t-limited") for _ in range(3))
    got = claim(holder)
    assert claim(first).kind == ClaimKind.BUSY and claim(second).kind == ClaimKind.BUSY
    assert ConcurrencySlot.objects.get(run=holder).waiters is True
    done = function_run_finish(run=got.run, claim=got, now=timezone.now(),
                               outcome=Outcome(AttemptOutcome.SUCCEEDED))
    assert done.slot_waiters is True
    runner._hand_on(done)
    assert sent == [first.pk, second.pk]
    got_first = claim(first)
    assert got_first.kind == ClaimKind.CLAIMED and claim(second).kind == ClaimKind.BUSY
    done = function_run_finish(run=got_first.run, claim=got_first, now=timezone.now(),
                               outcome=Outcome(AttemptOutcome.SUCCEEDED))
    assert done.slot_waiters is True
