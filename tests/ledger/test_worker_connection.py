"""A delivery's first statement (the claim when the task names the run's function, else the
run's read) is also the connection's health check: no ``SELECT 1`` round trip before each task,
and a connection the database dropped since the last task is replaced, not fatal."""

import time

import psycopg
import pytest
from django.db import close_old_connections, connection

from ledger.models import FunctionAttempt, RunStatus
from ledger.tasks import execute_run
from tests.ledger.helpers import run_create

pytestmark = [
    pytest.mark.skipif(connection.vendor != "postgresql",
                       reason="health checks of persistent connections: PostgreSQL's settings"),
    pytest.mark.django_db(transaction=True),  # the worker's case: no caller's transaction
]


@pytest.fixture
def health_checks(monkeypatch):
    """Counts Django's health checks (``is_usable``), which still do their real work."""
    assert connection.settings_dict["CONN_HEALTH_CHECKS"]
    assert connection.settings_dict["CONN_MAX_AGE"]
    calls = []
    real = connection.is_usable

    def is_usable():
        calls.append(time.monotonic())
        return real()

    monkeypatch.setattr(connection, "is_usable", is_usable)
    return calls


NAMED = pytest.mark.parametrize("function", ["t-ok", None],
                                ids=["task names the function", "it does not"])


@NAMED
def test_execute_run__after_close_old_connections__no_separate_health_check(health_checks,
                                                                            function):
    run = run_create("t-ok", {"dispatchKey": "k:health"})
    connection.ensure_connection()
    close_old_connections()  # what Django-Q's worker does before every task
    assert connection.health_check_done is False
    assert execute_run(run.pk, function)["status"] == RunStatus.SUCCEEDED
    assert health_checks == []


@NAMED
@pytest.mark.parametrize("plans_expired", [False, True],
                         ids=["plans fresh", "its prepared plans due to be dropped"])
def test_execute_run__connection_dropped_since_the_last_task__runs_on_a_new_one(
        health_checks, monkeypatch, function, plans_expired):
    run = run_create("t-ok", {"dispatchKey": "k:dropped"})
    if plans_expired:  # a named delivery's first statement is then hot_cursor's DEALLOCATE ALL
        assert execute_run(run_create("t-ok", {"dispatchKey": "k:before"}).pk, function)
        monkeypatch.setattr("ledger.db.PLAN_LIFETIME_SECONDS", 0.0)
        health_checks.clear()
    connection.ensure_connection()
    dropped = connection.connection.info.backend_pid
    with psycopg.connect(**connection.get_connection_params(), autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [dropped])
        deadline = time.monotonic() + 10
        while other.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s",
                            [dropped]).fetchone()[0]:
            assert time.monotonic() < deadline, "the backend did not go away"
            time.sleep(0.01)
    close_old_connections()
    assert execute_run(run.pk, function)["status"] == RunStatus.SUCCEEDED
    assert connection.connection.info.backend_pid != dropped
    assert len(health_checks) == 1  # asked once the statement failed: the connection was gone
    assert FunctionAttempt.objects.filter(run_id=run.pk).count() == 1
