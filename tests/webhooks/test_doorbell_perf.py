"""The hot paths stay cheap: a rung doorbell is only read, the doorbell's drain claims small
batches, and one drain's lookup cache never outlives a rollback."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from webhooks import doorbell, processing
from webhooks.doorbell import doorbell_forget, doorbell_ring
from webhooks.models import DrainDoorbell, EventStatus, WebhookEvent
from webhooks.processing import webhook_events_drain
from webhooks.services import webhook_event_ingest
from webhooks.tasks import drain_on_doorbell

T0 = datetime(2026, 2, 17, 19, 31, tzinfo=UTC)


def ingest(count: int, *, first: int = 0) -> list[int]:
    ids = []
    for number in range(first, first + count):
        body = json.dumps({"event": {"type": "TEST_EVENT"}, "n": number}).encode()
        ids.append(webhook_event_ingest(body=body, headers={"webhook-id": f"p-{number}"},
                                        now=T0).event_id)
    return ids


def writes(queries) -> list[str]:
    return [q["sql"] for q in queries
            if q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))]


@pytest.mark.django_db
def test_doorbell__already_rung_only_reads():
    """A pending, fresh flag: ringing again is one SELECT and no write (no row lock, no WAL)."""
    assert doorbell_ring(now=T0) is True
    doorbell_forget()  # another process, or this one after the recall time
    with CaptureQueriesContext(connection) as queries:
        assert doorbell_ring(now=T0 + timedelta(seconds=5)) is False
    assert writes(queries.captured_queries) == []
    assert len(queries.captured_queries) == 1
    assert DrainDoorbell.objects.get().rung_at == T0


@pytest.mark.django_db
def test_doorbell__clear_or_stale_flag_is_written_and_rings():
    """A cleared flag, and one set more than 120 s ago, are set again and enqueue a drain."""
    assert doorbell_ring(now=T0) is True
    DrainDoorbell.objects.update(pending=False)  # a drain elsewhere, longer than the recall ago
    doorbell_forget()
    with CaptureQueriesContext(connection) as queries:
        assert doorbell_ring(now=T0 + timedelta(seconds=1)) is True
    assert writes(queries.captured_queries)
    assert doorbell_ring(now=T0 + timedelta(seconds=120)) is False
    assert doorbell_ring(now=T0 + timedelta(seconds=122)) is True
    assert DrainDoorbell.objects.get().rung_at == T0 + timedelta(seconds=122)


@pytest.mark.django_db
@override_settings(WEBHOOK_DOORBELL_BATCH_SIZE=2)
def test_drain_on_doorbell__claims_small_batches_until_empty(test_handler, monkeypatch):
    """The doorbell's drain claims WEBHOOK_DOORBELL_BATCH_SIZE at a time until none are due."""
    test_handler(lambda *, event: None)
    ingest(5)
    limits = []
    claim = processing.webhook_events_claim

    def spy(**kwargs):
        limits.append(kwargs["limit"])
        return claim(**kwargs)

    monkeypatch.setattr(processing, "webhook_events_claim", spy)
    assert drain_on_doorbell()["succeeded"] == 5
    assert limits == [2, 2, 2, 2, 2]  # 2, 2, 1, none; none again after the doorbell's recall


@pytest.mark.django_db
def test_drain__cache_is_shared_and_emptied_when_an_event_rolls_back(test_handler):
    """Handlers of one drain share EventContext.cache; a failed event empties it, so nothing
    written in a rolled-back transaction is reused."""
    seen = []

    def handler(*, event):
        seen.append(dict(event.cache))
        event.cache[event.event_id] = True
        if event.payload["n"] == 1:
            raise RuntimeError("transient")

    test_handler(handler)
    first, second, third = ingest(3)
    webhook_events_drain(budget_seconds=10, batch_size=10)
    assert seen == [{}, {first: True}, {}]
    assert WebhookEvent.objects.get(pk=second).status == EventStatus.PENDING
    assert WebhookEvent.objects.get(pk=third).status == EventStatus.SUCCEEDED


@pytest.mark.django_db
def test_doorbell__a_waiting_drain_is_remembered_for_the_recall_time(monkeypatch):
    """Within RECALL_SECONDS of seeing a drain waiting, a ring costs no query at all; after it,
    or once the flag would be stale, the process asks the database again."""
    clock = [1000.0]
    monkeypatch.setattr(doorbell.time, "monotonic", lambda: clock[0])
    assert doorbell_ring(now=T0) is True
    with CaptureQueriesContext(connection) as queries:
        assert doorbell_ring(now=T0 + timedelta(seconds=1)) is False
    assert queries.captured_queries == []
    clock[0] += doorbell.RECALL_SECONDS
    with CaptureQueriesContext(connection) as queries:
        assert doorbell_ring(now=T0 + timedelta(seconds=2)) is False
    assert len(queries.captured_queries) == 1
    with CaptureQueriesContext(connection) as queries:
        assert doorbell_ring(now=T0 + timedelta(seconds=121)) is True  # stale: memory ignored
    assert queries.captured_queries


@pytest.mark.django_db
def test_drain_on_doorbell__claims_again_after_the_recall_for_events_that_did_not_ring(
        test_handler, monkeypatch):
    """An event stored while a web process still remembers the drain as waiting does not ring;
    the drain that cleared the flag claims once more after the recall time and processes it."""
    seen = []
    test_handler(lambda *, event: seen.append(event.payload["n"]))
    waits = []
    real_sleep = processing.time.sleep

    def sleep(seconds):  # the delivery lands while the drain lingers
        waits.append(seconds)
        if len(waits) == 1:
            ingest(1, first=77)
        real_sleep(seconds)

    monkeypatch.setattr(processing.time, "sleep", sleep)
    counts = drain_on_doorbell()
    assert waits and 0 <= waits[0] <= doorbell.RECALL_SECONDS
    assert (counts["succeeded"], seen) == (1, [77])
