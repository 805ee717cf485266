"""Webhook events as received, and the doorbell that wakes a drainer.

``WebhookEvent.status``: pending -> processing -> succeeded | failed, or ignored (nobody handles
the type). The raw body is kept as bytes, exactly as the provider sent it; every text column is
cleaned first (PostgreSQL refuses NUL and lone surrogates in text that SQLite accepts).
"""

from django.db import models
from django.db.models import Q


class EventStatus(models.TextChoices):
    PENDING = "pending"  # stored; due at next_attempt_at
    PROCESSING = "processing"  # claimed by one drainer holding claim_token until lease_expires_at
    SUCCEEDED = "succeeded"  # terminal: the handler returned
    FAILED = "failed"  # terminal: terminal error or out of attempts; kept for inspection/requeue
    IGNORED = "ignored"  # terminal: no handler is registered for the type


FINISHED_STATUSES = (EventStatus.SUCCEEDED, EventStatus.IGNORED)  # pruned after retention


class EventSource(models.TextChoices):
    HTTP = "http"  # posted to the webhook route
    REPLAY = "replay"  # manage.py replay_webhooks


class WebhookEvent(models.Model):
    provider = models.CharField(max_length=32, default="inboxxia")
    event_type = models.CharField(max_length=64)
    dedupe_key = models.CharField(max_length=255)  # unique: webhook_event_dedupe_key
    webhook_id = models.CharField(max_length=255, blank=True)  # the webhook-id header, if any
    lead_email = models.CharField(max_length=254, blank=True)  # for admin search
    source = models.CharField(max_length=16, choices=EventSource.choices, default=EventSource.HTTP)
    raw_body = models.BinaryField()

    status = models.CharField(max_length=16, choices=EventStatus.choices,
                              default=EventStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)  # claims so far (a rescued lease counts)
    max_attempts = models.PositiveIntegerField(default=8)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    received_at = models.DateTimeField()
    processed_at = models.DateTimeField(null=True, blank=True)  # reached a terminal status

    claim_token = models.UUIDField(null=True, blank=True)
    claimed_by = models.CharField(max_length=128, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)

    # What the handler returned: small JSON, with "produced" {"lead": "jobs.lead:12", ...}.
    result = models.JSONField(null=True, blank=True)
    requeue_count = models.PositiveIntegerField(default=0)
    requeued_at = models.DateTimeField(null=True, blank=True)
    requeued_by = models.CharField(max_length=150, blank=True)

    class Meta:
        ordering = ["-id"]
        # Not unique=True on the field: on PostgreSQL that also builds a "_like" index no query
        # uses, paid on every ingest. ON CONFLICT (dedupe_key) infers this constraint.
        constraints = [
            models.UniqueConstraint(fields=["dedupe_key"], name="webhook_event_dedupe_key"),
        ]
        indexes = [
            # Claiming reads only due pending rows, however many finished ones pile up.
            models.Index(fields=["next_attempt_at", "id"], condition=Q(status="pending"),
                         name="webhook_event_due_idx"),
            models.Index(fields=["lease_expires_at"], condition=Q(status="processing"),
                         name="webhook_event_lease_idx"),
            models.Index(fields=["processed_at"],
                         condition=Q(status__in=["succeeded", "ignored"]),
                         name="webhook_event_finished_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} #{self.pk} ({self.status})"


class DrainDoorbell(models.Model):
    """One row (pk 1): ``pending`` is set when a drain task is enqueued and cleared when a drain
    starts, so ingestion enqueues at most one waiting drain however fast events arrive."""

    pending = models.BooleanField(default=False)
    rung_at = models.DateTimeField(null=True, blank=True)
    cleared_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"doorbell ({'pending' if self.pending else 'idle'})"
