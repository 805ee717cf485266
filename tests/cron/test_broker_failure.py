"""A failed enqueue answers 503 and never consumes the window; the emergency fallback."""

import contextlib
import socket
import subprocess
import time

import pytest
from django.conf import settings
from django.test import override_settings
from django_q.conf import Conf
from django_q.models import OrmQ
from freezegun import freeze_time

from cron.models import DispatchWindow, WindowStatus
from ledger.enqueue import broker_is_transactional, reset_broker
from ledger.models import FunctionRun, RunReason, RunStatus
from tests.db_faults import table_missing

URL = "/api/cron/background-jobs"
NOW = "2026-02-17T19:31:30Z"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    """A real redis-server of the test's own, to stop and start."""

    def __init__(self):
        self.port = free_port()
        self.process = None

    def start(self):
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no"], stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(
                    ("127.0.0.1", self.port), timeout=0.2):
                return
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self):
        if self.process:
            self.process.terminate()
            self.process.wait(10)
            self.process = None


@pytest.fixture
def own_redis(monkeypatch):
    """Point Django-Q at a Redis server this test controls (Redis-broker runs only)."""
    if broker_is_transactional():
        pytest.skip("the Redis broker is not configured (REDIS_URL unset): .ci/run covers it")
    server = RedisServer()
    monkeypatch.setattr(Conf, "REDIS", {**settings.Q_CLUSTER["redis"], "host": "127.0.0.1",
                                        "port": server.port})
    reset_broker()
    yield server
    server.stop()
    monkeypatch.undo()  # before anything else builds a broker on the stopped server's port
    reset_broker()


def broker_down(own_redis):
    """The broker refusing work, whichever broker this run uses."""
    if own_redis is None:
        return table_missing(OrmQ)
    own_redis.stop()
    return contextlib.nullcontext()


def broker_up(own_redis):
    if own_redis is not None:
        own_redis.start()


@pytest.fixture
def failing_broker(request):
    """None on the ORM broker (failure by table rename), a RedisServer on Redis."""
    if broker_is_transactional():
        return None
    return request.getfixturevalue("own_redis")


@pytest.mark.django_db
def test_enqueue_failure__503_and_the_same_window_dispatches_after_recovery(cron_client,
                                                                           failing_broker):
    """Broker down: 503 dispatch-failed, window not consumed; recovered: 202 in the window."""
    with freeze_time(NOW):
        with broker_down(failing_broker):
            failed = cron_client.get(URL)
        broker_up(failing_broker)
        recovered = cron_client.get(URL)
        duplicate = cron_client.get(URL)
    assert failed.status_code == 503
    body = failed.json()
    assert body["mode"] == "dispatch-failed"
    assert body["success"] is False and body["enqueued"] is False and body["retryable"] is True
    assert body["enqueueError"]
    assert body["dispatch"]["dispatchKey"] == "background-jobs:v1:60:2026-02-17T19:31:00Z"
    assert recovered.status_code == 202, recovered.content
    assert recovered.json()["mode"] == "dispatch-only"
    assert duplicate.json()["mode"] == "dispatch-duplicate-suppressed"
    window = DispatchWindow.objects.get()
    assert window.status == WindowStatus.ENQUEUED
    runs = FunctionRun.objects.all()
    assert runs.count() == 2 and {run.status for run in runs} == {RunStatus.QUEUED}
    assert all(run.enqueued_at is not None for run in runs)  # sent (on Redis: reopened, sent)


@pytest.mark.django_db
def test_enqueue_failure__on_redis_the_window_is_marked_and_its_runs_cancelled(cron_client,
                                                                              own_redis):
    """With Redis, a failed push leaves the window enqueue-failed and its runs cancelled."""
    with freeze_time(NOW):
        response = cron_client.get(URL)
    assert response.status_code == 503
    window = DispatchWindow.objects.get()
    assert window.status == WindowStatus.ENQUEUE_FAILED
    assert "ConnectionError" in window.enqueue_error
    assert {(run.status, run.reason) for run in FunctionRun.objects.all()} == {
        (RunStatus.CANCELLED, RunReason.ENQUEUE_FAILED)}


@pytest.mark.django_db
def test_enqueue_failure__on_the_orm_broker_nothing_is_left_behind(cron_client):
    """On the ORM broker the window, runs and enqueue roll back together."""
    if not broker_is_transactional():
        pytest.skip("the ORM broker is not configured (REDIS_URL is set)")
    with freeze_time(NOW), table_missing(OrmQ):
        assert cron_client.get(URL).status_code == 503
    assert not DispatchWindow.objects.exists()
    assert not FunctionRun.objects.exists()


