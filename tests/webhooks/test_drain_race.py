"""Concurrent drainers on real PostgreSQL: one drainer per event, each effect once."""

import random
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.db.models import Max

from jobs.models import Client, Lead, Message
from jobs.webhook_handlers import handle_email_sent
from tests.conftest import on_postgres
from tests.webhooks.helpers import body_of, fixture_payload
from webhooks.models import EventStatus, WebhookEvent
from webhooks.processing import webhook_events_drain
from webhooks.registry import register_handler
from webhooks.services import webhook_event_ingest

DRAINERS = 8
UNIQUE_EVENTS = 4000
DUPLICATES = 1000  # 20 % of the 5,000 deliveries
LEADS = 200
T0 = datetime(2026, 2, 17, 19, 0, tzinfo=UTC)


def delivery(number: int) -> bytes:
    payload = fixture_payload("email_sent__basic")
    payload["data"]["scheduled_email"].update(
        id=100000 + number, sent_at=(T0 + timedelta(seconds=number)).isoformat())
    payload["data"]["lead"].update(email=f"lead{number % LEADS}@example.com", id=number % LEADS)
    return body_of(payload)


def in_threads(count: int, work) -> list:
    """Run ``work(index)`` in ``count`` threads, each closing its own connection."""
    results, errors = [None] * count, []

    def run(index):
        try:
            results[index] = work(index)
        except BaseException as error:  # surfaced below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not errors, errors
    return results


class Tracker:
    """Wraps the real EMAIL_SENT handler: detects two drainers on one event at once, fails 5 %
    of events once, and counts committed effects per event."""

    def __init__(self):
        self.lock = threading.Lock()
        self.active: set[int] = set()
        self.overlaps: list[int] = []
        self.calls = Counter()
        self.failed_once: set[int] = set()

    def handler(self, *, event):
        with self.lock:
            if event.event_id in self.active:
                self.overlaps.append(event.event_id)
            self.active.add(event.event_id)
            self.calls[event.event_id] += 1
            first_call = self.calls[event.event_id] == 1
        try:
            scheduled_id = event.payload["data"]["scheduled_email"]["id"]
            if scheduled_id % 20 == 0 and first_call:
                self.failed_once.add(event.event_id)
                raise ConnectionError("flaky once")
            return handle_email_sent(event=event)
        finally:
            with self.lock:
                self.active.discard(event.event_id)


@pytest.mark.skipif(not on_postgres(), reason="SKIP LOCKED claims need PostgreSQL; SQLite "
                    "serialises writers, so there is no race to test")
@pytest.mark.django_db(transaction=True)
def test_drain_race__eight_drainers_5000_deliveries_each_effect_once():
    """8 drainers over 5,000 deliveries (20 % duplicates, 5 % failing once): every event ends
    succeeded, each effect happens once, no event is held by two drainers at once."""
    Client.objects.create(name="Acme", emailbison_workspace_id="42")
    numbers = list(range(UNIQUE_EVENTS)) + random.Random(1).sample(range(UNIQUE_EVENTS),
                                                                    DUPLICATES)
    random.Random(2).shuffle(numbers)
    tracker = Tracker()
    register_handler("EMAIL_SENT", tracker.handler, replace=True)
    try:
        def ingest(index):
            duplicates = 0
            for number in numbers[index::DRAINERS]:
                outcome = webhook_event_ingest(body=delivery(number), headers={},
                                               now=datetime.now(UTC))
                duplicates += outcome.duplicate
            return duplicates

        assert sum(in_threads(DRAINERS, ingest)) == DUPLICATES

        def drain(index):
            deadline = time.monotonic() + 180
            totals = Counter()
            while time.monotonic() < deadline:
                totals.update(webhook_events_drain(budget_seconds=2, batch_size=25,
                                                   worker=f"drainer-{index}"))
                open_events = WebhookEvent.objects.filter(
                    status__in=[EventStatus.PENDING, EventStatus.PROCESSING]).exists()
                if not open_events:
                    break
                time.sleep(0.05)
            return totals

        totals = sum(in_threads(DRAINERS, drain), Counter())
    finally:
        register_handler("EMAIL_SENT", handle_email_sent, replace=True)

    assert WebhookEvent.objects.count() == UNIQUE_EVENTS
    assert set(WebhookEvent.objects.values_list("status", flat=True)) == {EventStatus.SUCCEEDED}
    assert tracker.overlaps == []
    assert len(tracker.failed_once) == UNIQUE_EVENTS // 20
    assert totals["succeeded"] == UNIQUE_EVENTS and totals["retried"] == UNIQUE_EVENTS // 20
    assert totals["skipped"] == 0 and totals["failed"] == 0
    expected_calls = {pk: 2 if pk in tracker.failed_once else 1
                      for pk in WebhookEvent.objects.values_list("pk", flat=True)}
    assert dict(tracker.calls) == expected_calls
    attempts = Counter(WebhookEvent.objects.values_list("attempts", flat=True))
    assert attempts == {1: UNIQUE_EVENTS - UNIQUE_EVENTS // 20, 2: UNIQUE_EVENTS // 20}
    assert Message.objects.count() == UNIQUE_EVENTS
    assert Lead.objects.count() == LEADS
    for lead in Lead.objects.annotate(newest=Max("messages__sent_at")):
        assert lead.last_outbound_at == lead.newest
