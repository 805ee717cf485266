"""Overlap policies through the real dispatch path, over windows whose runs outlast the window.

Each trigger is a later 15-second window of a throwaway cron whose function (t-slow) takes two
seconds; the first window's run is still running on a real cluster when the next windows are
dispatched, which is what a run longer than its window looks like.
"""

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from cron.registry import CronDefinition, CronFunction, register_cron, unregister_cron
from cron.services import Mode, Source, Trigger, cron_trigger
from ledger.models import FunctionAttempt, FunctionRun, RunReason, RunStatus
from ledger.registry import Overlap
from tests.cluster import qcluster
from tests.ledger.conftest import sweeping_poll
from tests.ledger.helpers import fresh

pytestmark = [pytest.mark.cluster, pytest.mark.django_db(transaction=True)]
WINDOW_SECONDS = 15


@pytest.fixture
def overlap_cron():
    names = []

    def make(overlap: Overlap) -> CronDefinition:
        name = f"t-overlap-{overlap.value}"
        names.append(name)
        return register_cron(CronDefinition(
            name=name, route=name,
            functions=(CronFunction(f"t-slow-{overlap.value}", "t-slow"),),
            window_seconds=WINDOW_SECONDS, schedule="* * * * *", use_queue_default=True,
        ))

    yield make
    for name in names:
        unregister_cron(name)


def dispatch_window(cron: CronDefinition, index: int, base) -> FunctionRun:
    """Dispatch window ``index`` of ``cron`` (a trigger at the window's start); its run."""
    trigger = Trigger(cron=cron, source=Source.COMMAND, params={},
                      correlation_id=str(uuid.uuid4()),
                      requested_at=base + timedelta(seconds=WINDOW_SECONDS * index))
    outcome = cron_trigger(trigger=trigger, dispatch=True)
    assert outcome.mode == Mode.DISPATCH_ONLY
    (run,) = outcome.runs
    return fresh(run)


def first_window_running(cron: CronDefinition, base, cluster) -> FunctionRun:
    """Dispatch window 0 and wait until its run is running on the cluster."""
    first = dispatch_window(cron, 0, base)
    sweeping_poll(lambda: fresh(first).status == RunStatus.RUNNING, timeout=20,
                  what="window 0 running", clusters=[cluster])
    return first


def window_base():
    now = timezone.now().replace(microsecond=0) - timedelta(minutes=5)
    return now - timedelta(seconds=now.second % WINDOW_SECONDS)


def spans(runs):
    rows = FunctionAttempt.objects.filter(run__in=runs).order_by("started_at")
    return [(a.run_id, a.started_at, a.finished_at) for a in rows]


def test_skip__windows_while_a_run_is_active_are_skipped(overlap_cron):
    """skip: windows 1 and 2 arrive while window 0 runs and are skipped (overlap); window 3,
    after it ended, runs."""
    cron = overlap_cron(Overlap.SKIP)
    base = window_base()
    with qcluster(workers=2, env={"LEDGER_HEARTBEAT_SECONDS": "1"}) as cluster:
        first = first_window_running(cron, base, cluster)
        skipped = [dispatch_window(cron, 1, base), dispatch_window(cron, 2, base)]
        assert fresh(first).status == RunStatus.RUNNING  # they really arrived during the run
        sweeping_poll(lambda: fresh(first).is_terminal, timeout=20, what="window 0 ended",
                      clusters=[cluster])
        last = dispatch_window(cron, 3, base)
        sweeping_poll(lambda: fresh(last).is_terminal, timeout=20, what="window 3 ended",
                      clusters=[cluster])
    assert fresh(first).status == RunStatus.SUCCEEDED
    assert [(fresh(r).status, fresh(r).reason) for r in skipped] == [
        (RunStatus.SKIPPED, RunReason.OVERLAP)] * 2
    assert not FunctionAttempt.objects.filter(run__in=skipped).exists()
    assert fresh(last).status == RunStatus.SUCCEEDED


def test_buffer_one__one_window_waits_and_runs_after_the_next_is_skipped(overlap_cron):
    """buffer-one: window 1 waits behind the running window 0 and runs after it; window 2,
    with one already waiting, is skipped."""
    cron = overlap_cron(Overlap.BUFFER_ONE)
    base = window_base()
    with qcluster(workers=2, env={"LEDGER_HEARTBEAT_SECONDS": "1"}) as cluster:
        first = first_window_running(cron, base, cluster)
        buffered = dispatch_window(cron, 1, base)
        refused = dispatch_window(cron, 2, base)
        assert fresh(first).status == RunStatus.RUNNING
        runs = [first, buffered, refused]
        sweeping_poll(lambda: all(fresh(r).is_terminal for r in runs), timeout=30,
                      what="every window's run ended", clusters=[cluster])
    assert fresh(first).status == RunStatus.SUCCEEDED
    assert fresh(buffered).status == RunStatus.SUCCEEDED
    assert (fresh(refused).status, fresh(refused).reason) == (RunStatus.SKIPPED,
                                                              RunReason.OVERLAP)
    (first_span, buffered_span) = spans([first, buffered])
    assert first_span[0] == first.pk and buffered_span[0] == buffered.pk
    assert buffered_span[1] >= first_span[2]  # started only after window 0 finished

