"""Entry points Django-Q calls. Module-level, no arguments, small results."""

from django.utils import timezone

from webhooks import conf
from webhooks.doorbell import doorbell_clear, doorbell_ring
from webhooks.processing import webhook_events_drain


def drain_on_doorbell() -> dict:
    """The doorbell's drain: clear the flag first (an event stored from now on rings again),
    drain in small claims (WEBHOOK_DOORBELL_BATCH_SIZE) for a short budget
    (WEBHOOK_DOORBELL_BUDGET_SECONDS), and ring again when due events are left: the next drain
    queues behind whatever else waits, so a burst never holds the cluster's workers from the
    crons for long."""
    doorbell_clear(now=timezone.now())
    counts = webhook_events_drain(budget_seconds=conf.doorbell_budget_seconds(),
                                  batch_size=conf.doorbell_batch_size())
    if counts["remaining"]:
        doorbell_ring(now=timezone.now())
    return counts
