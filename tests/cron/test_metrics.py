"""/metrics: the token, the state gauges, and the event metrics summed over two gunicorn
workers and a real cluster (multiprocess mode), matching the ledger after a known sequence."""

import os
from collections import Counter
from datetime import timedelta

import httpx
import pytest
from django.db.models import Sum
from django.test import Client, override_settings
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from cron.models import DispatchWindow
from ledger.models import FunctionAttempt, FunctionRun, RunStatus
from tests.cluster import poll, qcluster
from tests.conftest import CRON_SECRET
from tests.ledger.helpers import run_send
from tests.ledger.jobs_for_tests import register_test_jobs
from tests.webhooks.helpers import TOKEN, body_of, fixture_payload
from tests.webserver import gunicorn
from webhooks.models import WebhookEvent

register_test_jobs()


def samples(text: str) -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted labels): value} of a scrape."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(scraped: dict, name: str, **labels) -> float:
    return scraped.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.mark.django_db
@override_settings(METRICS_TOKEN="s3cret-metrics")
def test_metrics__token_required_when_set():
    """With METRICS_TOKEN: no header or a wrong token is 401; the right Bearer token is 200."""
    client = Client()
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Token s3cret-metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-métrics").status_code == 401
    response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")


@pytest.mark.django_db
def test_metrics__open_without_token_and_state_gauges_read_the_database():
    """No METRICS_TOKEN: open to an anonymous scraper. The state gauges count the database's
    rows: queued and running runs per function, events by status, the oldest due age, the last
    success per cron, and no cluster."""
    now = timezone.now()
    common = dict(source="command", queued_at=now - timedelta(minutes=1))
    FunctionRun.objects.create(function="t-ok", status=RunStatus.QUEUED, **common)
    FunctionRun.objects.create(function="t-ok", status=RunStatus.QUEUED, **common)
    FunctionRun.objects.create(function="t-slow", status=RunStatus.RUNNING, attempt=1,
                               started_at=now, lease_expires_at=now + timedelta(minutes=1),
                               **common)
    finished = now - timedelta(seconds=30)
    FunctionRun.objects.create(function="background-maintenance", cron="background-jobs",
                               status=RunStatus.SUCCEEDED, finished_at=finished, **common)
    WebhookEvent.objects.create(event_type="EMAIL_OPENED", dedupe_key="a", raw_body=b"{}",
                                status="pending", next_attempt_at=now - timedelta(seconds=90),
                                received_at=now)
    WebhookEvent.objects.create(event_type="EMAIL_OPENED", dedupe_key="b", raw_body=b"{}",
                                status="failed", received_at=now)
    response = Client().get("/metrics")
    assert response.status_code == 200
    scraped = samples(response.content.decode())
    assert value(scraped, "dispatch_runs_queued", function="t-ok") == 2
    assert value(scraped, "dispatch_runs_in_progress", function="t-slow") == 1
    assert value(scraped, "dispatch_runs_in_progress", function="t-ok") == 0
    assert value(scraped, "dispatch_webhook_events", status="pending") == 1
    assert value(scraped, "dispatch_webhook_events", status="failed") == 1
    assert 85 <= value(scraped, "dispatch_webhook_oldest_due_age_seconds") <= 120
    assert value(scraped, "dispatch_cron_last_success_timestamp_seconds",
                 cron="background-jobs") == pytest.approx(finished.timestamp())
    assert value(scraped, "dispatch_cron_window_seconds", cron="background-jobs") == 60
    assert value(scraped, "dispatch_cron_next_window_timestamp_seconds",
                 cron="background-jobs") > now.timestamp()
    assert value(scraped, "dispatch_cluster_up") == 0
    assert value(scraped, "dispatch_state_collected") == 1


def scrape(url: str) -> dict:
    response = httpx.get(url + "/metrics", timeout=10)
    assert response.status_code == 200, response.text
    return samples(response.text)


def ledger_expectations() -> dict:
    """What the event metrics must say, computed from the ledger and the webhook table."""
    finished = Counter((run.function, run.status, run.reason)
                       for run in FunctionRun.objects.filter(started_at__isnull=False)
                       if run.is_terminal)
    attempts = Counter(FunctionAttempt.objects.values_list("run__function", flat=True))
    processed = WebhookEvent.objects.values("event_type").annotate(n=Sum("attempts"))
    return {"finished": finished, "attempts": attempts,
            "processed": {row["event_type"]: row["n"] for row in processed}}


