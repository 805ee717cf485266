"""End to end: a cron triggered over HTTP runs on a real qcluster and the ledger shows it."""

import json
import urllib.request

import pytest

from cron.models import DispatchWindow, WindowStatus
from ledger.models import FunctionRun, RunStatus
from tests.cluster import poll, qcluster
from tests.conftest import CRON_SECRET


@pytest.mark.cluster
@pytest.mark.django_db(transaction=True)
def test_end_to_end__dispatched_functions_succeed_on_a_real_cluster(live_server):
    """202 over HTTP; a qcluster runs both functions; the ledger shows them succeeded."""
    with qcluster(workers=2) as cluster:
        request = urllib.request.Request(
            live_server.url + "/api/cron/background-jobs",
            headers={"Authorization": f"Bearer {CRON_SECRET}", "X-Correlation-Id": "e2e-1"})
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 202
            body = json.loads(response.read())
        key = body["dispatch"]["dispatchKey"]

        def both_finished():
            runs = FunctionRun.objects.filter(dispatch_key=key)
            return runs.count() == 2 and all(run.is_terminal for run in runs)

        poll(both_finished, timeout=30, what="both runs finished", clusters=[cluster])
    runs = FunctionRun.objects.filter(dispatch_key=key).order_by("function")
    assert [(run.function, run.status) for run in runs] == [
        ("background-maintenance", RunStatus.SUCCEEDED),
        ("process-background-jobs", RunStatus.SUCCEEDED),
    ]
    assert all(run.duration_ms is not None and run.started_at and run.finished_at for run in runs)
    assert all(run.correlation_id == "e2e-1" and run.attempt == 1 for run in runs)
    assert sorted(run.task_id for run in runs) == sorted(body["taskIds"])
    assert runs[1].result["processed"] == 0
    assert DispatchWindow.objects.get(dispatch_key=key).status == WindowStatus.ENQUEUED
