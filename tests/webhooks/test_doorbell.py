"""The doorbell: at most one drain task waits however fast events arrive, a stale flag is rung
through, a stranded queue is woken by the sweeper, and the doorbell's drain claims small
batches for a short budget."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from webhooks import processing
from webhooks.doorbell import doorbell_ring
from webhooks.wake import webhook_events_wake
from webhooks.models import DrainDoorbell
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
    with CaptureQueriesContext(connection) as queries:
        assert doorbell_ring(now=T0 + timedelta(seconds=5)) is False
    assert writes(queries.captured_queries) == []
    assert len(queries.captured_queries) == 1
    assert DrainDoorbell.objects.get().rung_at == T0


@pytest.mark.django_db
def test_doorbell__clear_or_stale_flag_is_written_and_rings():
    """A cleared flag, and one set more than 120 s ago, are set again and enqueue a drain."""
    assert doorbell_ring(now=T0) is True
    DrainDoorbell.objects.update(pending=False)  # a drain started elsewhere
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
    assert limits == [2, 2, 2, 2]  # 2, 2, 1, then none left


@pytest.mark.django_db
def test_drain_wake__rings_while_due_events_wait_and_the_flag_is_stale(test_handler):
    """A drain task lost with a killed cluster leaves the flag set: the sweeper's step rings
    through once it is stale, and only while due events wait."""
    test_handler(lambda *, event: None)
    assert webhook_events_wake(now=T0) == {"due": False, "rang": False}  # nothing due
    ingest(1)
    DrainDoorbell.objects.update_or_create(pk=1, defaults={"pending": True, "rung_at": T0})
    assert webhook_events_wake(now=T0 + timedelta(seconds=30)) == {"due": True, "rang": False}
    assert webhook_events_wake(now=T0 + timedelta(seconds=121)) == {"due": True, "rang": True}
    assert DrainDoorbell.objects.get().rung_at == T0 + timedelta(seconds=121)
