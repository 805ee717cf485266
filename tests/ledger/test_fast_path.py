"""The runner's fast path: a claim that carries the row it read, a finish without a read back,
slots without savepoints, and the lazy per-process heartbeat thread."""

import time
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from ledger import heartbeat as heartbeat_module
from ledger.claims import (
    ClaimKind,
    Outcome,
    function_run_claim,
    function_run_finish,
    function_run_take_back,
)
from ledger.models import AttemptOutcome, ConcurrencySlot, FunctionRun, RunReason, RunStatus
from ledger.registry import get_function
from ledger.slots import slot_acquire
from tests.ledger.helpers import attempts, fresh, run_create

RUN_FIELDS = ("status", "reason", "attempt", "claim_token", "started_at", "heartbeat_at",
              "lease_expires_at", "next_attempt_at", "finished_at", "duration_ms", "error",
              "result")


def claim(target, now=None, **kwargs):
    return function_run_claim(run_id=target.pk, spec=get_function(target.function),
                              now=now or timezone.now(), **kwargs)


def same_as_stored(run: FunctionRun) -> None:
    stored = fresh(run)
    assert {f: getattr(run, f) for f in RUN_FIELDS} == {f: getattr(stored, f) for f in RUN_FIELDS}


@pytest.mark.django_db
def test_claim__with_the_callers_read__claims_without_reading_and_carries_the_stored_values():
    """Given the row, the claim reads nothing; the claimed run it returns is the stored row."""
    run = run_create("t-ok")
    with CaptureQueriesContext(connection) as queries:
        got = claim(run, run=run)
    assert got.kind == ClaimKind.CLAIMED
    assert not [q for q in queries.captured_queries
                if q["sql"].startswith("SELECT") and "ledger_functionrun\".\"id\"" in q["sql"]]
    same_as_stored(got.run)


@pytest.mark.django_db
def test_claim__with_a_stale_read__reads_again_and_claims_the_next_attempt():
    """A run taken back and queued again after the caller's read is still claimed, as attempt 2."""
    run = run_create("t-hang-once")
    stale = fresh(run)
    claim(run)
    function_run_take_back(run=fresh(run), now=timezone.now() + timedelta(hours=1))
    later = timezone.now() + timedelta(hours=1, seconds=1)
    got = claim(run, now=later, run=stale)
    assert got.kind == ClaimKind.CLAIMED and got.run.attempt == 2
    same_as_stored(got.run)
    assert [a.number for a in attempts(run)] == [1, 2]
    assert ConcurrencySlot.objects.get().run_id == run.pk


@pytest.mark.django_db
def test_claim__with_a_read_of_a_run_claimed_since__finds_nothing():
    run = run_create("t-ok")
    stale = fresh(run)
    claim(run)
    assert claim(run, run=stale).kind == ClaimKind.NOTHING
    assert len(attempts(run)) == 1


@pytest.mark.django_db
def test_slot_acquire__first_attempt_inserts_only_and_a_later_one_drops_its_leftover():
    """Attempt 0 never held a slot: one INSERT, no savepoint; a held slot answers None."""
    spec = get_function("t-limited")
    first, second = run_create("t-limited"), run_create("t-limited")
    now = timezone.now()
    with CaptureQueriesContext(connection) as queries:
        assert slot_acquire(run=first, limit=spec.concurrency_limit, now=now) == 0
    assert [q["sql"].split()[0] for q in queries.captured_queries] == ["INSERT"]
    FunctionRun.objects.filter(pk=first.pk).update(
        status=RunStatus.RUNNING, lease_expires_at=now + timedelta(minutes=1))
    assert slot_acquire(run=second, limit=1, now=now) is None  # held under a live lease
    later = now + timedelta(minutes=2)
    assert slot_acquire(run=second, limit=1, now=later) == 0  # the lapsed lease: taken over
    assert ConcurrencySlot.objects.get().run_id == second.pk
    FunctionRun.objects.filter(pk=second.pk).update(attempt=1)
    assert slot_acquire(run=fresh(second), limit=1, now=later) == 0  # its own leftover dropped
    assert ConcurrencySlot.objects.get().run_id == second.pk


