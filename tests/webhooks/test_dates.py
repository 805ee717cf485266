"""Provider datetimes: refused at ingest when unreadable or out of range (400 naming the field),
terminal at once for an event stored before the check, and read back intact on PostgreSQL."""

import json
from datetime import UTC, datetime

import pytest
from django.test import Client
from django.utils import timezone

from jobs.models import Message
from tests.webhooks.helpers import fixture_payload, post
from webhooks.dates import InvalidProviderDatetime, provider_datetime
from webhooks.models import EventStatus, WebhookEvent
from webhooks.processing import webhook_events_drain

BAD_TIMES = [
    "0001-01-01T00:00:00+10:00",  # year 1 BC in UTC: stored, never read back (the reproducer)
    "9999-12-31T23:59:59-23:59",  # year 10000 in UTC
    "2026-02-30T10:00:00Z",  # well formed, impossible
    "1969-12-31T23:59:59Z",  # before the sane range
    "2100-01-01T00:00:00Z",  # after it
    "yesterday",
    "2026-13-01T00:00:00Z",
]


def sent_with(sent_at) -> bytes:
    payload = fixture_payload("email_sent__basic")
    payload["data"]["scheduled_email"]["sent_at"] = sent_at
    return json.dumps(payload).encode()


def reply_with(**times) -> bytes:
    payload = fixture_payload("lead_replied__basic")
    payload["data"]["reply"].update(times)
    return json.dumps(payload).encode()


@pytest.mark.parametrize("value", [*BAD_TIMES, 1700000000, ["2026-02-17"], {"at": 1}])
def test_provider_datetime__refuses_unreadable_and_out_of_range(value):
    """Anything that is not an ISO 8601 time between 1970 and 2100 UTC is refused, by name."""
    with pytest.raises(InvalidProviderDatetime, match="data.x.sent_at"):
        provider_datetime(value, field="data.x.sent_at")


@pytest.mark.parametrize(("value", "expected"), [
    ("2026-02-17T19:00:00.000000Z", datetime(2026, 2, 17, 19, tzinfo=UTC)),
    ("2026-02-17T19:00:00", datetime(2026, 2, 17, 19, tzinfo=UTC)),  # naive means UTC
    ("2026-02-17T21:00:00+02:00", datetime(2026, 2, 17, 19, tzinfo=UTC)),
    ("1970-01-01T00:00:00Z", datetime(1970, 1, 1, tzinfo=UTC)),
    ("2099-12-31T23:59:59Z", datetime(2099, 12, 31, 23, 59, 59, tzinfo=UTC)),
    (None, None), ("", None),
])
def test_provider_datetime__reads_iso_times_in_utc(value, expected):
    """Valid times come back aware, in UTC; absent ones are None."""
    assert provider_datetime(value, field="f") == expected


@pytest.mark.django_db
@pytest.mark.parametrize("value", BAD_TIMES)
def test_ingest__email_sent_with_bad_sent_at_is_400_naming_the_field(value):
    """The reproducers of issue 22: refused at ingest, nothing stored."""
    response = post(Client(), sent_with(value))
    assert response.status_code == 400, response.content
    assert "data.scheduled_email.sent_at" in response.json()["error"]
    assert not WebhookEvent.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("field", ["date_received", "created_at"])
def test_ingest__reply_with_bad_time_is_400_naming_the_field(field):
    """Replies carry their time in date_received or created_at: both are checked."""
    response = post(Client(), reply_with(**{field: "0001-01-01T00:00:00+10:00"}))
    assert response.status_code == 400, response.content
    assert f"data.reply.{field}" in response.json()["error"]


@pytest.mark.django_db
@pytest.mark.parametrize("value", ["1970-01-01T00:00:00Z", "2099-12-31T23:59:59-00:00"])
def test_ingest__edge_times_are_stored_processed_and_read_back(workspace, value):
    """Times at the range's edges go through the whole path and read back intact (PostgreSQL
    included, where the year-1 reproducer was stored but could not be read)."""
    assert post(Client(), sent_with(value)).status_code == 202
    assert webhook_events_drain(budget_seconds=10)["succeeded"] == 1
    message = Message.objects.get()
    assert message.sent_at == provider_datetime(value, field="sent_at")
    assert message.lead.last_outbound_at == message.sent_at


@pytest.mark.django_db
def test_handler__event_stored_before_the_check_fails_at_once(workspace):
    """An event with a bad time stored by an older version is terminal on its first attempt,
    not retried 8 times."""
    now = timezone.now()
    event = WebhookEvent.objects.create(
        event_type="EMAIL_SENT", dedupe_key="inboxxia:EMAIL_SENT:legacy",
        raw_body=sent_with("2026-02-30T10:00:00Z"), status=EventStatus.PENDING,
        next_attempt_at=now, received_at=now)
    webhook_events_drain(budget_seconds=10)
    event.refresh_from_db()
    assert event.status == EventStatus.FAILED and event.attempts == 1
    assert "[terminal]" in event.last_error and "sent_at" in event.last_error
    assert not Message.objects.exists()
