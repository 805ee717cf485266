"""response-timing and followups over the real route: flag off (inline) and on (dispatch)."""

import threading
from datetime import timedelta

import pytest
from django.db import connection, connections
from django.test import Client as HttpClient
from django.test import override_settings
from django.utils import timezone

from cron import keys
from jobs import followups
from jobs.locks import advisory_key
from jobs.models import (
    Client,
    CronLease,
    FollowUpInstance,
    FollowUpSequence,
    FollowUpStep,
    FollowUpTask,
    Lead,
    Message,
    ResponseTimingEvent,
)
from ledger.models import FunctionRun, RunReason, RunStatus
from ledger.runner import execute_run
from tests.conftest import CRON_SECRET, on_postgres

CRONS = {
    "response-timing": ("CRON_RESPONSE_TIMING_USE_QUEUE", "cron-response-timing", 300,
                        ["inserted", "updatedSetter", "updatedAi", "durationMs", "exhausted",
                         "scanFromIso", "scanToIso"]),
    "followups": ("CRON_FOLLOWUPS_USE_QUEUE", "cron-followups", 60,
                  ["completedBooked", "resumed", "paused", "tasksCreated", "advanced",
                   "completed", "errors", "exhausted", "durationMs"]),
}


@pytest.fixture
def outreach(db):
    """A lead whose reply a setter answered, enrolled in a one-step sequence that is due."""
    now = timezone.now()
    client = Client.objects.create(name="Acme")
    lead = Lead.objects.create(client=client, email="ada@example.com", first_name="Ada",
                               last_outbound_at=now - timedelta(minutes=50))
    Message.objects.create(lead=lead, direction="inbound", source="lead",
                           sent_at=now - timedelta(hours=1))
    Message.objects.create(lead=lead, direction="outbound", source="setter",
                           sent_at=now - timedelta(minutes=50))
    sequence = FollowUpSequence.objects.create(client=client, name="Nudges")
    FollowUpStep.objects.create(sequence=sequence, order=0, delay_hours=0, body_template="Hi")
    FollowUpInstance.objects.create(lead=lead, sequence=sequence,
                                    next_step_due_at=now - timedelta(minutes=1))
    return lead


def did_the_work(cron: str) -> bool:
    if cron == "response-timing":
        return ResponseTimingEvent.objects.filter(responder="setter").count() == 1
    return FollowUpTask.objects.filter(body="Hi").count() == 1


@pytest.mark.parametrize("cron", CRONS)
def test_route__flag_off_runs_inline_with_the_result_keys_at_top_level(cron, cron_client,
                                                                       outreach):
    """Flag off (the default): 200 inline, the cron's own result keys at top level, the work
    done, the run in the ledger with the dispatch payload."""
    flag, function, window, result_keys = CRONS[cron]
    with override_settings(**{flag: False}):
        response = cron_client.get(f"/api/cron/{cron}")
    assert response.status_code == 200
    body = response.json()
    assert body["mode"] == "inline" and body["enqueued"] is False and body["success"] is True
    assert set(result_keys) <= set(body)
    assert body["inserted" if cron == "response-timing" else "tasksCreated"] == 1
    assert body["dispatch"]["dispatchWindowSeconds"] == window
    assert body["dispatch"]["params"] == {}
    run = FunctionRun.objects.get()
    assert (run.function, run.status, run.inline) == (function, RunStatus.SUCCEEDED, True)
    assert run.payload == body["dispatch"]
    assert sorted(run.result) == sorted(result_keys)  # jsonb keeps no key order
    assert did_the_work(cron)


@pytest.mark.parametrize("cron", CRONS)
def test_route__flag_on_dispatches_and_the_run_does_the_work(cron, cron_client, outreach):
    """Flag on: 202 dispatch-only with the task id of the cron's function; nothing done in the
    request; the queued run, executed, receives the payload and does the work."""
    flag, function, window, result_keys = CRONS[cron]
    with override_settings(**{flag: True}):
        response = cron_client.post(f"/api/cron/{cron}")
    assert response.status_code == 202
    body = response.json()
    key = body["dispatch"]["dispatchKey"]
    assert key.startswith(f"{cron}:v1:{window}:")
    assert body["mode"] == "dispatch-only"
    assert body["taskIds"] == [keys.task_id(function, key)]
    assert not did_the_work(cron)
    run = FunctionRun.objects.get()
    assert (run.function, run.status, run.task_id) == (function, RunStatus.QUEUED,
                                                       body["taskIds"][0])
    assert run.payload == body["dispatch"] and run.payload["params"] == {}
    run = execute_run(run.pk)
    assert run.status == RunStatus.SUCCEEDED and sorted(run.result) == sorted(result_keys)
    assert did_the_work(cron)


@pytest.mark.parametrize("cron", CRONS)
def test_route__takes_no_params(cron, cron_client, db):
    """Neither cron accepts params: any is a 400 naming none."""
    response = cron_client.get(f"/api/cron/{cron}?dryRun=true")
    assert response.status_code == 400
    assert "accepts: none" in response.json()["error"]


def hold_followups_lock():
    """Hold the followups lock as another process would; returns the release."""
    if on_postgres():
        other = connections.create_connection("default")
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", [advisory_key("followups")])

        def release():  # at once: a closed session's locks go a moment after the close
            with other.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [advisory_key("followups")])
            other.close()

        return release
    CronLease.objects.create(name="followups", holder="another process",
                             expires_at=timezone.now() + timedelta(minutes=5))
    return CronLease.objects.all().delete


@pytest.mark.django_db(transaction=True)
def test_route__followups_while_another_holds_its_lock_answers_skipped_locked(cron_client,
                                                                             outreach):
    """An inline followups run that finds the lock held (another process is mid-run) answers
    200 skipped/locked and changes nothing."""
    release = hold_followups_lock()
    try:
        response = cron_client.get("/api/cron/followups")
    finally:
        release()
    assert response.status_code == 200
    body = response.json()
    assert body["mode"] == "inline" and body["skipped"] is True and body["reason"] == "locked"
    assert "tasksCreated" not in body
    assert not FollowUpTask.objects.exists()
    run = FunctionRun.objects.get()
    assert (run.status, run.reason) == (RunStatus.SKIPPED, RunReason.LOCKED)


@pytest.mark.django_db(transaction=True)
def test_route__two_inline_followups_at_once_one_is_skipped_locked(outreach, monkeypatch):
    """Two inline followups requests at once: the second answers skipped/locked and the ledger
    records it skipped; the first does the work."""
    started, release = threading.Event(), threading.Event()
    real_advance = followups.followups_advance

    def slow_advance(**kwargs):
        started.set()
        assert release.wait(20)
        return real_advance(**kwargs)

    monkeypatch.setattr(followups, "followups_advance", slow_advance)
    responses = {}

    def first_call():
        try:
            responses["first"] = HttpClient(HTTP_AUTHORIZATION=f"Bearer {CRON_SECRET}").get(
                "/api/cron/followups")
        finally:
            connection.close()

    thread = threading.Thread(target=first_call)
    thread.start()
    try:
        assert started.wait(20)
        second = HttpClient(HTTP_AUTHORIZATION=f"Bearer {CRON_SECRET}").get("/api/cron/followups")
    finally:
        release.set()
        thread.join(30)
    assert second.status_code == 200
    assert second.json()["skipped"] is True and second.json()["reason"] == "locked"
    assert responses["first"].json()["tasksCreated"] == 1
    statuses = sorted(FunctionRun.objects.values_list("status", "reason"))
    assert statuses == [("skipped", "locked"), ("succeeded", "")]
    assert FollowUpTask.objects.count() == 1
