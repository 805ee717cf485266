"""The outreach data (DOMAIN.md): workspaces, campaigns, leads, their messages and follow-ups.

Uniqueness lives in the database so webhook handlers are idempotent on provider ids: a campaign
per (client, bison id), a lead per (client, lower(email)), a message per scheduled email id and
per reply id.
"""

from django.db import models
from django.db.models.functions import Lower


class Client(models.Model):
    """A workspace."""

    name = models.CharField(max_length=200)
    emailbison_workspace_id = models.CharField(max_length=64, unique=True, null=True, blank=True)
    emailbison_base_url = models.URLField(blank=True)
    emailbison_api_key = models.CharField(max_length=255, blank=True)
    availability_source = models.CharField(max_length=32, blank=True)
    availability_base_url = models.URLField(blank=True)
    availability_api_key = models.CharField(max_length=255, blank=True)
    booking_provider = models.CharField(max_length=32, blank=True)
    booking_base_url = models.URLField(blank=True)
    booking_api_key = models.CharField(max_length=255, blank=True)
    time_zone = models.CharField(max_length=64, default="UTC")
    auto_follow_up_on_reply = models.BooleanField(default=True)
    first_touch_slot_offers = models.BooleanField(default=False)

    def __str__(self) -> str:
        return self.name


class EmailCampaign(models.Model):
    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="campaigns")
    bison_campaign_id = models.CharField(max_length=64)
    name = models.CharField(max_length=255, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["client", "bison_campaign_id"],
                                               name="campaign_unique_per_client")]

    def __str__(self) -> str:
        return self.name or self.bison_campaign_id


class LeadStatus(models.TextChoices):
    NEW = "new"  # emailed, no answer yet
    REPLIED = "replied"  # answered, not (yet) interested
    INTERESTED = "interested"  # a reply marked interested
    MEETING_BOOKED = "meeting-booked"  # an appointment is booked
    BLACKLISTED = "blacklisted"  # bounced, unsubscribed or asked to stop: never email again


class Sentiment(models.TextChoices):
    INTERESTED = "Interested"
    NEUTRAL = "Neutral"
    BLACKLIST = "Blacklist"


class Direction(models.TextChoices):
    INBOUND = "inbound"  # from the lead
    OUTBOUND = "outbound"  # to the lead


class Lead(models.Model):
    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="leads")
    email = models.EmailField(max_length=254)
    first_name = models.CharField(max_length=200, blank=True)
    last_name = models.CharField(max_length=200, blank=True)
    emailbison_lead_id = models.CharField(max_length=64, blank=True)
    first_email_due_at = models.DateTimeField(null=True, blank=True)  # first campaign email
    status = models.CharField(max_length=20, choices=LeadStatus.choices, default=LeadStatus.NEW)
    sentiment = models.CharField(max_length=20, choices=Sentiment.choices, blank=True)
    last_inbound_at = models.DateTimeField(null=True, blank=True)
    last_outbound_at = models.DateTimeField(null=True, blank=True)
    last_message_at = models.DateTimeField(null=True, blank=True)
    last_message_direction = models.CharField(max_length=10, choices=Direction.choices,
                                              blank=True)
    auto_follow_up_enabled = models.BooleanField(default=True)
    appointment_status = models.CharField(max_length=20, blank=True)
    appointment_provider_id = models.CharField(max_length=128, blank=True)
    appointment_start_at = models.DateTimeField(null=True, blank=True)
    appointment_last_checked_at = models.DateTimeField(null=True, blank=True)
    offered_slots = models.JSONField(default=list, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(Lower("email"), "client",
                                               name="lead_email_unique_per_client")]

    def __str__(self) -> str:
        return self.email


class MessageSource(models.TextChoices):
    CAMPAIGN = "campaign"  # a campaign email (EMAIL_SENT)
    SETTER = "setter"  # a person answered
    AI = "ai"  # the AI answered
    BOUNCE = "bounce"  # a bounce notice that arrived as a reply
    LEAD = "lead"  # the lead wrote (replies)


class Message(models.Model):
    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="messages")
    campaign = models.ForeignKey(EmailCampaign, on_delete=models.SET_NULL, null=True,
                                 blank=True, related_name="messages")
    direction = models.CharField(max_length=10, choices=Direction.choices)
    source = models.CharField(max_length=10, choices=MessageSource.choices)
    sentiment = models.CharField(max_length=20, choices=Sentiment.choices, blank=True)
    subject = models.CharField(max_length=998, blank=True)
    body = models.TextField(blank=True)
    sent_at = models.DateTimeField()
    inboxxia_scheduled_email_id = models.CharField(max_length=64, unique=True, null=True,
                                                   blank=True)
    emailbison_reply_id = models.CharField(max_length=64, unique=True, null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["lead", "sent_at"]),
                   # the response-timing scan's order, (sent_at, id) within a direction
                   models.Index(fields=["direction", "sent_at", "id"],
                                name="message_direction_sent_order")]

    def __str__(self) -> str:
        return f"{self.direction} {self.subject[:40]}"


class FollowUpSequence(models.Model):
    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="sequences")
    name = models.CharField(max_length=200)

    def __str__(self) -> str:
        return self.name


class FollowUpStep(models.Model):
    sequence = models.ForeignKey(FollowUpSequence, on_delete=models.CASCADE,
                                 related_name="steps")
    order = models.PositiveIntegerField()
    delay_hours = models.PositiveIntegerField(default=24)
    body_template = models.TextField(blank=True)

    class Meta:
        ordering = ["order"]
        constraints = [models.UniqueConstraint(fields=["sequence", "order"],
                                               name="step_order_unique")]


class FollowUpStatus(models.TextChoices):
    ACTIVE = "active"  # steps fire when due
    PAUSED = "paused"  # waiting (pause_reason says why)
    COMPLETED = "completed"  # finished or stopped for good


class PauseReason(models.TextChoices):
    LEAD_REPLIED = "lead_replied"  # resumes on our next outbound email or after quiet days
    BLACKLISTED = "blacklisted"  # the lead bounced, unsubscribed or asked to stop


class FollowUpInstance(models.Model):
    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="follow_ups")
    sequence = models.ForeignKey(FollowUpSequence, on_delete=models.CASCADE,
                                 related_name="instances")
    current_step = models.PositiveIntegerField(default=0)  # order of the next step to fire
    next_step_due_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=FollowUpStatus.choices,
                              default=FollowUpStatus.ACTIVE)
    pause_reason = models.CharField(max_length=20, choices=PauseReason.choices, blank=True)
    paused_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["lead", "sequence"],
                                               name="one_instance_per_lead_sequence")]
        # the followups scan's order, (next_step_due_at, id) within a status
        indexes = [models.Index(fields=["status", "next_step_due_at", "id"],
                                name="follow_up_due_order")]
