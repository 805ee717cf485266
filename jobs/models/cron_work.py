"""What the crons produce or keep (DOMAIN.md "What each cron does").

Each cron is idempotent through a constraint here: one timing event per inbound message, one
follow-up task per (instance, step) and one meeting-canceled task per appointment, one
appointment per provider id, one availability cache per (client, source), one lease per name.
"""

from django.db import models
from django.db.models import Q

from jobs.models.outreach import Client, FollowUpInstance, Lead, Message


class Responder(models.TextChoices):
    SETTER = "setter"  # a person answered
    AI = "ai"  # the AI answered
    CAMPAIGN = "campaign"  # the next campaign email went out before anyone answered


class ResponseTimingEvent(models.Model):
    """An inbound message whose next message on the lead is outbound, and how it was answered.

    ``response_*`` is that next message; ``setter_*`` and ``ai_*`` are the first setter and the
    first AI answer before the lead wrote again (filled when they exist, possibly by a later run).
    """

    inbound_message = models.OneToOneField(Message, on_delete=models.CASCADE,
                                           related_name="response_timing")
    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="response_timings")
    inbound_at = models.DateTimeField()
    response_message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="+")
    responder = models.CharField(max_length=10, choices=Responder.choices)
    response_delay_ms = models.BigIntegerField()
    setter_message = models.ForeignKey(Message, on_delete=models.SET_NULL, null=True,
                                       blank=True, related_name="+")
    setter_delay_ms = models.BigIntegerField(null=True, blank=True)
    ai_message = models.ForeignKey(Message, on_delete=models.SET_NULL, null=True, blank=True,
                                   related_name="+")
    ai_delay_ms = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["inbound_at"])]

    def __str__(self) -> str:
        return f"{self.responder} after {self.response_delay_ms} ms"


class FollowUpTaskKind(models.TextChoices):
    STEP = "step"  # a sequence step came due
    MEETING_CANCELED = "meeting-canceled"  # the lead's appointment was canceled: reach out


class FollowUpTaskStatus(models.TextChoices):
    PENDING = "pending"  # to be sent or done
    DONE = "done"
    CANCELED = "canceled"


class AppointmentStatus(models.TextChoices):
    BOOKED = "booked"
    CANCELED = "canceled"


class Appointment(models.Model):
    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="appointments")
    provider_id = models.CharField(max_length=128, unique=True)
    status = models.CharField(max_length=10, choices=AppointmentStatus.choices)
    start_at = models.DateTimeField()
    end_at = models.DateTimeField(null=True, blank=True)
    canceled_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["lead", "status"])]

    def __str__(self) -> str:
        return f"{self.provider_id} ({self.status})"


class FollowUpTask(models.Model):
    """What a follow-up produced: a sequence step that came due, or a meeting-canceled task.

    A step task names its instance and ``step_order``; a meeting-canceled task names its
    appointment. Each is produced once (the two conditional unique constraints).
    """

    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="follow_up_tasks")
    kind = models.CharField(max_length=20, choices=FollowUpTaskKind.choices,
                            default=FollowUpTaskKind.STEP)
    instance = models.ForeignKey(FollowUpInstance, on_delete=models.CASCADE, null=True,
                                 blank=True, related_name="tasks")
    step_order = models.PositiveIntegerField(null=True, blank=True)
    appointment = models.ForeignKey(Appointment, on_delete=models.CASCADE, null=True,
                                    blank=True, related_name="follow_up_tasks")
    due_at = models.DateTimeField()
    channel = models.CharField(max_length=20, default="email")
    body = models.TextField(blank=True)
    status = models.CharField(max_length=10, choices=FollowUpTaskStatus.choices,
                              default=FollowUpTaskStatus.PENDING)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["instance", "step_order"],
                                    condition=Q(kind=FollowUpTaskKind.STEP),
                                    name="follow_up_task_once_per_step"),
            models.UniqueConstraint(fields=["appointment"],
                                    condition=Q(kind=FollowUpTaskKind.MEETING_CANCELED),
                                    name="follow_up_task_once_per_cancellation"),
            models.CheckConstraint(
                condition=(Q(kind=FollowUpTaskKind.STEP, instance__isnull=False,
                             step_order__isnull=False)
                           | Q(kind=FollowUpTaskKind.MEETING_CANCELED,
                               appointment__isnull=False)),
                name="follow_up_task_kind_fields"),
        ]
        indexes = [models.Index(fields=["status", "due_at"])]

    def __str__(self) -> str:
        return f"{self.kind} {self.step_order if self.step_order is not None else ''}".strip()


class AvailabilityCache(models.Model):
    """A client's next 30 days of 30-minute slots from one source.

    ``slots`` is a list of ``{"start": iso, "end": iso}``; ``stale_at`` ends its freshness;
    ``next_attempt_at`` holds a failing source back (backoff), ``failures`` counts in a row.
    """

    client = models.ForeignKey(Client, on_delete=models.CASCADE,
                               related_name="availability_caches")
    source = models.CharField(max_length=32)
    slots = models.JSONField(default=list, blank=True)
    fetched_at = models.DateTimeField(null=True, blank=True)
    stale_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
    failures = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["client", "source"],
                                               name="availability_cache_per_client_source")]

    def __str__(self) -> str:
        return f"{self.client_id}:{self.source}"


class SlotOffer(models.Model):
    """Slots offered to a lead through its EmailBison ``availability_slot`` custom variable."""

    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="slot_offers")
    lead = models.ForeignKey(Lead, on_delete=models.SET_NULL, null=True, blank=True,
                             related_name="slot_offers")
    emailbison_lead_id = models.CharField(max_length=64)
    slots = models.JSONField(default=list)
    sentence = models.TextField()
    offered_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["client", "emailbison_lead_id", "offered_at"])]

    def __str__(self) -> str:
        return f"{self.emailbison_lead_id} at {self.offered_at:%Y-%m-%d %H:%M}"


class CronLease(models.Model):
    """A named lock with an expiry, for databases without advisory locks (SQLite)."""

    name = models.CharField(max_length=100, unique=True)
    holder = models.CharField(max_length=64)
    expires_at = models.DateTimeField()

    def __str__(self) -> str:
        return self.name
