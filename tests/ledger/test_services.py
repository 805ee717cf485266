"""Creating runs (overlap policies), inline runs, bounded errors, terminal semantics."""

from datetime import timedelta

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from ledger import conf
from ledger.claims import Outcome, function_run_claim, function_run_finish
from ledger.models import AttemptOutcome, FunctionRun, RunReason, RunStatus
from ledger.registry import get_function
from ledger.runner import execute_run, run_inline
from ledger.registry import Overlap
from ledger.services import RunRequest, bounded, function_runs_cancel, function_runs_create
from tests.ledger.helpers import attempts, fresh, run_create

pytestmark = pytest.mark.django_db


def cron_run(overlap: Overlap, **extra):
    """A dispatched run of cron t-cron whose function has the ``overlap`` policy."""
    function = "t-slow" if overlap == Overlap.ALLOW_ALL else f"t-slow-{overlap.value}"
    return run_create(function, cron="t-cron", **extra)


@pytest.mark.parametrize("active", [RunStatus.QUEUED, RunStatus.RUNNING])
def test_overlap_skip__refused_while_one_is_queued_or_running(active):
    """skip: a new run while another of the cron is active is skipped with reason overlap."""
    first = cron_run(Overlap.SKIP)
    if active == RunStatus.RUNNING:
        function_run_claim(run_id=first.pk, spec=get_function("t-slow-skip"), now=timezone.now())
    second = cron_run(Overlap.SKIP)
    assert (second.status, second.reason) == (RunStatus.SKIPPED, RunReason.OVERLAP)
    assert second.finished_at is not None


def test_overlap_buffer_one__one_waits_and_the_next_is_skipped():
    """buffer-one: one queued behind the running one; another is skipped."""
    running = cron_run(Overlap.BUFFER_ONE)
    function_run_claim(run_id=running.pk, spec=get_function("t-slow-buffer-one"),
                       now=timezone.now())
    waiting = cron_run(Overlap.BUFFER_ONE)
    refused = cron_run(Overlap.BUFFER_ONE)
    assert waiting.status == RunStatus.QUEUED
    assert (refused.status, refused.reason) == (RunStatus.SKIPPED, RunReason.OVERLAP)


def test_overlap_buffer_one__a_run_between_attempts_is_in_progress_not_waiting():
    """A run queued for its next attempt does not use up the one waiting place."""
    first = run_create("t-flaky-buffer-one", cron="t-cron")
    got = function_run_claim(run_id=first.pk, spec=get_function("t-flaky-buffer-one"),
                             now=timezone.now())
    function_run_finish(run=got.run, claim=got, now=timezone.now(),
                        outcome=Outcome(AttemptOutcome.FAILED, error="x"))
    assert fresh(first).status == RunStatus.QUEUED and fresh(first).attempt == 1
    second = run_create("t-flaky-buffer-one", cron="t-cron")
    third = run_create("t-flaky-buffer-one", cron="t-cron")
    assert (second.status, third.status) == (RunStatus.QUEUED, RunStatus.SKIPPED)


def test_overlap_allow_all_and_other_crons__never_refused():
    """allow-all never refuses; the policy only looks at the same function and cron."""
    cron_run(Overlap.ALLOW_ALL)
    assert cron_run(Overlap.ALLOW_ALL).status == RunStatus.QUEUED
    cron_run(Overlap.SKIP)
    assert run_create("t-slow-skip", cron="other").status == RunStatus.QUEUED


def test_inline_run__not_refused_by_overlap_and_recorded_like_a_queued_one():
    """An inline run (the rollback path) runs even while a dispatched run is queued."""
    cron_run(Overlap.SKIP)
    run = run_inline(request=RunRequest(function="t-slow-skip", payload={"sleep": 0},
                                        source="command", cron="t-cron"))
    assert run.status == RunStatus.SUCCEEDED and run.inline and run.attempt == 1
    assert run.duration_ms is not None


