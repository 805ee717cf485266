"""The drain: claims, fenced finishes, retries with backoff, rescue of stale leases, counts."""

import itertools
import json
import random
from datetime import UTC, datetime, timedelta

import pytest
from django.test import override_settings

from jobs.functions import process_background_jobs
from jobs.models import Client
from ledger.maintenance import maintenance_run
from webhooks.claims import backoff_seconds, webhook_event_succeed, webhook_events_claim
from webhooks.doorbell import doorbell_ring
from webhooks.exceptions import TerminalEventError
from webhooks.models import DrainDoorbell, EventStatus, WebhookEvent
from webhooks.processing import Result, webhook_event_process, webhook_events_drain
from webhooks.services import webhook_event_ingest, webhook_events_prune, webhook_events_requeue
from webhooks.tasks import drain_on_doorbell

T0 = datetime(2026, 2, 17, 19, 31, tzinfo=UTC)
KEYS = itertools.count()


def ingest(n: int = 1, *, now=T0, event_type="TEST_EVENT") -> list[int]:
    """Store ``n`` new events of ``event_type`` (each with its own webhook-id)."""
    ids = []
    for _ in range(n):
        key = f"w-{next(KEYS)}"
        body = json.dumps({"event": {"type": event_type}, "key": key}).encode()
        outcome = webhook_event_ingest(body=body, headers={"webhook-id": key}, now=now)
        assert not outcome.duplicate
        ids.append(outcome.event_id)
    return ids


def at(seconds: float):
    return lambda: T0 + timedelta(seconds=seconds)


def event(pk: int) -> WebhookEvent:
    return WebhookEvent.objects.get(pk=pk)


@pytest.mark.django_db
def test_claim__takes_due_events_oldest_first_and_counts_an_attempt(test_handler):
    """A claim marks processing with a token and lease and counts the attempt."""
    test_handler(lambda *, event: None)
    late = ingest(1, now=T0 + timedelta(seconds=5))[0]
    early = ingest(1, now=T0)[0]
    claimed = webhook_events_claim(now=T0 + timedelta(seconds=1), limit=10, worker="w1",
                                   lease_seconds=30)
    assert [c.id for c in claimed] == [early]
    stored = event(early)
    assert stored.status == EventStatus.PROCESSING and stored.attempts == 1
    assert stored.claim_token == claimed[0].claim_token and stored.claimed_by == "w1"
    assert stored.lease_expires_at == T0 + timedelta(seconds=31)
    assert event(late).status == EventStatus.PENDING


@pytest.mark.django_db
def test_claim__a_claimed_event_is_not_claimed_again(test_handler):
    """Two claims never return the same event."""
    test_handler(lambda *, event: None)
    ingest(5)
    first = webhook_events_claim(now=T0, limit=3, worker="a")
    second = webhook_events_claim(now=T0, limit=10, worker="b")
    assert len(first) == 3 and len(second) == 2
    assert not {c.id for c in first} & {c.id for c in second}
    assert webhook_events_claim(now=T0, limit=10, worker="c") == []


@pytest.mark.django_db
def test_claim__raw_body_comes_back_byte_for_byte(test_handler):
    """The claimed raw body is the stored bytes."""
    test_handler(lambda *, event: None)
    body = b'{"event": {"type": "TEST_EVENT"}, "t": "\\u0000 \\ud800 \xc3\xa9"}'
    webhook_event_ingest(body=body, headers={}, now=T0)
    assert webhook_events_claim(now=T0, limit=1, worker="w")[0].raw_body == body


@pytest.mark.django_db
def test_finish__lost_claim_rolls_the_handler_back(test_handler):
    """A drainer whose lease was taken back cannot finish, and its writes are rolled back."""
    test_handler(lambda *, event: Client.objects.create(name=f"made by {event.event_id}"))
    [pk] = ingest(1)
    stale = webhook_events_claim(now=T0, limit=1, worker="slow", lease_seconds=1)[0]
    WebhookEvent.objects.filter(pk=pk).update(lease_expires_at=T0)
    webhook_events_drain(budget_seconds=0, clock=at(2))  # rescue only (no time to claim)
    fresh = webhook_events_claim(now=T0 + timedelta(seconds=2), limit=1, worker="fast")[0]
    assert webhook_event_process(event=stale, clock=at(3)) == Result.SKIPPED
    assert not Client.objects.exists()
    assert webhook_event_succeed(event=stale, result=None, now=T0) is False
    assert webhook_event_process(event=fresh, clock=at(3)) == Result.SUCCEEDED
    assert Client.objects.count() == 1
    assert event(pk).attempts == 2


