"""EMAIL_SENT moves rollups forward in one statement: any delivery order ends with the same
lead, and one drain looks its Client and campaign up once."""

import itertools
from datetime import UTC, datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from jobs.models import Direction, EmailCampaign, FollowUpInstance, Lead, Message
from tests.jobs.test_webhook_handlers import REPLIED_AT, enrol, sequence, snapshot  # noqa: F401
from tests.webhooks.helpers import body_of, fixture_payload
from webhooks.models import EventStatus, WebhookEvent
from webhooks.processing import webhook_events_drain
from webhooks.services import webhook_event_ingest

BEFORE_REPLY = "2026-02-17T19:00:00.000000Z"
AFTER_REPLY = "2026-02-17T21:30:00.000000Z"


def sent(scheduled_id: int, sent_at: str, **lead) -> bytes:
    payload = fixture_payload("email_sent__basic")
    payload["data"]["scheduled_email"].update(id=scheduled_id, sent_at=sent_at)
    payload["data"]["lead"].update(lead)
    return body_of(payload)


def deliver_each(bodies) -> None:
    for body in bodies:
        webhook_event_ingest(body=body, headers={}, now=datetime.now(UTC))
        webhook_events_drain(budget_seconds=10)
    assert set(WebhookEvent.objects.values_list("status", flat=True)) == {EventStatus.SUCCEEDED}


def reset() -> None:
    WebhookEvent.objects.all().delete()
    Message.objects.all().delete()
    Lead.objects.all().delete()


@pytest.mark.django_db
def test_email_sent__rollups_are_the_same_in_every_delivery_order(workspace):
    """Two sends (before and after the reply) and the reply, in all six orders: the lead ends
    with the latest times, direction of the latest message, status and sentiment alike."""
    bodies = [sent(9001, BEFORE_REPLY), sent(9002, AFTER_REPLY),
              body_of(fixture_payload("lead_replied__basic"))]
    results = []
    for order in itertools.permutations(bodies):
        reset()
        deliver_each(order)
        results.append(snapshot()["leads"])
    assert all(result == results[0] for result in results)
    [lead] = results[0]
    assert lead["last_inbound_at"] == REPLIED_AT
    assert lead["last_outbound_at"] == datetime(2026, 2, 17, 21, 30, tzinfo=UTC)
    assert (lead["last_message_at"], lead["last_message_direction"]) == (
        lead["last_outbound_at"], Direction.OUTBOUND)


@pytest.mark.django_db
def test_email_sent__older_send_after_a_reply_keeps_the_reply_latest(workspace):
    """A send older than the reply arriving last moves only last_outbound_at."""
    deliver_each([body_of(fixture_payload("lead_replied__basic")), sent(9001, BEFORE_REPLY)])
    lead = Lead.objects.get()
    assert (lead.last_message_at, lead.last_message_direction) == (REPLIED_AT,
                                                                  Direction.INBOUND)
    assert lead.last_outbound_at == datetime(2026, 2, 17, 19, 0, tzinfo=UTC)


@pytest.mark.django_db
def test_email_sent__blank_names_filled_never_overwritten(workspace):
    """A later send fills blank names and ids; it never overwrites ones already set."""
    deliver_each([sent(9001, BEFORE_REPLY, first_name="", last_name="", id=None)])
    assert Lead.objects.values_list("first_name", "emailbison_lead_id").get() == ("", "")
    deliver_each([sent(9002, AFTER_REPLY, first_name="Ada", id=5551),
                  sent(9003, AFTER_REPLY, first_name="Augusta", last_name="King")])
    assert Lead.objects.values_list("first_name", "last_name", "emailbison_lead_id").get() == (
        "Ada", "Lovelace", "5551")


@pytest.mark.django_db
def test_email_sent__resumes_only_when_newer_than_the_reply(sequence):  # noqa: F811
    """A lead paused for its reply: an older send leaves it paused, a newer one resumes it."""
    enrol(sequence)
    deliver_each([body_of(fixture_payload("lead_replied__basic")), sent(9001, BEFORE_REPLY)])
    assert FollowUpInstance.objects.get().status == "paused"
    deliver_each([sent(9002, AFTER_REPLY)])
    instance = FollowUpInstance.objects.get()
    assert (instance.status, instance.current_step, instance.pause_reason) == ("active", 1, "")
