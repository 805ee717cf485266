"""The uncontended claim in one statement (PostgreSQL), with no read before it when the task
names the run's function, and its hand-over to the transaction path: slot 0 only, what it must
not claim, a run changed between the slot's INSERT and the claim, and the rows read by
``ledger.db.select_row`` and returned by the claim as the ORM reads them."""

import threading
import uuid
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from ledger.claims import (
    ClaimKind,
    Outcome,
    function_run_claim,
    function_run_claim_delivered,
    function_run_finish,
)
from ledger.db import select_row
from ledger.models import (
    AttemptOutcome,
    ConcurrencySlot,
    FunctionAttempt,
    FunctionRun,
    RunReason,
    RunStatus,
)
from ledger.registry import get_function
from ledger.services import function_runs_cancel
from tests.ledger.helpers import (
    attempts,
    fresh,
    run_create,
    wait_until_another_backend_waits_for_us,
)

on_postgres = pytest.mark.skipif(connection.vendor != "postgresql",
                                 reason="the one-statement claim is PostgreSQL's")


def claim(target, **kwargs):
    return function_run_claim(run_id=target.pk, spec=get_function(target.function),
                              now=timezone.now(), run=fresh(target), **kwargs)


def slots() -> dict[int, int]:
    return dict(ConcurrencySlot.objects.values_list("slot", "run_id"))


@on_postgres
@pytest.mark.django_db(transaction=True)  # the worker's case: no caller's transaction around it
def test_claim__uncontended__one_statement_that_commits_by_itself():
    run = run_create("t-ok", {"dispatchKey": "k:one"})
    read = fresh(run)
    with CaptureQueriesContext(connection) as queries:
        got = function_run_claim(run_id=run.pk, spec=get_function("t-ok"), now=timezone.now(),
                                 run=read)
    assert got.kind == ClaimKind.CLAIMED
    [sql] = [q["sql"] for q in queries.captured_queries]
    assert sql.startswith("WITH slot AS (INSERT INTO")
    stored = fresh(run)
    [attempt] = attempts(run)
    assert (stored.status, stored.attempt, stored.claim_token) == (RunStatus.RUNNING, 1, got.token)
    # The start is the database's reading after the slot was taken, the same in every place.
    assert stored.started_at == stored.heartbeat_at == attempt.started_at == got.run.started_at
    assert got.attempt.pk == attempt.pk and got.attempt.started_at == attempt.started_at
    assert slots() == {0: run.pk}


@on_postgres
@pytest.mark.django_db(transaction=True)
def test_claim_delivered__by_task_id__one_statement_returning_the_run_as_stored():
    run = run_create("t-ok", {"dispatchKey": "k:at-once"}, task_id="t-ok:at-once")
    with CaptureQueriesContext(connection) as queries:
        got = function_run_claim_delivered(run_ref=run.task_id, function="t-ok",
                                           now=timezone.now())
    assert len(queries.captured_queries) == 1 and got.kind == ClaimKind.CLAIMED
    fields = [field.attname for field in FunctionRun._meta.concrete_fields]
    stored = fresh(run)
    assert {f: getattr(got.run, f) for f in fields} == {f: getattr(stored, f) for f in fields}
    assert (stored.status, stored.attempt, stored.claim_token) == (RunStatus.RUNNING, 1, got.token)
    [attempt] = attempts(run)
    assert (got.attempt.pk, got.attempt.run_id, got.attempt.number, got.attempt.claim_token,
            got.attempt.started_at) == (attempt.pk, run.pk, 1, got.token, stored.started_at)
    assert slots() == {0: run.pk}


