"""Entry points Django-Q calls. Module-level, no arguments, small results."""

from django.utils import timezone

from webhooks import conf
from webhooks.doorbell import doorbell_clear, doorbell_ring
from webhooks.processing import webhook_events_drain


def drain_on_doorbell() -> dict:
    """The doorbell's drain: clear the flag first (an event stored from now on rings again),
    drain within the budget in small claims (WEBHOOK_DOORBELL_BATCH_SIZE), claiming once more
    after the doorbell's recall time (see webhooks.doorbell), and ring again when due events are
    left."""
    linger_until = doorbell_clear(now=timezone.now())
    counts = webhook_events_drain(budget_seconds=conf.drain_budget_seconds(),
                                  batch_size=conf.doorbell_batch_size(),
                                  linger_until=linger_until)
    if counts["remaining"]:
        doorbell_ring(now=timezone.now())
    return counts
