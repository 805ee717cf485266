"""Small helpers shared by the ledger's tests."""

import time

from django.db import connection
from django.utils import timezone

from ledger.models import FunctionAttempt, FunctionRun
from ledger.services import RunRequest, function_run_create, function_run_send


def run_create(function: str, payload: dict | None = None, **request) -> FunctionRun:
    """A queued run of ``function``, as a dispatch makes it (not sent)."""
    request.setdefault("source", "command")
    return function_run_create(
        request=RunRequest(function=function, payload=payload or {}, **request), now=timezone.now()
    )


def run_send(function: str, payload: dict | None = None, **request) -> FunctionRun:
    """A queued run handed to the broker, as a dispatch does."""
    run = run_create(function, payload, **request)
    function_run_send(run=run, now=timezone.now())
    return run


def broker_run_ids() -> list[int]:
    """The run ids of the tasks waiting in the broker (ORM queue rows, or the Redis list), in
    the order they were sent: what the sweeper and the dispatch really handed over."""
    from django_q.models import OrmQ
    from django_q.signing import SignedPackage

    from ledger.enqueue import broker, broker_is_transactional

    if broker_is_transactional():
        payloads = OrmQ.objects.order_by("pk").values_list("payload", flat=True)
    else:
        queue = broker()
        payloads = [task.decode() for task in queue.connection.lrange(queue.list_key, 0, -1)]
    return [SignedPackage.loads(payload)["args"][0] for payload in payloads]


def fresh(run: FunctionRun) -> FunctionRun:
    return FunctionRun.objects.get(pk=run.pk)


def stored_row(run: FunctionRun) -> dict:
    """Every column of the run as stored: two reads compare equal when nothing was written."""
    return FunctionRun.objects.values().get(pk=run.pk)


def attempts(run: FunctionRun) -> list[FunctionAttempt]:
    return list(FunctionAttempt.objects.filter(run_id=run.pk).order_by("number"))


def wait_until_another_backend_waits_for_us(deadline_seconds: float = 10) -> None:
    """PostgreSQL: poll (with a deadline) until another backend waits for a lock that this
    test's connection holds."""
    deadline = time.monotonic() + deadline_seconds
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute("SELECT pg_stat_clear_snapshot()")  # read afresh inside a transaction
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND %s = ANY(pg_blocking_pids(pid))", [connection.connection.info.backend_pid])
            if cursor.fetchone()[0]:
                return
            time.sleep(0.01)
    raise AssertionError("no other backend came to wait for this connection's locks")
