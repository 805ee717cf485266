"""Faults under load (issue 22): a real gunicorn and two real clusters on the test database take
a webhook burst with duplicates and cron triggers while a cluster worker, a whole cluster and a
gunicorn worker are SIGKILLed and (Redis broker) Redis is restarted. Then, with nothing but the
processes still running (no manual step, no new traffic), every accepted event must end
processed exactly once, every window's runs terminal, nothing queued, running or processing.

PostgreSQL only; the broker follows the environment (REDIS_URL set: a private redis-server on a
free port, never the shared one; unset: the ORM broker). The recovery times are printed.
Bounded: the burst lasts BURST_SECONDS; recovery may take up to the design's own deadlines
(ORM broker: a task claimed by a killed cluster comes back after Django-Q's ``retry``).
"""

import json
import os
import random
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from unittest import mock

import pytest
from django.db import connection
from django.db.models import Count
from django_q.models import Schedule

from cron.models import DispatchWindow
from jobs.models import Client, Message
from ledger.models import FunctionAttempt, FunctionRun, RunStatus
from ledger.schedules import SWEEP_FUNC, SWEEP_SCHEDULE_NAME
from tests.cluster import Cluster
from tests.conftest import CRON_SECRET, on_redis
from tests.faults.redis_server import RedisServer
from tests.ledger.helpers import run_send
from tests.ledger.jobs_for_tests import register_test_jobs
from tests.server import Server
from tests.webhooks.helpers import TOKEN, fixture_payload
from webhooks.models import DrainDoorbell, EventStatus, WebhookEvent

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]

N_EVENTS = 300
DUPLICATE_EVERY = 4  # every 4th event is delivered twice
BURST_SECONDS = 24
RETRY_SECONDS = 360  # the smallest Q_CLUSTER retry ledger.E001 accepts (300 s + 25 + 30)
REQUEUE_AFTER_SECONDS = 10
ENV = {
    "LEDGER_HEARTBEAT_SECONDS": "1",
    "LEDGER_GRACE_SECONDS": "5",
    "LEDGER_REQUEUE_AFTER_SECONDS": str(REQUEUE_AFTER_SECONDS),
    "WEBHOOK_LEASE_SECONDS": "10",
    "Q_RETRY_SECONDS": str(RETRY_SECONDS),
    "BACKGROUND_JOBS_DISPATCH_WINDOW_SECONDS": "15",
    "Q_CLUSTER_NAME": "faults",
    "GUNICORN_WORKERS": "2",
    "GUNICORN_THREADS": "8",
}
ACTIVE_RUNS = (RunStatus.QUEUED, RunStatus.RUNNING)
UNFINISHED_EVENTS = (EventStatus.PENDING, EventStatus.PROCESSING)


@pytest.fixture(autouse=True)
def _postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("the fault suite needs PostgreSQL: SQLite serialises every writer, and "
                    "production runs on PostgreSQL (CONTRACT.md)")


@pytest.fixture
def fault_env():
    """The processes' environment, with a private redis-server on the Redis broker."""
    env = dict(ENV)
    if not on_redis():
        env["REDIS_URL"] = ""  # the ORM broker on the test database
        yield env, None
        return
    server = RedisServer().start()
    env["REDIS_URL"] = server.url
    try:
        yield env, server
    finally:
        server.stop()


def event_body(n: int) -> bytes:
    payload = fixture_payload("email_sent__basic")
    payload["data"]["scheduled_email"]["id"] = 100000 + n
    payload["data"]["lead"]["email"] = f"lead{n}@example.com"
    return json.dumps(payload).encode()


class Traffic:
    """The provider and the scheduler: retry on connection errors and 5xx, as they would."""

    def __init__(self, server: Server):
        self.server = server
        self.lock = threading.Lock()
        self.accepted: dict[int, list[int]] = {}  # n -> event ids answered for it
        self.refused: list[tuple[int, int, bytes]] = []
        self.retries = 0
        self.windows: set[str] = set()
        self.cron_statuses: dict[int, int] = {}

    def deliver(self, n: int) -> None:
        deadline = time.monotonic() + 90
        while True:
            try:
                status, body = self.server.request(
                    "POST", "/api/webhooks/email", event_body(n),
                    {"X-Webhook-Token": TOKEN, "Content-Type": "application/json"}, timeout=15)
            except OSError:
                status, body = 599, b""
            if status in (200, 202):
                with self.lock:
                    self.accepted.setdefault(n, []).append(json.loads(body)["eventId"])
                return
            if status < 500 or time.monotonic() > deadline:
                with self.lock:
                    self.refused.append((n, status, body[:200]))
                return
            with self.lock:
                self.retries += 1
            time.sleep(0.2)

    def trigger_crons(self, until: float) -> None:
        while time.monotonic() < until:
            try:
                status, body = self.server.request(
                    "GET", "/api/cron/background-jobs", None,
                    {"Authorization": f"Bearer {CRON_SECRET}"}, timeout=15)
            except OSError:
                status, body = 599, b""
            with self.lock:
                self.cron_statuses[status] = self.cron_statuses.get(status, 0) + 1
                if status == 202:
                    self.windows.add(json.loads(body)["dispatch"]["dispatchKey"])
            time.sleep(0.5)


