"""Django-Q entry points of the cron app."""

import uuid

from django.utils import timezone

from cron.registry import get_cron
from cron.services import Source, Trigger, cron_trigger


def scheduled_trigger(cron_name: str) -> dict:
    """A Django-Q Schedule's tick: the same path as the HTTP route (flags, window, dedupe)."""
    cron = get_cron(cron_name)
    if cron is None:
        return {"error": f"no cron named {cron_name!r}; run manage.py sync_cron_schedules"}
    outcome = cron_trigger(trigger=Trigger(
        cron=cron, source=Source.SCHEDULE, params={},
        correlation_id=f"schedule:{uuid.uuid4()}", requested_at=timezone.now(),
    ))
    return {"mode": outcome.mode.value, "dispatchKey": outcome.payload["dispatchKey"],
            "taskIds": outcome.task_ids, "enqueueError": outcome.enqueue_error}