@on_postgres
@pytest.mark.django_db(transaction=True)
def test_claim_delivered__whatever_it_must_not_claim__none_and_nothing_written():
    """Not queued, not due, another function named, an unknown function, a duplicate of a
    success, slot 0 held: None, for the read and the transaction path to decide."""
    now = timezone.now()
    done = run_create("t-ok", {"dispatchKey": "k:done"}, task_id="t-ok:done")
    finished = function_run_claim_delivered(run_ref=done.task_id, function="t-ok", now=now)
    function_run_finish(run=finished.run, claim=finished, now=timezone.now(),
                        outcome=Outcome(AttemptOutcome.SUCCEEDED))
    later = run_create("t-ok", {"dispatchKey": "k:later"}, task_id="t-ok:later")
    FunctionRun.objects.filter(pk=later.pk).update(next_attempt_at=now + timedelta(minutes=5))
    duplicate = run_create("t-ok", {"dispatchKey": "k:done"}, task_id="t-ok:duplicate")
    holder = run_create("t-limited", task_id="t-limited:holder")
    assert function_run_claim_delivered(run_ref=holder.task_id, function="t-limited", now=now)
    waiting = run_create("t-limited", task_id="t-limited:waiting")
    before = {r.pk: (fresh(r).status, fresh(r).attempt) for r in (done, later, duplicate, waiting)}
    for task_id, function in [(done.task_id, "t-ok"), (later.task_id, "t-ok"),
                              (later.task_id, "t-limited"), (later.task_id, "no-such-function"),
                              (duplicate.task_id, "t-ok"), (waiting.task_id, "t-limited"),
                              ("no-such-task", "t-ok")]:
        assert function_run_claim_delivered(run_ref=task_id, function=function, now=now) is None
    assert {r.pk: (fresh(r).status, fresh(r).attempt) for r in (done, later, duplicate, waiting)
            } == before
    assert slots() == {0: holder.pk}
    assert FunctionAttempt.objects.count() == 2  # done's and holder's


@pytest.mark.django_db(transaction=True)
def test_claim__slot_0_held__the_transaction_path_takes_slot_1_and_then_all_are_busy():
    """The one statement tries slot 0 only; a limit of 2 is still two runs at once, a third
    waits, on either backend."""
    first, second, third = (run_create("t-pair") for _ in range(3))
    assert claim(first).kind == ClaimKind.CLAIMED
    assert claim(second).kind == ClaimKind.CLAIMED
    assert slots() == {0: first.pk, 1: second.pk}
    assert claim(third).kind == ClaimKind.BUSY
    assert fresh(third).status == RunStatus.QUEUED and attempts(third) == []
    assert set(ConcurrencySlot.objects.values_list("waiters", flat=True)) == {True}


@pytest.mark.django_db(transaction=True)
def test_claim__second_delivery_of_a_claimed_run__finds_nothing_and_writes_nothing():
    run = run_create("t-ok", {"dispatchKey": "k:twice"})
    read_before_the_first_claim = fresh(run)
    assert claim(run).kind == ClaimKind.CLAIMED
    again = function_run_claim(run_id=run.pk, spec=get_function("t-ok"), now=timezone.now(),
                               run=read_before_the_first_claim)
    assert again.kind == ClaimKind.NOTHING
    assert len(attempts(run)) == 1 and slots() == {0: run.pk}


@on_postgres
@pytest.mark.django_db(transaction=True)  # a real thread with its own connection
def test_claim__run_cancelled_between_its_slot_and_its_claim__nothing_claimed_and_slot_reused():
    """The statement's slot INSERT sees the run queued; its UPDATE waits for an operator's cancel
    and then sees it cancelled. Nothing is claimed, no attempt is written, and the slot left
    behind is stale: the next run of the function takes it over."""
    run = run_create("t-limited")
    got = {}

    def claim_in_thread():
        try:
            got["claim"] = claim(run)
        finally:
            connection.close()

    with transaction.atomic():
        assert function_runs_cancel(run_ids=[run.pk], reason=RunReason.CANCELLED_BY_OPERATOR,
                                    now=timezone.now()) == 1  # holds the run's row lock
        thread = threading.Thread(target=claim_in_thread)
        thread.start()
        wait_until_another_backend_waits_for_us()
    thread.join(timeout=20)
    assert got["claim"].kind == ClaimKind.NOTHING
    assert fresh(run).status == RunStatus.CANCELLED and attempts(run) == []
    assert slots() == {0: run.pk}  # stale: its run is not running
    following = run_create("t-limited")
    later = claim(following)
    assert later.kind == ClaimKind.CLAIMED
    assert slots() == {0: following.pk}
    function_run_finish(run=later.run, claim=later, now=timezone.now(),
                        outcome=Outcome(AttemptOutcome.SUCCEEDED))
    assert fresh(following).status == RunStatus.SUCCEEDED and not ConcurrencySlot.objects.exists()


