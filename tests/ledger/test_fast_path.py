"""The runner's fast path: a claim that carries the row it read, a finish without a read back,
slots without savepoints, and the lazy per-process heartbeat thread."""

import threading
import time
import uuid
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from ledger import heartbeat as heartbeat_module
from ledger import run_sql
from ledger.claims import (
    ClaimKind,
    Outcome,
    function_run_claim,
    function_run_finish,
    function_run_take_back,
)
from ledger.models import (
    AttemptOutcome,
    ConcurrencySlot,
    FunctionAttempt,
    FunctionRun,
    RunReason,
    RunStatus,
)
from ledger.registry import get_function
from ledger.slots import slot_acquire
from tests.ledger.helpers import (
    attempts,
    fresh,
    run_create,
    wait_until_another_backend_waits_for_us,
)

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


def synchronous_commit() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        return cursor.fetchone()[0]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="synchronous_commit is PostgreSQL's")
@pytest.mark.django_db(transaction=True)
def test_claim__commits_asynchronously_on_postgresql_only_when_it_matched():
    """The claim's UPDATE turns synchronous_commit off for its own transaction only when it
    matched (a claim that did not match keeps a durable commit); the finish never does."""
    run = run_create("t-ok")
    default = synchronous_commit()
    assert default != "off"
    values = dict(status=RunStatus.RUNNING, claim_token=uuid.uuid4(), heartbeat_at=timezone.now(),
                  lease_expires_at=timezone.now() + timedelta(minutes=1), next_attempt_at=None)
    def attempt(number):
        return FunctionAttempt(run=run, number=number, claim_token=values["claim_token"],
                               started_at=timezone.now())

    with transaction.atomic():
        stale = fresh(run)
        stale.attempt = 5  # not the stored attempt: matches nothing, writes nothing
        assert run_sql.claim_update(run=stale, values=values, now=timezone.now(),
                                    attempt=attempt(6)) is False
        assert synchronous_commit() == default
    assert not FunctionAttempt.objects.filter(run=run).exists()
    with transaction.atomic():
        first = attempt(1)
        assert run_sql.claim_update(run=fresh(run), values=values, now=timezone.now(),
                                    attempt=first) is True
        assert synchronous_commit() == "off"
    assert FunctionAttempt.objects.get(run=run).pk == first.pk
    assert synchronous_commit() == default  # local to the claim's transaction
    FunctionAttempt.objects.filter(run=run).delete()
    FunctionRun.objects.filter(pk=run.pk).update(status=RunStatus.QUEUED, claim_token=None,
                                                  attempt=0)
    got = claim(run)
    assert got.kind == ClaimKind.CLAIMED and synchronous_commit() == default
    with CaptureQueriesContext(connection) as queries:
        function_run_finish(run=got.run, claim=got, now=timezone.now(),
                            outcome=Outcome(AttemptOutcome.SUCCEEDED))
    assert not [q for q in queries.captured_queries if "synchronous_commit" in q["sql"]]


# The statements of one successful delivery on the worker. On PostgreSQL: the claim and the
# finish, one statement each, when the task names the run's function (as every task sent now
# does); a task without it (queued before) first reads the run. On SQLite: the read, the claim's
# transaction (BEGIN, slot INSERT, the claim's UPDATE, attempt INSERT, COMMIT) and the finish's
# (BEGIN, run UPDATE, attempt UPDATE, slot DELETE, COMMIT).
MAX_STATEMENTS_OF_ONE_SUCCESS = {("postgresql", True): 2, ("postgresql", False): 3,
                                 ("sqlite", True): 11, ("sqlite", False): 11}


@pytest.mark.parametrize("named", [True, False], ids=["task names the function", "it does not"])
@pytest.mark.django_db(transaction=True)  # the worker's case: no caller's transaction around it
def test_execute_run__one_success_stays_within_its_statement_budget(named):
    """A regression guard on the worker's cost: one successful run, every guarantee recorded."""
    from ledger.tasks import execute_run

    run = run_create("t-ok", {"dispatchKey": "k:budget"})
    with CaptureQueriesContext(connection) as queries:
        assert execute_run(run.pk, "t-ok" if named else None) == {
            "run": run.pk, "status": RunStatus.SUCCEEDED}
    sqls = [q["sql"] for q in queries.captured_queries]
    assert len(sqls) <= MAX_STATEMENTS_OF_ONE_SUCCESS[connection.vendor, named], sqls
    assert not [s for s in sqls if s.startswith("SAVEPOINT")]
    done = fresh(run)
    assert done.status == RunStatus.SUCCEEDED and done.duration_ms is not None
    [attempt] = attempts(run)
    assert attempt.outcome == AttemptOutcome.SUCCEEDED and attempt.finished_at is not None
    assert attempt.worker_pid and attempt.worker_host
    assert attempt.started_at == done.started_at <= attempt.finished_at == done.finished_at
    assert not ConcurrencySlot.objects.exists()


@pytest.mark.django_db
def test_claim__duplicate_of_a_success__skipped_with_no_attempt_and_no_slot_left():
    """The claim's UPDATE refuses a duplicate; the careful try records it skipped, and the slot
    the fast try took is rolled back with it."""
    first = run_create("t-ok", {"dispatchKey": "k:dup"})
    got = claim(first)
    function_run_finish(run=got.run, claim=got, now=timezone.now(),
                        outcome=Outcome(AttemptOutcome.SUCCEEDED))
    second = run_create("t-ok", {"dispatchKey": "k:dup"})
    assert claim(second, run=second).kind == ClaimKind.SKIPPED
    stored = fresh(second)
    assert (stored.status, stored.reason, stored.attempt) == (
        RunStatus.SKIPPED, RunReason.IDEMPOTENT_DUPLICATE, 0)
    assert attempts(second) == [] and not ConcurrencySlot.objects.exists()


@pytest.mark.django_db
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
