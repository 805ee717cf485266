"""A duplicate delivery changes nothing, whatever state the first event is in (issue 22, item 8):
failed, waiting for its backoff, or processing under another drainer's lease."""

import json

import pytest
from django.test import Client
from django.utils import timezone

from tests.webhooks.helpers import post
from webhooks.claims import webhook_events_claim
from webhooks.exceptions import TerminalEventError
from webhooks.models import EventStatus, WebhookEvent
from webhooks.processing import webhook_events_drain

BODY = json.dumps({"event": {"type": "TEST_EVENT"}, "data": {"n": 1}}).encode()
STATE = ("status", "attempts", "max_attempts", "next_attempt_at", "lease_expires_at",
         "claim_token", "claimed_by", "last_error", "processed_at", "result", "requeue_count")


def deliver() -> dict:
    response = post(Client(), BODY, HTTP_WEBHOOK_ID="dup-1")
    assert response.status_code == 202, response.content
    return response.json()


def state(event_id: int) -> dict:
    return WebhookEvent.objects.values(*STATE).get(pk=event_id)


@pytest.fixture
def calls(test_handler):
    """A TEST_EVENT handler whose behaviour the test sets; counts its calls."""
    seen = {"count": 0, "raise": None}

    def handler(*, event):
        seen["count"] += 1
        if seen["raise"] is not None:
            raise seen["raise"]
        return {"ok": True}

    test_handler(handler)
    return seen


@pytest.mark.django_db
def test_duplicate__of_a_failed_event_changes_nothing_and_is_not_processed_again(calls):
    """Failed stays failed (no reset to pending); a later drain does not run it."""
    calls["raise"] = TerminalEventError("bad data")
    first = deliver()
    webhook_events_drain(budget_seconds=5)
    before = state(first["eventId"])
    assert before["status"] == EventStatus.FAILED and calls["count"] == 1
    again = deliver()
    assert again["duplicate"] is True and again["eventId"] == first["eventId"]
    assert state(first["eventId"]) == before
    calls["raise"] = None
    assert webhook_events_drain(budget_seconds=5)["processed"] == 0
    assert state(first["eventId"]) == before and calls["count"] == 1


@pytest.mark.django_db
def test_duplicate__of_an_event_waiting_for_its_backoff_changes_nothing(calls):
    """Attempts, status and the next attempt's time stay; it is not made due early."""
    calls["raise"] = RuntimeError("try later")
    first = deliver()
    webhook_events_drain(budget_seconds=5)
    before = state(first["eventId"])
    assert before["status"] == EventStatus.PENDING and before["attempts"] == 1
    assert before["next_attempt_at"] > timezone.now()
    assert deliver()["duplicate"] is True
    assert state(first["eventId"]) == before
    assert webhook_events_drain(budget_seconds=5)["processed"] == 0
    assert calls["count"] == 1


@pytest.mark.django_db
def test_duplicate__of_a_processing_event_keeps_the_lease(calls):
    """Status, claim token, lease and attempts of the drainer holding it are untouched."""
    first = deliver()
    [claimed] = webhook_events_claim(now=timezone.now(), limit=1, worker="holder")
    before = state(first["eventId"])
    assert before["status"] == EventStatus.PROCESSING
    assert before["claim_token"] == claimed.claim_token
    assert deliver()["duplicate"] is True
    assert state(first["eventId"]) == before
    assert webhook_events_drain(budget_seconds=5)["processed"] == 0
    assert calls["count"] == 0