def test_backoff__doubles_with_jitter_and_caps_at_fifteen_minutes():
    """2^attempt s plus up to 25 % jitter, never above 900 s."""
    rng = random.Random(7)
    for attempt in range(1, 9):
        delay = backoff_seconds(attempt, rng=rng)
        assert 2 ** attempt <= delay <= min(900, 2 ** attempt * 1.25)
    assert backoff_seconds(10, rng=rng) == 900
    assert backoff_seconds(40, rng=rng) == 900


@pytest.mark.django_db
def test_drain__transient_error_retries_after_backoff(test_handler):
    """A failing handler leaves the event pending, not due before its backoff, then it succeeds."""
    calls = []

    def flaky(*, event):
        calls.append(event.attempt)
        if len(calls) == 1:
            raise ConnectionError("provider timed out")
        return {"ok": True}

    test_handler(flaky)
    [pk] = ingest(1)
    assert webhook_events_drain(clock=at(0))["retried"] == 1
    waiting = event(pk)
    assert waiting.status == EventStatus.PENDING
    assert "ConnectionError: provider timed out" in waiting.last_error
    assert T0 + timedelta(seconds=2) <= waiting.next_attempt_at <= T0 + timedelta(seconds=2.5)
    assert webhook_events_drain(clock=at(1.9))["processed"] == 0
    counts = webhook_events_drain(clock=at(3))
    assert counts["succeeded"] == 1 and calls == [1, 2]
    done = event(pk)
    assert done.status == EventStatus.SUCCEEDED and done.result == {"ok": True}
    assert done.processed_at == T0 + timedelta(seconds=3) and done.last_error == ""


@pytest.mark.django_db
def test_drain__terminal_error_fails_at_once(test_handler):
    """TerminalEventError: failed after one attempt, kept with its error."""
    def broken(*, event):
        raise TerminalEventError("data.lead.email missing")

    test_handler(broken)
    [pk] = ingest(1)
    assert webhook_events_drain(clock=at(0))["failed"] == 1
    failed = event(pk)
    assert failed.status == EventStatus.FAILED and failed.attempts == 1
    assert "data.lead.email missing" in failed.last_error and "[terminal]" in failed.last_error


@pytest.mark.django_db
def test_drain__always_failing_event_fails_after_eight_attempts(test_handler):
    """Retried with backoff until max_attempts (8), then failed with the last error kept."""
    def always(*, event):
        raise RuntimeError(f"boom on attempt {event.attempt}")

    test_handler(always)
    [pk] = ingest(1)
    clock = 0.0
    for _ in range(20):
        webhook_events_drain(clock=at(clock))
        current = event(pk)
        if current.status != EventStatus.PENDING:
            break
        clock = (current.next_attempt_at - T0).total_seconds()
    assert current.status == EventStatus.FAILED
    assert current.attempts == 8
    assert "boom on attempt 8" in current.last_error
    assert WebhookEvent.objects.filter(pk=pk).exists()  # nothing is deleted by failure


@pytest.mark.django_db
def test_drain__killed_drainer_events_are_rescued_after_the_lease(test_handler):
    """A drainer claims a batch and dies: after the lease the events are taken back and finish,
    the lost attempt counted."""
    seen = []
    test_handler(lambda *, event: seen.append(event.event_id))
    ids = ingest(4)
    dead = webhook_events_claim(now=T0, limit=3, worker="killed", lease_seconds=60)
    assert len(dead) == 3
    before_lease = webhook_events_drain(clock=at(30))
    assert before_lease["succeeded"] == 1  # only the unclaimed one
    after_lease = webhook_events_drain(clock=at(61))
    assert after_lease["succeeded"] == 3
    assert sorted(seen) == sorted(ids)
    for claimed in dead:
        rescued = event(claimed.id)
        assert rescued.status == EventStatus.SUCCEEDED and rescued.attempts == 2


@pytest.mark.django_db
def test_rescue__stale_lease_on_the_last_attempt_fails(test_handler):
    """A lease that expires on the eighth attempt ends failed, not pending."""
    test_handler(lambda *, event: None)
    [pk] = ingest(1)
    WebhookEvent.objects.filter(pk=pk).update(attempts=7)
    webhook_events_claim(now=T0, limit=1, worker="killed", lease_seconds=10)
    result = maintenance_run(now=T0 + timedelta(seconds=11))
    assert result["webhookLeases"] == {"rescued": 0, "failed": 1}
    failed = event(pk)
    assert failed.status == EventStatus.FAILED and "lease expired" in failed.last_error


@pytest.mark.django_db
def test_drain__unregistered_type_fails_terminally(test_handler):
    """An event whose handler went away fails at once with a message saying what to do."""
    from webhooks.registry import unregister_handler

    test_handler(lambda *, event: None)
    [pk] = ingest(1)
    unregister_handler("TEST_EVENT")
    webhook_events_drain(clock=at(0))
    assert "no handler is registered" in event(pk).last_error