@pytest.mark.django_db
@override_settings(BACKGROUND_JOBS_INLINE_EMERGENCY_FALLBACK=True)
def test_enqueue_failure__emergency_fallback_runs_inline(cron_client, failing_broker):
    """Fallback on: 200 inline-emergency-fallback with the error and the inline result."""
    with freeze_time(NOW), broker_down(failing_broker):
        response = cron_client.get(URL)
    assert response.status_code == 200
    body = response.json()
    assert body["mode"] == "inline-emergency-fallback"
    assert body["enqueueError"]
    assert body["process-background-jobs"]["processed"] == 0
    assert DispatchWindow.objects.get().status == WindowStatus.INLINE_EMERGENCY
    inline_runs = FunctionRun.objects.filter(inline=True)
    assert {run.status for run in inline_runs} == {RunStatus.SUCCEEDED}
    assert inline_runs.count() == 2


@pytest.mark.django_db
def test_enqueue_failure__error_text_has_no_credentials():
    from cron.services import scrub

    text = scrub("could not connect to redis://user:hunter2@db:6379/0 password=hunter2 x")
    assert "hunter2" not in text and "redis://***@db:6379/0" in text


@pytest.mark.django_db
def test_redis__a_process_dying_between_commit_and_push_is_repaired(cron_client, own_redis,
                                                                    settings):
    """Redis: the window is written ``enqueued`` and its runs stamped sent, the push follows the
    commit (``cron.services.HANDED_OVER_AT_COMMIT``). A web process that dies in between leaves
    the runs queued but never pushed: the sweeper sends them once they have waited
    LEDGER_REQUEUE_AFTER_SECONDS (not at once, which would double every live dispatch's
    deliveries), and only once."""
    from datetime import timedelta
    from unittest import mock

    from django.utils import timezone
    from django_q.signing import SignedPackage

    from ledger.enqueue import broker
    from ledger.sweeper import ledger_sweep

    settings.LEDGER_REQUEUE_AFTER_SECONDS = 60
    own_redis.start()
    with mock.patch("cron.services._push"):  # died right after the commit
        assert cron_client.get(URL).status_code == 202
    window = DispatchWindow.objects.get()
    runs = FunctionRun.objects.all()
    assert window.status == WindowStatus.ENQUEUED
    assert {(run.status, run.enqueued_at is not None) for run in runs} == {
        (RunStatus.QUEUED, True)}
    now = timezone.now()
    queue = broker()  # the test's own Redis server
    assert ledger_sweep(now=now + timedelta(seconds=30))["resent"] == 0
    assert queue.queue_size() == 0
    assert ledger_sweep(now=now + timedelta(seconds=61))["resent"] == 2
    pushed = [SignedPackage.loads(task.decode())
              for task in queue.connection.lrange(queue.list_key, 0, -1)]
    assert sorted(task["args"][0] for task in pushed) == sorted(run.task_id for run in runs)
    assert ledger_sweep(now=now + timedelta(seconds=62))["resent"] == 0


