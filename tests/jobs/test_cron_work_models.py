"""The constraints that keep each cron's output single (jobs/models/cron_work.py)."""

from datetime import UTC, datetime

import pytest
from django.db import IntegrityError, transaction

from jobs.models import (
    Appointment,
    AvailabilityCache,
    Client,
    FollowUpInstance,
    FollowUpSequence,
    FollowUpTask,
    Lead,
    Message,
    ResponseTimingEvent,
)

AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def lead(db):
    client = Client.objects.create(name="Acme")
    return Lead.objects.create(client=client, email="ada@example.com")


def refused(create) -> bool:
    try:
        with transaction.atomic():
            create()
    except IntegrityError:
        return True
    return False


def test_follow_up_task__one_per_step_and_one_per_cancellation(lead):
    """A second task for an instance's step, or a second meeting-canceled task for an
    appointment, is refused; other steps and other kinds are not."""
    sequence = FollowUpSequence.objects.create(client=lead.client, name="Nudges")
    instance = FollowUpInstance.objects.create(lead=lead, sequence=sequence)
    appointment = Appointment.objects.create(lead=lead, provider_id="apt-1", status="canceled",
                                             start_at=AT, created_at=AT, updated_at=AT)

    def step(order):
        return lambda: FollowUpTask.objects.create(lead=lead, instance=instance,
                                                   step_order=order, due_at=AT, created_at=AT)

    def canceled():
        return FollowUpTask.objects.create(lead=lead, kind="meeting-canceled",
                                           appointment=appointment, due_at=AT, created_at=AT)

    assert not refused(step(0)) and not refused(step(1))
    assert refused(step(0))
    assert not refused(canceled)
    assert refused(canceled)
    assert FollowUpTask.objects.count() == 3


def test_follow_up_task__each_kind_names_what_it_needs(lead):
    """A step task without its instance and step, or a meeting-canceled task without its
    appointment, is refused."""
    assert refused(lambda: FollowUpTask.objects.create(lead=lead, due_at=AT, created_at=AT))
    assert refused(lambda: FollowUpTask.objects.create(lead=lead, kind="meeting-canceled",
                                                       due_at=AT, created_at=AT))


def test_one_row_per_provider_id_inbound_message_and_cache_source(lead):
    """Appointments are unique per provider id, timing events per inbound message, caches per
    (client, source)."""
    values = dict(lead=lead, status="booked", start_at=AT, created_at=AT, updated_at=AT)
    Appointment.objects.create(provider_id="apt-1", **values)
    assert refused(lambda: Appointment.objects.create(provider_id="apt-1", **values))
    inbound = Message.objects.create(lead=lead, direction="inbound", source="lead", sent_at=AT)
    answer = Message.objects.create(lead=lead, direction="outbound", source="ai", sent_at=AT)
    event = dict(inbound_message=inbound, lead=lead, inbound_at=AT, response_message=answer,
                 responder="ai", response_delay_ms=0, created_at=AT, updated_at=AT)
    ResponseTimingEvent.objects.create(**event)
    assert refused(lambda: ResponseTimingEvent.objects.create(**event))
    AvailabilityCache.objects.create(client=lead.client, source="json")
    assert refused(lambda: AvailabilityCache.objects.create(client=lead.client, source="json"))
    assert not refused(lambda: AvailabilityCache.objects.create(client=lead.client,
                                                                source="other"))