@pytest.mark.django_db
def test_select_row__reads_the_row_as_the_orm_does():
    """Every field, converted as Django converts it (JSON, UUID, datetimes, booleans), by a
    unique field; None when no row has the value."""
    run = run_create("t-ok", {"dispatchKey": "k:read", "nested": {"n": [1, 2.5, None]}},
                     task_id=f"t:{uuid.uuid4().hex}")
    FunctionRun.objects.filter(pk=run.pk).update(
        claim_token=uuid.uuid4(), result={"ok": True, "items": ["a"]}, heartbeat_at=timezone.now())
    orm = FunctionRun.objects.get(pk=run.pk)
    fields = [field.attname for field in FunctionRun._meta.concrete_fields]
    for field_name, value in (("id", run.pk), ("task_id", run.task_id)):
        read = select_row(FunctionRun, field_name, value)
        assert {f: getattr(read, f) for f in fields} == {f: getattr(orm, f) for f in fields}
        assert read._state.adding is False and read._state.db == "default"
    assert select_row(FunctionRun, "task_id", "no-such-task") is None
    attempt = FunctionAttempt.objects.create(run=orm, number=1, claim_token=orm.claim_token,
                                             started_at=timezone.now())
    read = select_row(FunctionAttempt, "id", attempt.pk)
    assert (read.run_id, read.claim_token, read.started_at, read.outcome) == (
        orm.pk, attempt.claim_token, attempt.started_at, attempt.outcome)


@on_postgres
@pytest.mark.django_db(transaction=True)
def test_claim_delivered__finds_its_rows_through_indexes_not_by_reading_the_table():
    """The statement's lookups (the run by task id, a success of its idempotency key) use
    indexes, with a backlog of 2,000 queued runs and hundreds succeeded, before any ANALYZE: a first version compared keys in a way
    the partial unique index of successes could not serve (every claim read the whole table),
    and a later one let the claim's UPDATE find its row among all queued runs."""
    for number in range(300):
        run_create("t-ok", {"dispatchKey": f"k:done:{number}"}, task_id=f"t-ok:done:{number}")
    FunctionRun.objects.update(status=RunStatus.SUCCEEDED, finished_at=timezone.now())
    queued = [run_create("t-ok", {"dispatchKey": f"k:q:{n}"}, task_id=f"t-ok:q:{n}")
              for n in range(2000)]  # a drain's backlog
    with CaptureQueriesContext(connection) as queries:  # not analyzed: a new table's case
        assert function_run_claim_delivered(run_ref=queued[0].task_id, function="t-ok",
                                            now=timezone.now())
    [sql] = [q["sql"] for q in queries.captured_queries]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + sql.replace(queued[0].task_id, queued[1].task_id))
        plan = "\n".join(line for (line,) in cursor.fetchall())
        transaction.set_rollback(True)
    assert "Seq Scan" not in plan, plan
    assert "ledger_run_active" not in plan, plan  # the index of every queued and running run
    assert "ledger_one_success_per_idempotency_key" in plan, plan


@on_postgres
@pytest.mark.django_db(transaction=True)
def test_claim_and_finish__find_their_run_by_key_when_statistics_say_nothing_is_queued():
    """A quiet ledger analyzed (autovacuum) while nothing was queued, then a backlog (after an
    outage: when the workers must drain fastest). The statistics say ``queued`` and ``running``
    are rare, so PostgreSQL answered the claim from the partial index of active runs (every
    queued run, then a filter on the task id): 2.5 ms a delivery became 25 ms with 20,000
    queued, and grows with the backlog. The claim and the finish must reach the run by its
    unique key whatever the statistics say."""
    for number in range(300):
        run_create("t-ok", {"dispatchKey": f"k:done:{number}"}, task_id=f"t-ok:done:{number}")
    FunctionRun.objects.update(status=RunStatus.SUCCEEDED, finished_at=timezone.now())
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {FunctionRun._meta.db_table}")
    queued = [run_create("t-ok", {"dispatchKey": f"k:q:{n}"}, task_id=f"t-ok:q:{n}")
              for n in range(2000)]
    with CaptureQueriesContext(connection) as queries:
        claim = function_run_claim_delivered(run_ref=queued[0].task_id, function="t-ok",
                                             now=timezone.now())
        assert claim is not None
        function_run_finish(run=claim.run, claim=claim, outcome=Outcome(AttemptOutcome.SUCCEEDED),
                            now=timezone.now())
    claim_sql, finish_sql = [q["sql"] for q in queries.captured_queries]
    plans = {}
    with transaction.atomic(), connection.cursor() as cursor:
        for name, sql in (("claim", claim_sql.replace(queued[0].task_id, queued[1].task_id)),
                          ("finish", finish_sql)):
            cursor.execute("EXPLAIN " + sql)
            plans[name] = "\n".join(line for (line,) in cursor.fetchall())
        transaction.set_rollback(True)
    for name, plan in plans.items():
        assert "ledger_run_active" not in plan, (name, plan)
        assert "Seq Scan on ledger_functionrun" not in plan, (name, plan)
    assert "ledger_run_task_id" in plans["claim"], plans["claim"]


