"""Redis broker (at most once): lost tasks come back through the sweeper, never through Redis."""

import pytest

from ledger.enqueue import broker
from ledger.models import AttemptOutcome, RunStatus
from tests.cluster import qcluster
from tests.conftest import on_redis
from tests.ledger.conftest import sweep, sweeping_poll
from tests.ledger.helpers import attempts, fresh, run_send

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not on_redis(), reason="needs the Redis broker: set REDIS_URL"),
]
CLUSTER_ENV = {"LEDGER_HEARTBEAT_SECONDS": "1"}


def test_task_lost_with_its_killed_worker__sent_again_by_the_sweeper_and_completes(counter):
    """SIGKILL mid-run on Redis: the task is gone from Redis; the sweeper takes the run back
    and sends it again; it completes on attempt 2."""
    with qcluster(workers=1, env=CLUSTER_ENV) as cluster:
        run = run_send("t-hang-once", {"counter": counter(), "sleep": 60})
        first = sweeping_poll(lambda: next(iter(attempts(run)), None), timeout=20,
                              what="attempt 1 started", clusters=[cluster])
        cluster.kill_worker(first.worker_pid)
        assert broker().queue_size() == 0  # nothing left in Redis to redeliver it
        cluster_only = fresh(run)
        assert cluster_only.status == RunStatus.RUNNING  # only the sweeper can recover it
        sweeping_poll(lambda: fresh(run).is_terminal, timeout=30, what="the run ended",
                      clusters=[cluster])
    assert fresh(run).status == RunStatus.SUCCEEDED
    assert [a.outcome for a in attempts(run)] == [AttemptOutcome.ABANDONED,
                                                  AttemptOutcome.SUCCEEDED]


def test_lost_queued_delivery__sent_again_by_the_sweeper_and_completes(settings):
    """A delivery lost before any worker took it is sent again once overdue, and runs."""
    settings.LEDGER_REQUEUE_AFTER_SECONDS = 1
    run = fresh(run_send("t-ok", {}))
    broker().purge_queue()  # lost (a Redis restart, a cluster killed while holding it)
    assert sweep()["resent"] == 0  # not overdue yet: no duplicate delivery
    with qcluster(workers=1, env=CLUSTER_ENV) as cluster:
        sweeping_poll(lambda: fresh(run).status == RunStatus.SUCCEEDED, timeout=20,
                      what="the lost run was sent again and succeeded", clusters=[cluster])
    assert [a.outcome for a in attempts(run)] == [AttemptOutcome.SUCCEEDED]
    assert fresh(run).enqueued_at > run.enqueued_at  # the sweeper's delivery, not the first
