"""End to end with a real qcluster: an EMAIL_SENT posted over HTTP is processed within seconds,
with no cron tick (the doorbell enqueues the drain)."""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.db import connection

from jobs.models import Client, Message
from tests.conftest import on_redis
from tests.webhooks.helpers import TOKEN, URL, fixture_body
from webhooks.models import EventStatus, WebhookEvent

PROJECT = Path(__file__).resolve().parents[2]


def subprocess_database_url() -> str:
    """DATABASE_URL for a subprocess that must open the test database."""
    settings = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{settings['NAME']}"
    user = settings.get("USER") or ""
    password = f":{settings['PASSWORD']}" if settings.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    host = settings.get("HOST") or "127.0.0.1"
    port = settings.get("PORT") or 5432
    return f"postgres://{auth}{host}:{port}/{settings['NAME']}"


@contextmanager
def running_qcluster():
    """``manage.py qcluster`` on the test database; stopped with SIGTERM to its pid."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "dispatch_project.test_settings",
           "DATABASE_URL": subprocess_database_url(), "Q_WORKERS": "1"}
    process = subprocess.Popen([sys.executable, "manage.py", "qcluster"], cwd=PROJECT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_for(predicate, *, seconds: float, every: float = 0.1):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    return predicate()


@pytest.mark.cluster
@pytest.mark.skipif(on_redis(), reason="the subprocess shares the test database as the ORM "
                    "broker; with REDIS_URL the queue name would have to be isolated too")
@pytest.mark.django_db(transaction=True)
def test_cluster__email_sent_over_http_is_processed_without_a_cron_tick(live_server):
    """POST EMAIL_SENT to the live server with a qcluster running: succeeded within seconds."""
    Client.objects.create(name="Acme", emailbison_workspace_id="42")
    with running_qcluster() as cluster:
        request = urllib.request.Request(
            f"{live_server.url}{URL}", data=fixture_body("email_sent__basic"), method="POST",
            headers={"X-Webhook-Token": TOKEN, "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 202
            event_id = json.loads(response.read())["eventId"]

        def processed():
            return WebhookEvent.objects.filter(pk=event_id,
                                               status=EventStatus.SUCCEEDED).exists()

        done = wait_for(processed, seconds=20)
        if not done:
            cluster.send_signal(signal.SIGTERM)
            output = cluster.communicate(timeout=20)[0].decode(errors="replace")
            pytest.fail(f"not processed in 20 s; qcluster said:\n{output[-3000:]}")
    assert Message.objects.filter(inboxxia_scheduled_email_id="9001").count() == 1