def matches_ledger(scraped: dict, expected: dict) -> bool:
    for (function, status, reason), count in expected["finished"].items():
        if value(scraped, "dispatch_runs_finished_total", function=function, status=status,
                 reason=reason) != count:
            return False
    for function, count in expected["attempts"].items():
        if value(scraped, "dispatch_run_queue_wait_seconds_count", function=function) != count:
            return False
    for event_type, count in expected["processed"].items():
        if value(scraped, "dispatch_webhook_processing_seconds_count",
                 event_type=event_type) != count:
            return False
    return True


@pytest.mark.cluster
@pytest.mark.django_db(transaction=True)
def test_metrics__match_the_ledger_with_two_gunicorn_workers_and_a_cluster(tmp_path):
    """A known sequence (a dispatch, its duplicate, runs that succeed and fail, webhooks
    accepted, duplicated and refused) on gunicorn with two workers and a real cluster sharing
    one PROMETHEUS_MULTIPROC_DIR: scraped over HTTP, the counters equal the ledger's counts."""
    env = {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prom")}
    with gunicorn(workers=2, env=env) as server, qcluster(workers=2, env=env) as cluster:
        http = httpx.Client(base_url=server.url, timeout=10)
        cron_headers = {"Authorization": f"Bearer {CRON_SECRET}"}
        first = http.get("/api/cron/background-jobs", headers=cron_headers)
        assert first.status_code == 202, first.text
        assert http.get("/api/cron/background-jobs", headers=cron_headers).status_code == 200
        for _ in range(2):  # the second delivery is a duplicate
            response = http.post("/api/webhooks/email", content=body_of(
                fixture_payload("email_opened__basic")), headers={"X-Webhook-Token": TOKEN})
            assert response.status_code in (200, 202), response.text
        assert http.post("/api/webhooks/email", content=b"{}",
                         headers={"X-Webhook-Token": "wrong"}).status_code == 401
        assert http.post("/api/webhooks/email", content=b"not json",
                         headers={"X-Webhook-Token": TOKEN}).status_code == 400
        run_send("t-ok")
        run_send("t-non-retryable", {"counter": str(tmp_path / "calls")})

        def settled():
            active = FunctionRun.objects.filter(status__in=[RunStatus.QUEUED, RunStatus.RUNNING])
            pending = WebhookEvent.objects.filter(status__in=["pending", "processing"])
            return FunctionRun.objects.count() >= 4 and not active.exists() and not pending.exists()

        poll(settled, timeout=60, what="every run and event finished", clusters=[cluster])
        expected = ledger_expectations()

        def scrape_matching():
            scraped = scrape(server.url)
            return scraped if matches_ledger(scraped, expected) else None

        scraped = poll(scrape_matching, timeout=30, what="the scrape to match the ledger",
                       clusters=[cluster])
        http.close()
        files = os.listdir(env["PROMETHEUS_MULTIPROC_DIR"])
    key = first.json()["dispatch"]["dispatchKey"]
    assert DispatchWindow.objects.filter(dispatch_key=key).count() == 1
    assert value(scraped, "dispatch_triggers_total", cron="background-jobs",
                 outcome="dispatch-only") == 1
    assert value(scraped, "dispatch_triggers_total", cron="background-jobs",
                 outcome="dispatch-duplicate-suppressed") == 1
    assert expected["finished"][("t-non-retryable", "failed", "error")] == 1
    assert expected["finished"][("background-maintenance", "succeeded", "")] == 1
    assert value(scraped, "dispatch_run_duration_seconds_count", function="t-ok") == 1
    event = WebhookEvent.objects.get()
    assert event.status == "succeeded"
    received = {outcome: value(scraped, "dispatch_webhooks_received_total",
                               event_type=event_type, outcome=outcome)
                for event_type, outcome in [("EMAIL_OPENED", "queued"),
                                            ("EMAIL_OPENED", "inline"),
                                            ("EMAIL_OPENED", "duplicate"),
                                            ("other", "unauthorized"),
                                            ("other", "bad-request")]}
    assert received["queued"] + received["inline"] == 1
    assert received["duplicate"] == 1 and received["unauthorized"] == 1
    assert received["bad-request"] == 1
    assert value(scraped, "dispatch_webhook_events", status="pending") == 0
    assert value(scraped, "dispatch_runs_in_progress", function="t-ok") == 0
    assert value(scraped, "dispatch_cluster_up") == 1
    assert any(name.startswith("counter_") for name in files)
