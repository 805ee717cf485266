"""Each event type from its fixture produces the DOMAIN.md effects; twice or in reverse order
with its partner event leaves the same data."""

from datetime import UTC, datetime

import pytest

from jobs.models import (
    Direction,
    EmailCampaign,
    FollowUpInstance,
    FollowUpSequence,
    FollowUpStatus,
    FollowUpStep,
    Lead,
    LeadStatus,
    Message,
    MessageSource,
    PauseReason,
    Sentiment,
)
from tests.webhooks.helpers import body_of, fixture_body, fixture_payload
from webhooks.models import EventStatus, WebhookEvent
from webhooks.processing import webhook_events_drain
from webhooks.services import webhook_event_ingest

SENT_AT = datetime(2026, 2, 17, 19, 0, tzinfo=UTC)
REPLIED_AT = datetime(2026, 2, 17, 20, 0, tzinfo=UTC)


def deliver(*fixtures: str | bytes) -> list[WebhookEvent]:
    """Ingest each fixture (or raw body) and drain after each, as separate deliveries."""
    events = []
    for item in fixtures:
        body = fixture_body(item) if isinstance(item, str) else item
        outcome = webhook_event_ingest(body=body, headers={}, now=datetime.now(UTC))
        webhook_events_drain(budget_seconds=10)
        events.append(WebhookEvent.objects.get(pk=outcome.event_id))
    return events


def snapshot() -> dict:
    """The outreach data a handler may touch, without ids or clocks of our own."""
    leads = list(Lead.objects.order_by("email").values(
        "email", "first_name", "last_name", "emailbison_lead_id", "status", "sentiment",
        "last_inbound_at", "last_outbound_at", "last_message_at", "last_message_direction"))
    messages = list(Message.objects.order_by("sent_at", "direction").values(
        "lead__email", "campaign__bison_campaign_id", "direction", "source", "sentiment",
        "subject", "body", "sent_at", "inboxxia_scheduled_email_id", "emailbison_reply_id"))
    follow_ups = list(FollowUpInstance.objects.order_by("pk").values(
        "status", "pause_reason", "current_step"))
    campaigns = list(EmailCampaign.objects.values("bison_campaign_id", "name"))
    return {"leads": leads, "messages": messages, "followUps": follow_ups,
            "campaigns": campaigns}


@pytest.fixture
def sequence(workspace):
    """A three-step sequence; the lead gets an active instance once it exists."""
    sequence = FollowUpSequence.objects.create(client=workspace, name="Nudges")
    for order in range(3):
        FollowUpStep.objects.create(sequence=sequence, order=order, delay_hours=24)
    return sequence


def enrol(sequence, *, status=FollowUpStatus.ACTIVE, pause_reason="") -> FollowUpInstance:
    lead, _ = Lead.objects.get_or_create(client=sequence.client, email="ada@example.com")
    return FollowUpInstance.objects.create(lead=lead, sequence=sequence, status=status,
                                           pause_reason=pause_reason)


@pytest.mark.django_db
def test_email_sent__creates_campaign_lead_message_and_rollups(workspace):
    """EMAIL_SENT: campaign upserted, lead created, one outbound message, rollups set."""
    [event] = deliver("email_sent__basic")
    assert event.status == EventStatus.SUCCEEDED
    lead = Lead.objects.get()
    assert (lead.client, lead.email, lead.first_name, lead.emailbison_lead_id) == (
        workspace, "ada@example.com", "Ada", "5551")
    assert lead.status == LeadStatus.NEW
    assert (lead.last_outbound_at, lead.last_message_at, lead.last_message_direction) == (
        SENT_AT, SENT_AT, Direction.OUTBOUND)
    message = Message.objects.get()
    assert (message.direction, message.source, message.inboxxia_scheduled_email_id) == (
        Direction.OUTBOUND, MessageSource.CAMPAIGN, "9001")
    assert message.campaign.bison_campaign_id == "12" and message.campaign.name == "Q1 founders"
    assert event.result["produced"] == {"lead": f"jobs.lead:{lead.pk}",
                                        "message": f"jobs.message:{message.pk}"}


@pytest.mark.django_db
def test_email_sent__twice_leaves_the_same_data(workspace):
    """The same EMAIL_SENT processed twice (a requeue) creates nothing new."""
    deliver("email_sent__basic")
    once = snapshot()
    WebhookEvent.objects.update(status=EventStatus.PENDING, next_attempt_at=datetime.now(UTC))
    webhook_events_drain(budget_seconds=10)
    assert WebhookEvent.objects.get().status == EventStatus.SUCCEEDED
    assert snapshot() == once
    assert Message.objects.count() == 1