@pytest.mark.django_db
def test_redis__a_windows_tasks_go_in_one_push_and_nothing_is_written_after(cron_client,
                                                                            own_redis):
    """Redis: both tasks of a new window reach the queue in one RPUSH (all or none, one round
    trip), in the cron's function order, and no statement follows the push: the window was
    written ``enqueued`` with its runs."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django_q.signing import SignedPackage

    from ledger.enqueue import broker

    own_redis.start()
    queue = broker()  # the test's own Redis server
    pushes = []
    real_rpush = queue.connection.rpush

    def counted_rpush(key, *values):
        pushes.append(len(values))
        statements_before_push.append(len(queries))
        return real_rpush(key, *values)

    queue.connection.rpush = counted_rpush
    statements_before_push = []
    with CaptureQueriesContext(connection) as queries:
        response = cron_client.get(URL)
    assert response.status_code == 202
    assert pushes == [2]
    tasks = [SignedPackage.loads(task.decode())
             for task in queue.connection.lrange(queue.list_key, 0, -1)]
    assert [task["args"][0] for task in tasks] == response.json()["taskIds"]
    assert statements_before_push == [len(queries)], [q["sql"] for q in queries]
    assert DispatchWindow.objects.get().status == WindowStatus.ENQUEUED


def queries_of(cron_client, connection) -> tuple[str, list[str]]:
    """The mode of one duplicate-or-not request and the SQL it ran for the window (the read of
    the cron's runtime override, made by every trigger, left out)."""
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        mode = cron_client.get(URL).json()["mode"]
    return mode, [q["sql"] for q in queries if "cron_cronoverride" not in q["sql"]]


@pytest.mark.django_db
def test_redis__a_duplicate_read_during_a_push_that_then_fails_does_not_eat_the_retry(
        cron_client, own_redis):
    """A duplicate that reads the window while its push is under way sees it ``enqueued``; the
    push then fails and gives the window back. The scheduler's retry must still take the window
    over (202), not be answered "duplicate" from the memory of the process that served the
    duplicate. Until the window can no longer be given back, another process reads it again
    (one SELECT, no INSERT); from then on it answers from memory."""
    from unittest import mock

    from django.db import connection

    import cron.services
    from cron import conf
    from cron.known_windows import known_windows_forget

    duplicates = []
    real_enqueue = cron.services.function_runs_enqueue

    def duplicate_then_push(**kwargs):
        if not duplicates:  # another trigger of the same tick, during the push
            duplicates.append(cron_client.get(URL))
        return real_enqueue(**kwargs)  # the test's Redis is down: raises

    with freeze_time(NOW) as clock:
        with mock.patch("cron.services.function_runs_enqueue", duplicate_then_push):
            failed = cron_client.get(URL)
        assert failed.status_code == 503
        assert duplicates[0].json()["mode"] == "dispatch-duplicate-suppressed"
        assert duplicates[0].json()["existingDispatch"]["status"] == WindowStatus.ENQUEUED
        assert DispatchWindow.objects.get().status == WindowStatus.ENQUEUE_FAILED
        own_redis.start()
        retried = cron_client.get(URL)
        assert retried.status_code == 202, retried.content
        assert retried.json()["mode"] == "dispatch-only"
        known_windows_forget()  # now as another web process, which read nothing yet
        mode, first = queries_of(cron_client, connection)
        assert mode == "dispatch-duplicate-suppressed" and any("INSERT" in q for q in first)
        clock.tick(conf.TRUST_READ_WINDOW_AFTER_SECONDS - 1)
        mode, again = queries_of(cron_client, connection)
        assert mode == "dispatch-duplicate-suppressed"
        assert len(again) == 1 and again[0].startswith("SELECT"), again
        clock.tick(1)
        assert queries_of(cron_client, connection) == ("dispatch-duplicate-suppressed", [])
    window = DispatchWindow.objects.get()
    assert window.status == WindowStatus.ENQUEUED and window.dispatch_attempts == 2
    assert {run.status for run in FunctionRun.objects.all()} == {RunStatus.QUEUED}


@pytest.mark.django_db
def test_redis__a_push_failing_after_the_window_can_be_given_back_leaves_it_to_the_sweeper(
        cron_client, own_redis, settings, caplog):
    """A broker that takes the push and fails it only after ``GIVE_BACK_SECONDS``: other
    processes may already answer the window's duplicates from memory, so it is not given back.
    It stays ``enqueued``, the dispatch answers 202 (no emergency run beside the runs the
    ledger owes), the failure is logged, and the sweeper sends the runs once they waited."""
    from datetime import timedelta
    from unittest import mock

    import cron.services
    from cron import conf
    from ledger.enqueue import broker
    from ledger.sweeper import ledger_sweep

    # Through the ``settings`` fixture only: @override_settings beside it leaked its value
    # into every later test of the session.
    settings.BACKGROUND_JOBS_INLINE_EMERGENCY_FALLBACK = True
    settings.LEDGER_REQUEUE_AFTER_SECONDS = 60
    real_enqueue = cron.services.function_runs_enqueue
    with freeze_time(NOW) as clock:
        def hung_then_failed(**kwargs):
            clock.tick(conf.GIVE_BACK_SECONDS)
            return real_enqueue(**kwargs)  # the test's Redis is down: raises

        with mock.patch("cron.services.function_runs_enqueue", hung_then_failed):
            response = cron_client.get(URL)
        assert response.status_code == 202, response.content
        assert response.json()["mode"] == "dispatch-only"
        assert cron_client.get(URL).json()["mode"] == "dispatch-duplicate-suppressed"
    assert [r.action for r in caplog.records if hasattr(r, "action")].count(
        "cron_push_failed_late") == 1
    window = DispatchWindow.objects.get()
    assert window.status == WindowStatus.ENQUEUED
    assert window.enqueue_error.startswith("push failed after the handover; the sweeper sends")
    assert "ConnectionError" in window.enqueue_error
    runs = FunctionRun.objects.all()
    assert {(run.status, run.inline, run.enqueued_at is not None) for run in runs} == {
        (RunStatus.QUEUED, False, True)} and runs.count() == 2
    own_redis.start()
    sent_at = runs[0].enqueued_at
    assert ledger_sweep(now=sent_at + timedelta(seconds=61))["resent"] == 2
    assert broker().queue_size() == 2