def prepared_generic_plans() -> dict[str, str]:
    """The generic plan of each prepared claim and finish in this connection (EXPLAIN EXECUTE
    with every parameter NULL: under ``force_generic_plan`` the values do not shape the plan)."""
    plans = {}
    with connection.cursor() as cursor:
        cursor.execute("SELECT name, statement, cardinality(parameter_types) "
                       "FROM pg_prepared_statements")
        statements = cursor.fetchall()
        for name, statement, parameters in statements:
            kind = ("claim" if statement.startswith("WITH slot AS") else
                    "finish" if statement.startswith("WITH finished AS") else None)
            if kind:
                cursor.execute(f"EXPLAIN EXECUTE {name}({', '.join(['NULL'] * parameters)})")
                plans[kind] = "\n".join(line for (line,) in cursor.fetchall())
    return plans


def claim_and_finish(task_id: str) -> None:
    claim = function_run_claim_delivered(run_ref=task_id, function="t-ok", now=timezone.now())
    assert claim is not None
    assert function_run_finish(run=claim.run, claim=claim,
                               outcome=Outcome(AttemptOutcome.SUCCEEDED), now=timezone.now())


@on_postgres
@pytest.mark.django_db(transaction=True)
def test_prepared_claim_and_finish__plans_chosen_on_a_tiny_ledger_do_not_outlive_it(monkeypatch):
    """The claim and the finish are prepared (``ledger.db.hot_cursor``). On a new install the
    ledger is tiny, and a generic plan chosen then reads the run table whole (cheaper for one
    page); kept while a backlog builds, every delivery would read every run. After
    PLAN_LIFETIME_SECONDS they are prepared again and reach the run by its unique key."""
    tiny = [run_create("t-ok", {"dispatchKey": f"k:t:{n}"}, task_id=f"t-ok:t:{n}")
            for n in range(3)]
    with connection.cursor() as cursor:
        for model in (FunctionRun, FunctionAttempt, ConcurrencySlot):
            cursor.execute(f"ANALYZE {model._meta.db_table}")  # autovacuum on a new install
        cursor.execute("SET plan_cache_mode = force_generic_plan")  # the plan kept from run 6
    try:
        claim_and_finish(tiny[0].task_id)
        stale = prepared_generic_plans()
        assert "Seq Scan on ledger_functionrun" in stale["claim"], stale  # the trap is real
        backlog = [run_create("t-ok", {"dispatchKey": f"k:q:{n}"}, task_id=f"t-ok:q:{n}")
                   for n in range(2000)]
        claim_and_finish(backlog[0].task_id)
        assert prepared_generic_plans() == stale  # within the lifetime: the same plans
        monkeypatch.setattr("ledger.db.PLAN_LIFETIME_SECONDS", 0.0)  # a minute later
        claim_and_finish(backlog[1].task_id)
        monkeypatch.undo()
        claim_and_finish(backlog[2].task_id)
        fresh_plans = prepared_generic_plans()
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET plan_cache_mode")
    assert set(fresh_plans) == {"claim", "finish"}
    for name, plan in fresh_plans.items():
        assert "Seq Scan on ledger_functionrun" not in plan, (name, plan)
        assert "ledger_run_active" not in plan, (name, plan)
    assert "ledger_run_task_id" in fresh_plans["claim"], fresh_plans["claim"]