@pytest.mark.django_db
def test_email_sent__existing_lead_matched_case_insensitively(workspace):
    """A lead stored as ADA@Example.com is the same lead."""
    Lead.objects.create(client=workspace, email="ADA@Example.com")
    deliver("email_sent__basic")
    assert Lead.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize("fixture", ["email_sent__missing_lead_email",
                                     "email_sent__missing_workspace_id"])
def test_email_sent__missing_required_field_fails_at_once(workspace, fixture):
    """No lead email or workspace id: terminal, one attempt, nothing written."""
    [event] = deliver(fixture)
    assert event.status == EventStatus.FAILED and event.attempts == 1
    assert "MissingProviderField" in event.last_error
    assert not Lead.objects.exists()


@pytest.mark.django_db
def test_email_sent__unknown_workspace_is_retried_then_succeeds_once_the_client_exists():
    """Unknown workspace: retried with backoff (not failed); processed once the client appears."""
    from datetime import timedelta

    from jobs.models import Client

    [event] = deliver("email_sent__unknown_workspace")
    assert event.status == EventStatus.PENDING and "UnknownWorkspace" in event.last_error
    Client.objects.create(name="Late", emailbison_workspace_id="999")
    later = event.next_attempt_at + timedelta(seconds=1)
    webhook_events_drain(clock=lambda: later)
    assert WebhookEvent.objects.get().status == EventStatus.SUCCEEDED
    assert Lead.objects.get().client.emailbison_workspace_id == "999"


@pytest.mark.django_db
def test_lead_replied__inbound_message_sentiment_status_and_pause(sequence):
    """LEAD_REPLIED: inbound message once, Neutral, status replied, active follow-ups pause."""
    instance = enrol(sequence)
    deliver("email_sent__basic", "lead_replied__basic")
    lead = Lead.objects.get()
    assert (lead.status, lead.sentiment) == (LeadStatus.REPLIED, Sentiment.NEUTRAL)
    assert (lead.last_inbound_at, lead.last_outbound_at) == (REPLIED_AT, SENT_AT)
    assert (lead.last_message_at, lead.last_message_direction) == (REPLIED_AT, Direction.INBOUND)
    reply = Message.objects.get(direction=Direction.INBOUND)
    assert (reply.emailbison_reply_id, reply.source, reply.body) == (
        "7001", MessageSource.LEAD, "Thanks Sam, tell me more about pricing.")
    instance.refresh_from_db()
    assert (instance.status, instance.pause_reason) == (FollowUpStatus.PAUSED,
                                                        PauseReason.LEAD_REPLIED)


@pytest.mark.django_db
def test_reply_before_its_email_sent__ends_with_the_same_data(sequence):
    """Reverse order (reply first, then its EMAIL_SENT) leaves exactly the forward data."""
    enrol(sequence)
    deliver("email_sent__basic", "lead_replied__basic")
    forward = snapshot()
    WebhookEvent.objects.all().delete()
    Message.objects.all().delete()
    Lead.objects.all().delete()
    enrol(sequence)
    events = deliver("lead_replied__basic", "email_sent__basic")
    assert [e.status for e in events] == [EventStatus.SUCCEEDED] * 2
    assert snapshot() == forward


@pytest.mark.django_db
def test_lead_replied__twice_leaves_the_same_data(sequence):
    """The same reply processed twice pauses once and adds one message."""
    enrol(sequence)
    deliver("email_sent__basic", "lead_replied__basic")
    once = snapshot()
    WebhookEvent.objects.filter(event_type="LEAD_REPLIED").update(
        status=EventStatus.PENDING, next_attempt_at=datetime.now(UTC))
    webhook_events_drain(budget_seconds=10)
    assert snapshot() == once


@pytest.mark.django_db
def test_lead_interested__marks_the_reply_interested_in_either_order(workspace):
    """LEAD_INTERESTED and LEAD_REPLIED for one reply: one message, Interested, whatever order."""
    deliver("lead_replied__basic", "lead_interested__basic")
    forward = snapshot()
    assert forward["leads"][0]["status"] == LeadStatus.INTERESTED
    assert forward["leads"][0]["sentiment"] == Sentiment.INTERESTED
    assert len(forward["messages"]) == 1
    WebhookEvent.objects.all().delete()
    Lead.objects.all().delete()
    deliver("lead_interested__basic", "lead_replied__basic")
    assert snapshot() == forward


@pytest.mark.django_db
def test_untracked_reply__uses_the_sender_address_as_the_lead(workspace):
    """UNTRACKED_REPLY_RECEIVED without data.lead: the lead is the reply's sender."""
    [event] = deliver("untracked_reply_received__basic")
    assert event.status == EventStatus.SUCCEEDED
    lead = Lead.objects.get()
    assert lead.email == "ada@example.com" and lead.status == LeadStatus.REPLIED
    assert Message.objects.get().emailbison_reply_id == "7010"


