"""Reads of the webhook queue: health for maintenance and operators."""

from django.db.models import Count, Min

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


# Statuses the metrics count: the queue and the dead letters. Succeeded and ignored events are
# counted as they arrive (dispatch_webhooks_received_total), not by scanning a month of them.
COUNTED_STATUSES = (EventStatus.PENDING, EventStatus.PROCESSING, EventStatus.FAILED)


def webhook_events_by_status() -> dict[str, int]:
    """{status: count} for pending, processing and failed events (0 when none)."""
    rows = (WebhookEvent.objects.filter(status__in=COUNTED_STATUSES).values("status")
            .annotate(count=Count("id")).order_by())
    counts = {status.value: 0 for status in COUNTED_STATUSES}
    counts.update({row["status"]: row["count"] for row in rows})
    return counts


def webhook_oldest_due_age_seconds(*, now) -> float:
    """How long the oldest due event has been due (0 when none is due)."""
    oldest = webhook_events_due(now=now).aggregate(oldest=Min("next_attempt_at"))["oldest"]
    return max(0.0, (now - oldest).total_seconds()) if oldest else 0.0
