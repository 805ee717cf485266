"""Run controls on real clusters: concurrency limits across clusters, retries with backoff,
timeouts, non-retryable errors."""

from datetime import timedelta

import pytest

from ledger.models import AttemptOutcome, FunctionAttempt, FunctionRun, RunReason, RunStatus
from ledger.registry import get_function
from tests.cluster import qcluster
from tests.ledger.conftest import sweeping_poll
from tests.ledger.helpers import attempts, fresh, run_send

pytestmark = [pytest.mark.cluster, pytest.mark.django_db(transaction=True)]
CLUSTER_ENV = {"LEDGER_HEARTBEAT_SECONDS": "1"}


def all_ended(runs):
    return lambda: all(fresh(run).is_terminal for run in runs)


def intervals(runs):
    rows = FunctionAttempt.objects.filter(run__in=runs).order_by("started_at")
    return [(a.started_at, a.finished_at, a.run.concurrency_key) for a in rows]


def overlapping_pairs(spans):
    return [
        (a, b) for i, a in enumerate(spans) for b in spans[i + 1:]
        if a[0] < b[1] and b[0] < a[1]
    ]


def test_concurrency_limit_1_across_two_clusters__running_intervals_never_overlap():
    """Six runs of a limit-1 function on two clusters at once: one at a time, all succeed."""
    with qcluster(workers=2, env=CLUSTER_ENV, label="cluster-a") as a, \
            qcluster(workers=2, env=CLUSTER_ENV, label="cluster-b") as b:
        runs = [run_send("t-limited", {"sleep": 0.4}) for _ in range(6)]
        sweeping_poll(all_ended(runs), timeout=60, what="every run ended", clusters=[a, b])
        spans = intervals(runs)
    assert [fresh(run).status for run in runs] == [RunStatus.SUCCEEDED] * 6
    assert len(spans) == 6  # one attempt each: a busy slot is waited for, never an attempt
    assert overlapping_pairs(spans) == []
    hosts = {(attempt.worker_pid) for attempt in FunctionAttempt.objects.filter(run__in=runs)}
    assert len(hosts) > 1  # the work really was spread over several workers


def test_concurrency_key__different_keys_run_in_parallel_same_key_never_does():
    """Limit 1 per key: runs of one key never overlap, runs of two keys do."""
    with qcluster(workers=2, env=CLUSTER_ENV, label="cluster-a") as a, \
            qcluster(workers=2, env=CLUSTER_ENV, label="cluster-b") as b:
        runs = [run_send("t-keyed", {"sleep": 1.5, "key": key}) for key in ("x", "y", "x", "y")]
        sweeping_poll(all_ended(runs), timeout=60, what="every run ended", clusters=[a, b])
        spans = intervals(runs)
    assert [fresh(run).status for run in runs] == [RunStatus.SUCCEEDED] * 4
    pairs = overlapping_pairs(spans)
    assert pairs, "runs with different keys never ran at the same time"
    assert all(left[2] != right[2] for left, right in pairs), "two runs of one key overlapped"


def test_failing_twice_then_succeeding__three_attempts_spaced_by_the_backoff(counter):
    """retries=2, backoff 1 s then 2 s: succeeded on attempt 3, starts respect the backoff."""
    spec = get_function("t-flaky")
    with qcluster(workers=2, env=CLUSTER_ENV) as cluster:
        run = run_send("t-flaky", {"counter": counter(), "fail_times": 2})
        sweeping_poll(lambda: fresh(run).is_terminal, timeout=40, what="the run ended",
                      clusters=[cluster])
    run = fresh(run)
    tries = attempts(run)
    assert run.status == RunStatus.SUCCEEDED and run.attempt == 3
    assert [a.outcome for a in tries] == [AttemptOutcome.FAILED, AttemptOutcome.FAILED,
                                          AttemptOutcome.SUCCEEDED]
    assert "planned failure 1" in tries[0].error and "planned failure 2" in tries[1].error
    for number, (before, after) in enumerate(zip(tries, tries[1:]), start=1):
        waited = after.started_at - before.finished_at
        base = spec.backoff_base_seconds * 2 ** (number - 1)
        assert timedelta(seconds=base) <= waited <= timedelta(seconds=base * 1.25 + 3)
    assert run.result == {"succeededOnCall": 3}


def test_timeout__attempt_and_run_recorded_as_timeout():
    """A function past its timeout: attempt outcome timeout, run failed with reason timeout."""
    spec = get_function("t-timeout")
    with qcluster(workers=1, env=CLUSTER_ENV) as cluster:
        run = run_send("t-timeout", {"sleep": 30})
        sweeping_poll(lambda: fresh(run).is_terminal, timeout=20, what="the run ended",
                      clusters=[cluster])
        worker_survived = attempts(run)[0].worker_pid in cluster.worker_pids()
    run = fresh(run)
    (attempt,) = attempts(run)
    assert run.status == RunStatus.FAILED and run.reason == RunReason.TIMEOUT
    assert attempt.outcome == AttemptOutcome.TIMEOUT
    assert f"timed out after {spec.timeout_seconds} s" in run.error
    assert timedelta(seconds=spec.timeout_seconds) <= attempt.finished_at - attempt.started_at
    assert attempt.finished_at - attempt.started_at < timedelta(seconds=spec.timeout_seconds + 3)
    assert worker_survived  # the runner's alarm, not Django-Q's guard killing the worker


def test_non_retryable_error__fails_at_once_without_more_attempts(counter):
    """NonRetryableError: one attempt although three retries were allowed."""
    calls = counter()
    with qcluster(workers=1, env=CLUSTER_ENV) as cluster:
        run = run_send("t-non-retryable", {"counter": calls})
        sweeping_poll(lambda: fresh(run).is_terminal, timeout=20, what="the run ended",
                      clusters=[cluster])
    run = fresh(run)
    assert get_function("t-non-retryable").max_attempts == 4
    assert run.status == RunStatus.FAILED and run.reason == RunReason.ERROR
    assert [a.outcome for a in attempts(run)] == [AttemptOutcome.FAILED]
    assert "NonRetryableError: this input can never succeed" in run.error
    assert len(open(calls).read().splitlines()) == 1
    assert FunctionRun.objects.filter(status=RunStatus.RUNNING).count() == 0
