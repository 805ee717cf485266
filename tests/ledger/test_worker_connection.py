"""A worker's persistent connection is checked before reuse (``CONN_HEALTH_CHECKS``): a
connection the database dropped since the last task is replaced, not fatal."""

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


def test_execute_run__connection_dropped_since_the_last_task__runs_on_a_new_one(health_checks):
    """The database ended the worker's connection between two tasks (a restart, an idle
    timeout): the next task's health check finds it gone and the task runs on a new one."""
    run = run_create("t-ok", {"dispatchKey": "k:dropped"})
    connection.ensure_connection()
    dropped = connection.connection.info.backend_pid
    with psycopg.connect(**connection.get_connection_params(), autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [dropped])
        deadline = time.monotonic() + 10
        while other.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s",
                            [dropped]).fetchone()[0]:
            assert time.monotonic() < deadline, "the backend did not go away"
            time.sleep(0.01)
    close_old_connections()  # what Django-Q's worker does before every task
    assert execute_run(run.pk)["status"] == RunStatus.SUCCEEDED
    assert connection.connection.info.backend_pid != dropped
    assert len(health_checks) == 1
    assert FunctionAttempt.objects.filter(run_id=run.pk).count() == 1