def test_inline_run__error_stored_bounded():
    """A huge error message is stored bounded on the run and its attempt."""
    run = run_inline(request=RunRequest(function="t-huge-error", payload={}, source="command"))
    assert (run.status, run.reason) == (RunStatus.FAILED, RunReason.ERROR)
    assert len(run.error) <= conf.ERROR_MAX_CHARS and run.error.endswith("[truncated]")
    assert len(attempts(run)[0].error) <= conf.ERROR_MAX_CHARS
    assert len(bounded("y" * 10)) == 10


def test_next_attempt_far_off__left_to_the_sweeper_not_parked_in_a_delivery():
    """A delivery that arrives long before the next attempt is due clears enqueued_at so the
    sweeper sends it when due (a run is never stranded queued with a stale delivery mark)."""
    run = run_create("t-flaky", {"counter": "/dev/null"})
    due = timezone.now() + timedelta(seconds=conf.INLINE_RETRY_WAIT_MAX_SECONDS + 60)
    FunctionRun.objects.filter(pk=run.pk).update(next_attempt_at=due, enqueued_at=timezone.now())
    assert execute_run(run.pk).status == RunStatus.QUEUED
    assert fresh(run).enqueued_at is None and fresh(run).attempt == 0


def test_cancel__only_queued_runs_with_the_reason():
    """Cancelling touches queued runs only and records the reason."""
    queued, running = run_create("t-ok"), run_create("t-slow")
    function_run_claim(run_id=running.pk, spec=get_function("t-slow"), now=timezone.now())
    count = function_runs_cancel(run_ids=[queued.pk, running.pk],
                                 reason=RunReason.CANCELLED_BY_OPERATOR, now=timezone.now())
    assert count == 1
    assert (fresh(queued).status, fresh(queued).reason) == (RunStatus.CANCELLED,
                                                            RunReason.CANCELLED_BY_OPERATOR)
    assert fresh(running).status == RunStatus.RUNNING


@pytest.mark.parametrize("values", [
    {"status": RunStatus.FAILED, "reason": ""},
    {"status": RunStatus.SUCCEEDED, "reason": RunReason.ERROR},
    {"status": RunStatus.SKIPPED, "reason": RunReason.OVERLAP, "finished_at": None},
    {"status": RunStatus.QUEUED, "reason": RunReason.TIMEOUT},
])
def test_terminal_semantics__database_refuses_a_run_without_exactly_one_terminal_reason(values):
    """A terminal run without a reason (or an active one with one) cannot be stored."""
    run = run_create("t-ok")
    values.setdefault("finished_at", timezone.now())
    if values["status"] == RunStatus.QUEUED:
        values["finished_at"] = None
    with pytest.raises(IntegrityError), transaction.atomic():
        FunctionRun.objects.filter(pk=run.pk).update(**values)


def test_runs_create__one_insert_and_each_object_gets_its_own_row():
    """A dispatch's runs are one INSERT; each returned object carries the primary key of the
    row holding its own function, task id and payload, and is saved like any loaded run."""
    requests = [RunRequest(function=name, payload={"n": i}, source="command", task_id=f"t:{i}",
                           cron="t-cron", dispatch_key="t-cron:k")
                for i, name in enumerate(["t-ok", "t-slow", "t-ok"])]
    with CaptureQueriesContext(connection) as queries:
        runs = function_runs_create(requests=requests, now=timezone.now())
    inserts = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("INSERT")]
    assert len(inserts) == 1
    assert len({run.pk for run in runs}) == 3
    for i, run in enumerate(runs):
        stored = fresh(run)
        assert (stored.function, stored.task_id, stored.payload) == (
            requests[i].function, f"t:{i}", {"n": i})
        assert stored.status == RunStatus.QUEUED
    runs[1].error = "saved after insert"
    runs[1].save(update_fields=["error"])
    assert fresh(runs[1]).error == "saved after insert"
