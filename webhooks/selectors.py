"""Reads of the webhook queue: health for maintenance and operators."""

from django.db.models import Min

from webhooks.models import EventStatus, WebhookEvent


def webhook_events_due(*, now):
    return WebhookEvent.objects.filter(status=EventStatus.PENDING, next_attempt_at__lte=now)


def webhook_queue_health(*, now) -> dict:
    """Due and waiting events, the oldest due one and its age, events in progress and failed."""
    due = webhook_events_due(now=now)
    oldest = due.aggregate(oldest=Min("next_attempt_at"))["oldest"]
    pending = WebhookEvent.objects.filter(status=EventStatus.PENDING)
    return {
        "due": due.count(),
        "waitingForRetry": pending.filter(next_attempt_at__gt=now).count(),
        "processing": WebhookEvent.objects.filter(status=EventStatus.PROCESSING).count(),
        "failed": WebhookEvent.objects.filter(status=EventStatus.FAILED).count(),
        "oldestDueAt": oldest.isoformat() if oldest else None,
        "oldestDueAgeSeconds": round((now - oldest).total_seconds(), 1) if oldest else None,
    }
