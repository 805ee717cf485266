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
    """The error a 503 shows names the error, never a password, host or port."""
    from ledger.errors import error_public_message

    text = error_public_message(ConnectionError(
        "could not connect to redis://user:hunter2@db.internal:6379/0 password=hunter2 x"))
    assert "hunter2" not in text and "db.internal" not in text and "6379" not in text
    assert text.startswith("ConnectionError: ")


def pushed_run_ids(queue) -> list[int]:
    """The run ids of the tasks waiting in the test's own Redis queue, in push order."""
    from django_q.signing import SignedPackage

    return [SignedPackage.loads(task.decode())["args"][0]
            for task in queue.connection.lrange(queue.list_key, 0, -1)]


@pytest.mark.django_db
def test_redis__a_window_is_dispatching_while_pushed_then_enqueued(cron_client, own_redis):
    """Redis: the window and its runs commit as ``dispatching``, each run is pushed after the
    commit (in the cron's function order) and stamped sent, then the window is ``enqueued``."""
    from ledger.enqueue import broker

    own_redis.start()
    queue = broker()  # the test's own Redis server
    seen_at_push = []
    real_rpush = queue.connection.rpush

    def spying_rpush(key, *values):
        seen_at_push.append(DispatchWindow.objects.get().status)
        return real_rpush(key, *values)

    queue.connection.rpush = spying_rpush
    response = cron_client.get(URL)
    assert response.status_code == 202
    assert seen_at_push == [WindowStatus.DISPATCHING] * 2
    runs = list(FunctionRun.objects.order_by("pk"))
    assert pushed_run_ids(queue) == [run.pk for run in runs]
    assert [run.task_id for run in runs] == response.json()["taskIds"]
    assert all(run.enqueued_at is not None for run in runs)
    assert DispatchWindow.objects.get().status == WindowStatus.ENQUEUED


@pytest.mark.django_db
def test_redis__a_process_dying_between_commit_and_push_is_settled(cron_client, own_redis):
    """A web process that dies after its commit leaves the window ``dispatching`` and its runs
    queued, never pushed: the sweeper sends them once 30 s old (not at once, which would double
    every live dispatch's deliveries), once; maintenance then marks the window ``enqueued``."""
    from datetime import timedelta
    from unittest import mock

    from django.utils import timezone

    from cron.maintenance import dispatch_windows_settle
    from ledger.enqueue import broker
    from ledger.sweeper import ledger_sweep

    own_redis.start()
    with mock.patch("cron.services._push"):  # died right after the commit
        cron_client.get(URL)
    assert DispatchWindow.objects.get().status == WindowStatus.DISPATCHING
    runs = list(FunctionRun.objects.order_by("pk"))
    assert {(run.status, run.enqueued_at) for run in runs} == {(RunStatus.QUEUED, None)}
    now, queue = timezone.now(), broker()
    assert ledger_sweep(now=now + timedelta(seconds=10))["resent"] == 0
    assert dispatch_windows_settle(now=now + timedelta(seconds=10)) == {"settled": 0, "failed": 0}
    assert ledger_sweep(now=now + timedelta(seconds=31))["resent"] == 2
    assert sorted(pushed_run_ids(queue)) == [run.pk for run in runs]
    assert ledger_sweep(now=now + timedelta(seconds=32))["resent"] == 0
    assert dispatch_windows_settle(now=now + timedelta(seconds=61)) == {"settled": 1, "failed": 0}
    assert DispatchWindow.objects.get().status == WindowStatus.ENQUEUED
    assert queue.queue_size() == 2  # nothing sent twice


@pytest.mark.django_db
def test_redis__settle_sends_a_dead_dispatchs_runs_itself(cron_client, own_redis):
    """Maintenance settles a window left ``dispatching`` even where the sweeper has not sent
    its runs yet: it sends the unsent ones itself, then marks the window."""
    from datetime import timedelta
    from unittest import mock

    from django.utils import timezone

    from cron.maintenance import dispatch_windows_settle
    from ledger.enqueue import broker

    own_redis.start()
    with mock.patch("cron.services._push"):
        cron_client.get(URL)
    assert dispatch_windows_settle(now=timezone.now() + timedelta(seconds=61)) == {
        "settled": 1, "failed": 0}
    assert broker().queue_size() == 2
    assert all(run.enqueued_at for run in FunctionRun.objects.all())


@pytest.mark.django_db
def test_redis__a_duplicate_during_a_push_that_then_fails_does_not_eat_the_retry(
        cron_client, own_redis):
    """A duplicate that reads the window while its push is under way sees it ``dispatching``;
    the push then fails and gives the window back; the scheduler's retry takes it over (202)."""
    from unittest import mock

    import cron.services

    duplicates = []
    real_send = cron.services.function_runs_send

    def duplicate_then_push(**kwargs):
        if not duplicates:  # another trigger of the same tick, during the push
            duplicates.append(cron_client.get(URL))
        return real_send(**kwargs)  # the test's Redis is down: raises

    with freeze_time(NOW):
        with mock.patch("cron.services.function_runs_send", duplicate_then_push):
            failed = cron_client.get(URL)
        assert failed.status_code == 503
        assert duplicates[0].json()["mode"] == "dispatch-duplicate-suppressed"
        assert duplicates[0].json()["existingDispatch"]["status"] == WindowStatus.DISPATCHING
        assert DispatchWindow.objects.get().status == WindowStatus.ENQUEUE_FAILED
        own_redis.start()
        retried = cron_client.get(URL)
        assert retried.status_code == 202, retried.content
        assert cron_client.get(URL).json()["mode"] == "dispatch-duplicate-suppressed"
    window = DispatchWindow.objects.get()
    assert window.status == WindowStatus.ENQUEUED and window.dispatch_attempts == 2
    assert {run.status for run in FunctionRun.objects.all()} == {RunStatus.QUEUED}


@pytest.mark.django_db
def test_redis__a_push_failing_after_the_first_task_cancels_only_the_unsent_run(
        cron_client, own_redis):
    """The first function's task reached Redis, the second's push failed: the first run stays
    queued (it will run), the second is cancelled, the window ``enqueue-failed``; the retry
    sends only the cancelled one, so nothing runs twice."""
    from unittest import mock

    import ledger.services
    from ledger.enqueue import broker

    own_redis.start()
    real_enqueue = ledger.services.enqueue_run
    calls = []

    def second_fails(*args, **kwargs):
        calls.append(args)
        if len(calls) == 2:
            from redis.exceptions import ConnectionError as RedisConnectionError
            raise RedisConnectionError("connection reset")
        return real_enqueue(*args, **kwargs)

    with freeze_time(NOW):
        with mock.patch("ledger.services.enqueue_run", second_fails):
            assert cron_client.get(URL).status_code == 503
        first, second = FunctionRun.objects.order_by("pk")
        assert (first.status, first.enqueued_at is not None) == (RunStatus.QUEUED, True)
        assert (second.status, second.reason) == (RunStatus.CANCELLED, RunReason.ENQUEUE_FAILED)
        assert DispatchWindow.objects.get().status == WindowStatus.ENQUEUE_FAILED
        assert cron_client.get(URL).status_code == 202
    queue = broker()
    assert pushed_run_ids(queue) == [first.pk, second.pk]  # each pushed once
    assert {run.status for run in FunctionRun.objects.all()} == {RunStatus.QUEUED}
