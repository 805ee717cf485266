"""The probes (/healthz, /readyz, /healthz/pipeline), ``manage.py health`` and
``manage.py cluster_alive``, against real failures: a closed database, a hung broker, a real
cluster."""

import json
import socket
import time
from datetime import timedelta
from io import StringIO
from unittest import mock

import pytest
from django.core.management import call_command
from django.db import connections
from django.test import Client
from django.utils import timezone
from django_q.conf import Conf

from ledger.models import FunctionRun, RunStatus
from tests.cluster import poll, qcluster
from tests.conftest import on_postgres
from webhooks.models import WebhookEvent


@pytest.fixture
def hung_server():
    """A TCP port that accepts connections and never answers (a hung dependency)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    yield listener.getsockname()[1]
    listener.close()


def get(path: str):
    return Client().get(path)


def test_healthz__ok_without_login_or_database():
    """Liveness answers 200 to an anonymous caller, with no database (this test has no
    database access: any query would raise)."""
    response = get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db(transaction=True)
def test_readyz__ok_names_every_check():
    """Database, migrations and broker all pass on a migrated test database."""
    response = get("/readyz")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "migrations", "broker"}
    assert all(check["ok"] for check in body["checks"].values())


@pytest.mark.django_db(transaction=True)
def test_readyz__hung_broker_is_503_within_a_second(hung_server):
    """A Redis that accepts and never answers: 503 naming the broker, in under a second."""
    with mock.patch.object(Conf, "ORM", None), \
            mock.patch.object(Conf, "REDIS", f"redis://127.0.0.1:{hung_server}/0"):
        started = time.monotonic()
        response = get("/readyz")
        elapsed = time.monotonic() - started
    assert elapsed < 1.0
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "fail"
    assert body["checks"]["broker"]["ok"] is False
    assert str(hung_server) not in json.dumps(body)  # no host or port in the body
    assert body["checks"]["database"]["ok"] is True


@pytest.mark.django_db(transaction=True)
def test_readyz__database_down_is_503_naming_it(hung_server, tmp_path):
    """The database unreachable (PostgreSQL: a server that never answers; SQLite: a file that
    cannot be opened): 503 within a second, the database check failed, no address in the body."""
    settings = connections["default"].settings_dict
    original = dict(settings)
    connections["default"].close()
    if on_postgres():
        settings.update(HOST="127.0.0.1", PORT=str(hung_server))
    else:
        settings.update(NAME=str(tmp_path / "missing" / "db.sqlite3"))
    try:
        started = time.monotonic()
        response = get("/readyz")
        elapsed = time.monotonic() - started
    finally:
        settings.clear()
        settings.update(original)
    assert elapsed < 1.0
    assert response.status_code == 503
    body = response.json()
    assert body["checks"]["database"]["ok"] is False
    assert str(hung_server) not in json.dumps(body) and "missing" not in json.dumps(body)


@pytest.mark.django_db(transaction=True)
def test_pipeline__no_cluster_is_503_naming_the_cluster():
    """No cluster of this name has been seen: 503, the cluster check failed, the others pass."""
    response = get("/healthz/pipeline")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["cluster"]["ok"] is False
    assert checks["runs"]["ok"] is True and checks["webhook_backlog"]["ok"] is True


@pytest.mark.django_db(transaction=True)
def test_pipeline__overdue_run_and_old_backlog_are_named():
    """A run still running past its lease plus grace, and a due event older than the
    threshold, each fail their check."""
    now = timezone.now()
    FunctionRun.objects.create(
        function="t-ok", source="command", status=RunStatus.RUNNING, attempt=1,
        queued_at=now - timedelta(minutes=30), started_at=now - timedelta(minutes=30),
        lease_expires_at=now - timedelta(minutes=5))
    WebhookEvent.objects.create(
        event_type="EMAIL_OPENED", dedupe_key="old", raw_body=b"{}", status="pending",
        next_attempt_at=now - timedelta(minutes=10), received_at=now - timedelta(minutes=10))
    checks = get("/healthz/pipeline").json()["checks"]
    assert checks["runs"]["ok"] is False and "t-ok" in checks["runs"]["detail"]
    assert checks["webhook_backlog"]["ok"] is False


@pytest.mark.cluster
@pytest.mark.django_db(transaction=True)
def test_pipeline__ok_with_a_real_cluster_and_cluster_alive_follows_it():
    """With a running cluster the pipeline answers 200 and ``cluster_alive`` exits 0; once it
    stopped, ``cluster_alive`` exits 1."""
    with qcluster(workers=1) as cluster:
        response = poll(lambda: (r := get("/healthz/pipeline")).status_code == 200 and r,
                        timeout=20, what="the pipeline probe to pass", clusters=[cluster])
        assert response.json()["checks"]["cluster"]["ok"] is True
        out = StringIO()
        call_command("cluster_alive", stdout=out)
        assert socket.gethostname() in out.getvalue()
    with pytest.raises(SystemExit) as exit_info:
        call_command("cluster_alive", stdout=StringIO(), stderr=StringIO())
    assert exit_info.value.code == 1


@pytest.mark.django_db(transaction=True)
def test_health_command__json_and_exit_code():
    """``health --json`` prints both groups; without a cluster it exits 1."""
    out = StringIO()
    with pytest.raises(SystemExit) as exit_info:
        call_command("health", "--json", stdout=out)
    assert exit_info.value.code == 1
    report = json.loads(out.getvalue())
    assert report["status"] == "fail"
    assert report["readiness"]["status"] == "ok"
    assert report["pipeline"]["checks"]["cluster"]["ok"] is False


@pytest.mark.django_db(transaction=True)
def test_readyz__hung_broker_detail_says_redis_did_not_answer(hung_server):
    """The broker check's own socket timeout (no retries) answers before the deadline."""
    with mock.patch.object(Conf, "ORM", None), \
            mock.patch.object(Conf, "REDIS", {"host": "127.0.0.1", "port": hung_server}):
        body = get("/readyz").json()
    assert body["checks"]["broker"] == {"ok": False,
                                        "detail": "Redis did not answer (TimeoutError)"}