@pytest.mark.django_db
def test_lead_replied__opt_out_blacklists_and_stops_follow_ups(sequence):
    """Opt-out wording: sentiment Blacklist, lead blacklisted, follow-ups stopped for good."""
    instance = enrol(sequence)
    deliver("email_sent__basic", "lead_replied__opt_out", "email_sent__second_step")
    lead = Lead.objects.get()
    assert (lead.status, lead.sentiment) == (LeadStatus.BLACKLISTED, Sentiment.BLACKLIST)
    instance.refresh_from_db()
    assert (instance.status, instance.pause_reason) == (FollowUpStatus.PAUSED,
                                                        PauseReason.BLACKLISTED)


@pytest.mark.django_db
def test_lead_replied__bounce_notice_is_blacklist(workspace):
    """A reply that is a bounce notice counts as Blacklist, with source bounce."""
    payload = fixture_payload("lead_replied__basic")
    payload["data"]["reply"].update(from_email_address="MAILER-DAEMON@mx.example.com",
                                    email_subject="Undeliverable: Quick question")
    payload["data"]["lead"]["email"] = "ada@example.com"
    deliver(body_of(payload))
    assert Lead.objects.get().status == LeadStatus.BLACKLISTED
    assert Message.objects.get().source == MessageSource.BOUNCE


@pytest.mark.django_db
@pytest.mark.parametrize("fixture", ["email_bounced__basic", "lead_unsubscribed__basic"])
def test_blacklisting_events__blacklist_and_stop_in_either_order(sequence, fixture):
    """EMAIL_BOUNCED / LEAD_UNSUBSCRIBED: lead blacklisted, follow-ups stop; an EMAIL_SENT before
    or after leaves the same data."""
    instance = enrol(sequence)
    deliver("email_sent__basic", fixture)
    forward = snapshot()
    assert forward["leads"][0]["status"] == LeadStatus.BLACKLISTED
    instance.refresh_from_db()
    assert instance.pause_reason == PauseReason.BLACKLISTED
    WebhookEvent.objects.all().delete()
    Lead.objects.all().delete()
    enrol(sequence)
    deliver(fixture, "email_sent__basic", fixture)
    assert snapshot() == forward


@pytest.mark.django_db
def test_email_opened__recorded_and_nothing_else(workspace):
    """EMAIL_OPENED: the event succeeds; no lead, message or status is written."""
    [event] = deliver("email_opened__basic")
    assert event.status == EventStatus.SUCCEEDED and event.result["recorded"] is True
    assert not Lead.objects.exists() and not Message.objects.exists()
    deliver("email_sent__basic")
    before = snapshot()
    [again] = deliver(fixture_body("email_opened__basic").replace(b"80020", b"80021"))
    assert snapshot() == before
    assert again.result["produced"]["lead"].startswith("jobs.lead:")


@pytest.mark.django_db
def test_email_sent__resumes_a_sequence_paused_for_a_reply_from_the_next_step(sequence):
    """A newer outbound email resumes a lead_replied pause at the next step; an older one does
    not."""
    instance = enrol(sequence)
    deliver("email_sent__basic", "lead_replied__basic")
    instance.refresh_from_db()
    assert instance.status == FollowUpStatus.PAUSED
    deliver("email_sent__second_step")
    instance.refresh_from_db()
    assert (instance.status, instance.current_step, instance.pause_reason) == (
        FollowUpStatus.ACTIVE, 1, "")
    assert instance.next_step_due_at is not None


@pytest.mark.django_db
def test_handlers__provider_text_is_cleaned_before_columns(workspace):
    """NUL removed and lone surrogates replaced in every text column (PostgreSQL refuses both)."""
    body = fixture_body("lead_replied__basic").replace(
        b"tell me more", b"tell\\u0000 me\\ud800 more").replace(b'"Ada"', b'"A\\u0000da\\udfff"')
    [event] = deliver(body)
    assert event.status == EventStatus.SUCCEEDED, event.last_error
    assert Message.objects.get().body == "Thanks Sam, tell me\ufffd more about pricing."
    assert Lead.objects.get().first_name == "Ada\ufffd"


@pytest.mark.django_db
@pytest.mark.parametrize("fixture", ["lead_replied__emoji_rtl", "lead_replied__sql_looking"])
def test_handlers__emoji_rtl_and_sql_looking_text_round_trip(workspace, fixture):
    """Emoji, RTL marks and SQL-looking text are stored as text, unchanged."""
    [event] = deliver(fixture)
    assert event.status == EventStatus.SUCCEEDED
    expected = fixture_payload(fixture)["data"]["reply"]["text_body"]
    assert Message.objects.get().body == expected
    assert Lead.objects.count() == 1
