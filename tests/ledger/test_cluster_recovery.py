"""Dead workers and duplicate deliveries on a real cluster (either broker).

The sweeper runs in the poll loop, as background-maintenance and the ledger:sweep schedule
would; outcomes are only ever written by the cluster's workers and the sweeper.
"""

from datetime import timedelta

import pytest
from django.utils import timezone
from django_q.models import OrmQ

from ledger.models import AttemptOutcome, FunctionRun, RunReason, RunStatus
from ledger.registry import get_function
from ledger.services import function_run_send
from tests.cluster import qcluster
from tests.conftest import on_redis
from tests.ledger.conftest import sweeping_poll
from tests.ledger.helpers import attempts, fresh, run_create, run_send, stored_row

pytestmark = [pytest.mark.cluster, pytest.mark.django_db(transaction=True)]
GRACE_SECONDS = 2
CLUSTER_ENV = {"LEDGER_HEARTBEAT_SECONDS": "1", "LEDGER_GRACE_SECONDS": str(GRACE_SECONDS)}
HEARTBEAT_TTL_SECONDS = 1 * 3 + 1  # conf.heartbeat_ttl_seconds() in the cluster


def never_running_past_timeout_plus_grace(run, spec):
    """A check for the poll loop: the ledger never shows the run running past its attempt's
    timeout plus grace."""

    def check():
        current = fresh(run)
        if current.status != RunStatus.RUNNING:
            return
        started = current.attempts.get(number=current.attempt).started_at
        limit = timedelta(seconds=spec.timeout_seconds + GRACE_SECONDS)
        assert timezone.now() - started <= limit, "shown running past timeout plus grace"

    return check


def test_worker_killed_mid_run__taken_back_and_succeeds_on_attempt_2(counter):
    """SIGKILL mid-run: the sweeper takes the run back, attempt 2 succeeds, once."""
    spec = get_function("t-hang-once")
    with qcluster(workers=2, env=CLUSTER_ENV) as cluster:
        run = run_send("t-hang-once", {"counter": counter(), "sleep": 60,
                                       "dispatchKey": "kill-test:1"})
        first = sweeping_poll(lambda: next(iter(attempts(run)), None), timeout=20,
                              what="attempt 1 started", clusters=[cluster])
        cluster.kill_worker(first.worker_pid)
        killed_at = timezone.now()
        sweeping_poll(lambda: fresh(run).is_terminal, timeout=30, what="the run ended",
                      clusters=[cluster], also=never_running_past_timeout_plus_grace(run, spec))
    run = fresh(run)
    assert run.status == RunStatus.SUCCEEDED and run.reason == ""
    assert [a.outcome for a in attempts(run)] == [AttemptOutcome.ABANDONED,
                                                  AttemptOutcome.SUCCEEDED]
    abandoned = attempts(run)[0]
    # Taken back once the lease lapsed (heartbeat TTL after the kill), not after the timeout.
    assert abandoned.finished_at - killed_at < timedelta(seconds=HEARTBEAT_TTL_SECONDS + 5)
    assert FunctionRun.objects.filter(function="t-hang-once", status=RunStatus.SUCCEEDED,
                                      idempotency_key="kill-test:1").count() == 1


def test_function_killing_its_worker_every_time__fails_abandoned_after_its_attempts(counter):
    """A job that SIGKILLs its worker ends failed/abandoned after exactly its attempts and the
    broker's redeliveries of the dead deliveries change nothing (django-q2 #327 loops)."""
    spec = get_function("t-kill-self")
    calls = counter()
    # A short ORM redelivery so the dead deliveries come back within the test (E001 would
    # refuse it for the real jobs' timeouts, hence --skip-checks; E001 is tested directly).
    env = {**CLUSTER_ENV, "Q_RETRY_SECONDS": "8", "LEDGER_MAX_TIMEOUT_SECONDS": "5"}
    with qcluster(workers=2, env=env, skip_checks=True) as cluster:
        run = run_send("t-kill-self", {"counter": calls})
        sweeping_poll(lambda: fresh(run).is_terminal, timeout=60, what="the run ended",
                      clusters=[cluster], also=never_running_past_timeout_plus_grace(run, spec))
        ended, ended_row = fresh(run), stored_row(run)
        if not on_redis():
            # Every dead delivery is redelivered `retry` s after its claim, finds the run
            # finished, and is acknowledged: the broker's queue drains and nothing loops.
            sweeping_poll(lambda: not OrmQ.objects.exists(), timeout=40,
                          what="the broker's redeliveries drained", clusters=[cluster])
    assert ended.status == RunStatus.FAILED and ended.reason == RunReason.ABANDONED
    assert [a.outcome for a in attempts(run)] == [AttemptOutcome.ABANDONED] * spec.max_attempts
    assert len(open(calls).read().splitlines()) == spec.max_attempts
    assert stored_row(run) == ended_row


def test_same_run_delivered_twice__one_success_and_the_other_delivery_changes_nothing(counter):
    """Two deliveries of one run: one attempt, one success; the other finds nothing to claim."""
    calls = counter()
    with qcluster(workers=2, env=CLUSTER_ENV) as cluster:
        run = run_create("t-ok", {"counter": calls, "sleep": 1})
        function_run_send(run=run, now=timezone.now())
        function_run_send(run=run, now=timezone.now())
        sweeping_poll(lambda: fresh(run).is_terminal, timeout=20, what="the run ended",
                      clusters=[cluster])
        done, done_row = fresh(run), stored_row(run)
        marker = f'"run_id": {run.pk}'
        sweeping_poll(
            lambda: any(marker in line and "run_delivery_nothing" in line
                        for line in cluster.log_text().splitlines()),
            timeout=20, what="the second delivery was handled", clusters=[cluster])
    assert done.status == RunStatus.SUCCEEDED
    assert len(attempts(run)) == 1
    assert len(open(calls).read().splitlines()) == 1
    assert stored_row(run) == done_row