@pytest.mark.django_db
def test_drain__budget_zero_processes_nothing_and_reports_remaining(test_handler):
    """With no time budget nothing is claimed; remaining counts the due events."""
    test_handler(lambda *, event: None)
    ingest(3)
    assert webhook_events_drain(budget_seconds=0, clock=at(0)) == {
        "processed": 0, "succeeded": 0, "retried": 0, "failed": 0, "skipped": 0,
        "remaining": 3}


@pytest.mark.django_db
def test_process_background_jobs__drains_and_reports_the_contract_counts(test_handler):
    """The cron's job function drains the queue and returns processed..remaining."""
    test_handler(lambda *, event: None)
    ingest(3)
    result = process_background_jobs({})
    assert {k: result[k] for k in ("processed", "succeeded", "failed", "retried", "skipped",
                                   "remaining")} == {
        "processed": 3, "succeeded": 3, "failed": 0, "retried": 0, "skipped": 0,
        "remaining": 0}
    assert result["durationMs"] >= 0


@pytest.mark.django_db
def test_drain_on_doorbell__clears_the_flag_and_drains(test_handler):
    """The doorbell task clears the flag before draining, so the next event rings again."""
    test_handler(lambda *, event: None)
    ingest(2)
    assert doorbell_ring(now=T0) is True
    assert doorbell_ring(now=T0) is False
    assert drain_on_doorbell()["succeeded"] == 2
    assert DrainDoorbell.objects.get().pending is False
    assert doorbell_ring(now=T0) is True


@pytest.mark.django_db
def test_doorbell__stale_flag_is_rung_through():
    """A flag left set past the stale threshold (a task lost by Redis) rings again."""
    assert doorbell_ring(now=T0) is True
    assert doorbell_ring(now=T0 + timedelta(seconds=60)) is False
    assert doorbell_ring(now=T0 + timedelta(seconds=121)) is True


@pytest.mark.django_db
def test_maintenance__reports_queue_health(test_handler):
    """The health step reports the oldest due event and its age."""
    test_handler(lambda *, event: None)
    ingest(2, now=T0)
    health = maintenance_run(now=T0 + timedelta(seconds=90))["webhookHealth"]
    assert health["due"] == 2
    assert health["oldestDueAgeSeconds"] == 90.0
    assert health["oldestDueAt"] == T0.isoformat()


@pytest.mark.django_db
@override_settings(WEBHOOK_EVENT_RETENTION_DAYS=30)
def test_prune__deletes_finished_events_past_retention_only(test_handler):
    """Succeeded and ignored events past retention go; failed and recent ones stay."""
    test_handler(lambda *, event: None)
    old_ok, old_failed, recent = ingest(3)
    ignored = ingest(1, event_type="NOBODY_HANDLES")[0]
    old = T0 - timedelta(days=31)
    WebhookEvent.objects.filter(pk__in=[old_ok, ignored]).update(
        status=EventStatus.SUCCEEDED, processed_at=old)
    WebhookEvent.objects.filter(pk=ignored).update(status=EventStatus.IGNORED)
    WebhookEvent.objects.filter(pk=old_failed).update(status=EventStatus.FAILED, processed_at=old)
    WebhookEvent.objects.filter(pk=recent).update(status=EventStatus.SUCCEEDED,
                                                  processed_at=T0 - timedelta(days=1))
    assert webhook_events_prune(now=T0) == 2
    assert set(WebhookEvent.objects.values_list("pk", flat=True)) == {old_failed, recent}
    assert maintenance_run(now=T0)["webhooksPruned"] == {"deleted": 0}


@pytest.mark.django_db
def test_requeue__failed_events_go_back_with_attempts_reset(test_handler):
    """Requeue: pending, due now, attempts 0, recorded; events not failed are left alone."""
    test_handler(lambda *, event: None)
    failed, done = ingest(2)
    WebhookEvent.objects.filter(pk=failed).update(status=EventStatus.FAILED, attempts=8,
                                                  last_error="boom", processed_at=T0)
    WebhookEvent.objects.filter(pk=done).update(status=EventStatus.SUCCEEDED, attempts=1)
    later = T0 + timedelta(hours=1)
    assert webhook_events_requeue(event_ids=[failed, done], now=later, actor="ops") == 1
    requeued = event(failed)
    assert (requeued.status, requeued.attempts, requeued.next_attempt_at) == (
        EventStatus.PENDING, 0, later)
    assert (requeued.requeue_count, requeued.requeued_by, requeued.processed_at) == (
        1, "ops", None)
    assert event(done).status == EventStatus.SUCCEEDED
    assert webhook_events_drain(clock=lambda: later)["succeeded"] == 1
