"""32 simultaneous triggers of one window over real HTTP: exactly one dispatch."""

import json
import threading
import urllib.error
import urllib.request

import pytest
from django_q.conf import Conf
from django_q.models import OrmQ

from cron.models import DispatchWindow
from ledger.enqueue import broker, broker_is_transactional
from ledger.models import FunctionRun, RunStatus
from tests.conftest import CRON_SECRET

THREADS = 32


def trigger(url: str) -> tuple[int, dict]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {CRON_SECRET}"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("route", ["background-jobs", "race-allow-all"])
def test_race__32_threads_one_window_one_dispatch(live_server, make_cron, route):
    """Exactly one dispatch per window; the rest 200 duplicates; one window row; one task per
    function. background-jobs' functions have the ``skip`` overlap policy, the throwaway
    cron's ``allow-all``."""
    make_cron("race-allow-all",
              functions=[("race-a", "race-a", None), ("race-b", "race-b", None)])
    url = live_server.url + f"/api/cron/{route}"
    barrier = threading.Barrier(THREADS)
    results = []

    def worker():
        barrier.wait()
        results.append(trigger(url))

    threads = [threading.Thread(target=worker) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    statuses = sorted(status for status, _ in results)
    # A trigger straddling a minute boundary lands in the next window; allow that one case.
    windows = {body["dispatch"]["dispatchKey"] for _, body in results}
    assert len(results) == THREADS
    modes = sorted(body["mode"] for _, body in results)
    assert modes.count("dispatch-only") == len(windows), results
    assert modes.count("dispatch-duplicate-suppressed") == THREADS - len(windows)
    assert all(status == 200 for status, body in results
               if body["mode"] == "dispatch-duplicate-suppressed")
    # A second window's runs skipped by the first's (overlap ``skip``) answer 200, not 202.
    assert all((status == 202) == body["enqueued"] for status, body in results
               if body["mode"] == "dispatch-only")
    assert DispatchWindow.objects.count() == len(windows)
    assert FunctionRun.objects.count() == 2 * len(windows)
    # A second window (a trigger straddling a minute boundary) of a ``skip`` cron finds the
    # first one's runs still queued: its runs are recorded skipped and enqueue nothing.
    sent = FunctionRun.objects.exclude(status=RunStatus.SKIPPED).count()
    assert sent == (2 * len(windows) if route == "race-allow-all" else 2)
    if broker_is_transactional():
        assert OrmQ.objects.filter(key=Conf.CLUSTER_NAME).count() == sent
    else:
        assert broker().queue_size() == sent