@pytest.mark.django_db(transaction=True)  # so the finish's own atomic() is a transaction
def test_finish__returns_the_stored_row_without_reading_it_back():
    run = run_create("t-ok", {"dispatchKey": "k:fast"})
    got = claim(run)
    with CaptureQueriesContext(connection) as queries:
        done = function_run_finish(run=got.run, claim=got, now=timezone.now(),
                                   outcome=Outcome(AttemptOutcome.SUCCEEDED, result={"a": 1}))
    sqls = [q["sql"] for q in queries.captured_queries]
    assert not [s for s in sqls if s.startswith(("SELECT", "SAVEPOINT"))]
    assert done.status == RunStatus.SUCCEEDED
    same_as_stored(done)


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
    same_as_stored(done)
    assert attempts(second)[0].outcome == AttemptOutcome.SUCCEEDED
    assert not ConcurrencySlot.objects.exists()


def test_heartbeat__one_thread_per_process_and_no_beat_for_a_short_run(monkeypatch, settings):
    settings.LEDGER_HEARTBEAT_SECONDS = 0.2
    beater = heartbeat_module._Beater()
    monkeypatch.setattr(heartbeat_module, "_beater", beater)
    monkeypatch.setattr(beater, "_beat", lambda spec, claim: True)
    for _ in range(20):
        with heartbeat_module.heartbeat(spec=None, claim=None):
            pass
    thread = beater._thread
    assert thread is not None and thread.daemon and beater.beats == 0
    assert [t for t in __import__("threading").enumerate() if t is thread] == [thread]
    with heartbeat_module.heartbeat(spec=None, claim=None):
        pass
    assert beater._thread is thread
    time.sleep(0.5)
    assert beater.beats == 0  # nothing registered: no beat, no polling work


@pytest.mark.django_db(transaction=True)
def test_heartbeat__renews_the_lease_of_a_long_run_from_its_own_connection(settings):
    settings.LEDGER_HEARTBEAT_SECONDS = 0.2
    run = run_create("t-ok")
    got = claim(run)
    first_lease = fresh(run).lease_expires_at
    with heartbeat_module.heartbeat(get_function("t-ok"), got):
        deadline = time.monotonic() + 10
        while fresh(run).lease_expires_at == first_lease and time.monotonic() < deadline:
            time.sleep(0.05)
    renewed = fresh(run)
    assert renewed.lease_expires_at > first_lease and renewed.heartbeat_at > got.run.heartbeat_at
    after = fresh(run).heartbeat_at
    time.sleep(0.6)
    assert fresh(run).heartbeat_at == after  # unregistered: no more beats


@pytest.mark.django_db(transaction=True)
def test_heartbeat__thread_closes_its_connection_once_no_run_needs_beats(settings):
    settings.LEDGER_HEARTBEAT_SECONDS = 0.2
    run = run_create("t-ok")
    got = claim(run)
    with heartbeat_module.heartbeat(get_function("t-ok"), got):
        deadline = time.monotonic() + 10
        while fresh(run).heartbeat_at == got.run.heartbeat_at and time.monotonic() < deadline:
            time.sleep(0.05)
    deadline = time.monotonic() + 5
    while heartbeat_module._beater._waiting_until is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert heartbeat_module._beater._waiting_until is None  # asleep with nothing due


@pytest.mark.django_db
def test_hand_on__uncontended_release_looks_for_no_waiting_run(monkeypatch):
    """Nobody found the slot held: the finish says so and the hand-on reads nothing."""
    from ledger import runner

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
    from ledger import runner

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


@pytest.mark.skipif(connection.vendor != "postgresql", reason="synchronous_commit is PostgreSQL's")
@pytest.mark.django_db(transaction=True)
def test_claim__commits_asynchronously_on_postgresql_and_the_finish_does_not():
    """Only the claim's transaction sets synchronous_commit off (SET LOCAL: it ends with it)."""
    run = run_create("t-ok")
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        default = cursor.fetchone()[0]
    with CaptureQueriesContext(connection) as queries:
        got = claim(run)
    assert got.kind == ClaimKind.CLAIMED
    assert [q["sql"] for q in queries.captured_queries].count(
        "SET LOCAL synchronous_commit = off") == 1
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone()[0] == default  # SET LOCAL ended with the claim's COMMIT
    with CaptureQueriesContext(connection) as queries:
        function_run_finish(run=got.run, claim=got, now=timezone.now(),
                            outcome=Outcome(AttemptOutcome.SUCCEEDED))
    assert not [q for q in queries.captured_queries if "synchronous_commit" in q["sql"]]