def pids_holding_work(pids: set[int]) -> set[int]:
    """Which of ``pids`` hold work now: a running attempt, or a webhook event claimed (the
    claim names ``role@host:pid:thread``)."""
    holding = set(FunctionAttempt.objects.filter(
        run__status=RunStatus.RUNNING, finished_at__isnull=True,
        worker_pid__in=pids).values_list("worker_pid", flat=True))
    for claimed_by in WebhookEvent.objects.filter(status=EventStatus.PROCESSING).values_list(
            "claimed_by", flat=True):
        parts = claimed_by.rsplit(":", 2)
        if len(parts) == 3 and parts[1].isdigit() and int(parts[1]) in pids:
            holding.add(int(parts[1]))
    return holding


def when_holding_work(pids_of, *, timeout: float) -> tuple[set[int], set[int]]:
    """Wait (bounded) until some of ``pids_of()`` hold work, so the kill strands something:
    (the pids, those holding work; empty when nothing was held by the deadline)."""
    deadline = time.monotonic() + timeout
    while True:
        pids = set(pids_of())
        holding = pids_holding_work(pids)
        if holding or time.monotonic() > deadline:
            return pids, holding
        time.sleep(0.05)


@contextmanager
def clusters_queue(env: dict):
    """Send from the test process to the clusters' queue: their queue name and, on Redis, the
    private redis-server they use."""
    from django_q.conf import Conf
    from redis.connection import parse_url

    from ledger.enqueue import reset_broker

    patches = {"CLUSTER_NAME": env["Q_CLUSTER_NAME"], "PREFIX": env["Q_CLUSTER_NAME"]}
    if env.get("REDIS_URL"):
        patches["REDIS"] = {**Conf.REDIS, **parse_url(env["REDIS_URL"])}
    with mock.patch.multiple(Conf, **patches):
        reset_broker()
        try:
            yield
        finally:
            reset_broker()
    reset_broker()


def kill_worker_mid_task(clusters: list[Cluster], held: dict, env: dict) -> None:
    """SIGKILL a cluster worker in the middle of a task: a slow run is sent and the worker that
    runs it is killed, stranding its attempt (the sweeper takes it back once its lease lapses).

    Never an idle worker: Django-Q's workers share one multiprocessing queue, and a worker
    killed while it waits to read it can die holding the queue's lock, which wedges every other
    worker of its cluster for good (docs/deploy.md, "Known limits"). That is a fault for the
    cluster's supervisor to restart, not one the ledger can recover from inside the cluster."""
    register_test_jobs()
    with clusters_queue(env):
        run = run_send("t-slow", {"sleep": 30})
    deadline = time.monotonic() + 10
    pids = {pid for cluster in clusters for pid in cluster.worker_pids()}
    while time.monotonic() < deadline:
        attempt = FunctionAttempt.objects.filter(run=run, worker_pid__in=pids).first()
        if attempt is not None:
            held["cluster worker"] = [attempt.worker_pid]
            os.kill(attempt.worker_pid, signal.SIGKILL)
            return
        time.sleep(0.05)
        pids = {pid for cluster in clusters for pid in cluster.worker_pids()}
    raise AssertionError("no worker started the slow run within 10 s")


def kill_whole_cluster(cluster: Cluster, held: dict) -> None:
    _, holding = when_holding_work(lambda: {cluster.pid, *cluster.descendants()}, timeout=8)
    held["whole cluster"] = sorted(holding)
    for pid in {cluster.pid, *cluster.descendants()}:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    cluster.process.wait(timeout=10)
    cluster.stopped = True


def state(accepted_ids: set[int]) -> dict:
    return {
        "events_unfinished": WebhookEvent.objects.filter(status__in=UNFINISHED_EVENTS).count(),
        "accepted_not_succeeded": WebhookEvent.objects.filter(pk__in=accepted_ids).exclude(
            status=EventStatus.SUCCEEDED).count(),
        "runs_active": FunctionRun.objects.filter(status__in=ACTIVE_RUNS).count(),
    }


