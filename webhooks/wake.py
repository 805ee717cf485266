"""Due retries wake a drain with no cron: ``webhook_events_wake`` runs on the ledger sweeper's
schedule every minute (registered ``every_sweep`` in ``webhooks.apps``).

A failed attempt is retried at its ``next_attempt_at``, after the drain that failed it has
stopped; the doorbell rang then found nothing due yet. Without an outside scheduler calling
``background-jobs`` the event would wait for the next ingest. This rings the doorbell when an
event is due (one indexed ``EXISTS`` when there is none)."""

from webhooks.doorbell import doorbell_ring
from webhooks.selectors import webhook_events_due


def webhook_events_wake(*, now) -> dict:
    """Ring the doorbell when an event is due. ``rang``: a drain task was enqueued (False when
    one is waiting already)."""
    due = webhook_events_due(now=now).exists()
    return {"due": due, "rang": doorbell_ring(now=now) if due else False}