def test_faults__burst_with_kills_and_broker_restart_recovers_by_itself(fault_env):
    """Kills and a broker restart mid-burst; afterwards nothing but the surviving processes
    brings every accepted event to processed-once and every run to a terminal status."""
    env, redis_server = fault_env
    Client.objects.create(name="Acme Outreach", emailbison_workspace_id="42")
    cluster_a = Cluster(workers=2, env=env, label="cluster-a").start()
    cluster_b = Cluster(workers=2, env=env, label="cluster-b").start()
    server = Server(env=env, label="gunicorn-faults").start()
    processes = [cluster_a, cluster_b, server]
    faults: dict[str, float] = {}
    try:
        traffic = Traffic(server)
        order = list(range(N_EVENTS)) + list(range(0, N_EVENTS, DUPLICATE_EVERY))
        random.Random(22).shuffle(order)
        started = time.monotonic()
        crons = threading.Thread(target=traffic.trigger_crons,
                                 args=(started + BURST_SECONDS,), daemon=True)
        crons.start()
        with ThreadPoolExecutor(max_workers=4) as senders:
            sending = senders.map(traffic.deliver, order)
            held: dict[str, list[int]] = {}  # what each killed process held (pids)
            timeline = [(3, "cluster worker",
                         lambda: kill_worker_mid_task([cluster_a, cluster_b], held, env)),
                        (6, "gunicorn worker", lambda: os.kill(server.worker_pids()[0],
                                                               signal.SIGKILL)),
                        (9, "whole cluster", lambda: kill_whole_cluster(cluster_b, held))]
            if redis_server is not None:
                timeline.append((12, "redis restart",
                                 lambda: redis_server.restart(down_seconds=3)))
            for at, name, fault in timeline:
                time.sleep(max(0.0, started + at - time.monotonic()))
                fault()
                faults[name] = time.monotonic()
            list(sending)
        crons.join(timeout=BURST_SECONDS + 30)
        traffic_ended = time.monotonic()
        last_fault = max(faults.values())
        print(f"\nburst: {len(order)} deliveries in {traffic_ended - started:.1f} s, "
              f"{traffic.retries} retried by the senders, cron answers {traffic.cron_statuses}, "
              f"faults at {', '.join(f'{k} +{v - started:.1f} s' for k, v in faults.items())}; "
              f"killed while holding work: {held}")
        assert not traffic.refused, traffic.refused[:5]
        assert sorted(traffic.accepted) == list(range(N_EVENTS))
        for n, event_ids in traffic.accepted.items():
            assert len(set(event_ids)) == 1, (n, event_ids)  # a duplicate named the first event
        accepted_ids = {ids[0] for ids in traffic.accepted.values()}

        # Nothing but the running processes from here on.
        # The design's own deadlines: a lease or heartbeat lapses within seconds, the sweeper
        # runs every minute, a queued run is re-sent after REQUEUE_AFTER_SECONDS, and on the
        # ORM broker a task a dead cluster had claimed comes back after Django-Q's retry.
        redelivery = REQUEUE_AFTER_SECONDS + (0 if redis_server is not None else RETRY_SECONDS)
        deadline = traffic_ended + redelivery + 120
        recovered: dict[str, float] = {}
        current = state(accepted_ids)
        while time.monotonic() < deadline:
            current = state(accepted_ids)
            if not current["events_unfinished"] and not current["accepted_not_succeeded"]:
                recovered.setdefault("events", time.monotonic())
            if not current["runs_active"]:
                recovered.setdefault("runs", time.monotonic())
            if len(recovered) == 2:
                break
            for process in (cluster_a, server):
                assert process.alive(), f"{process.label} died"
            time.sleep(1)
        for name in ("events", "runs"):
            if name in recovered:
                print(f"recovered {name}: {recovered[name] - last_fault:.1f} s after the last "
                      f"fault, {recovered[name] - traffic_ended:.1f} s after the traffic ended")
            else:
                print(f"NOT recovered {name} within {deadline - traffic_ended:.0f} s after the "
                      f"traffic: {current}")
                print(cluster_a.log_tail(200))
        print(f"runs by status: {_runs_by_status()}; "
              f"events by status: {_events_by_status()}; doorbell: {_doorbell()}; "
              f"windows: {_windows()}; runs still active: {_active_runs()}")
        assert current == {"events_unfinished": 0, "accepted_not_succeeded": 0,
                           "runs_active": 0}, current
        assert WebhookEvent.objects.count() == N_EVENTS
        assert Message.objects.count() == N_EVENTS  # processed exactly once each
        assert set(Message.objects.values_list("inboxxia_scheduled_email_id", flat=True)) == {
            str(100000 + n) for n in range(N_EVENTS)}
        windows = set(DispatchWindow.objects.values_list("dispatch_key", flat=True))
        assert traffic.windows <= windows
        assert not FunctionRun.objects.filter(dispatch_key__in=windows,
                                              status__in=ACTIVE_RUNS).exists()
    finally:
        for process in processes:
            process.stop()
            process.log_path.unlink(missing_ok=True)


def _runs_by_status() -> dict:
    return dict(FunctionRun.objects.values_list("status").annotate(n=Count("pk")))


def _events_by_status() -> dict:
    return dict(WebhookEvent.objects.values_list("status").annotate(n=Count("pk")))


def _windows() -> list:
    return list(DispatchWindow.objects.values_list("dispatch_key", "status", "updated_at"))


def _active_runs() -> list:
    return list(FunctionRun.objects.filter(status__in=ACTIVE_RUNS).values(
        "pk", "function", "status", "attempt", "queued_at", "enqueued_at", "next_attempt_at",
        "lease_expires_at"))


def _doorbell() -> list:
    return list(DrainDoorbell.objects.values("pending", "rung_at", "cleared_at"))


def test_faults__sweeper_schedule_exists_after_migrate():
    """DESIGN.md: the sweeper's schedule exists after ``migrate``, with no deploy step; the
    recovery above relies on it when no cron trigger arrives."""
    assert Schedule.objects.filter(name=SWEEP_SCHEDULE_NAME, func=SWEEP_FUNC).exists()
