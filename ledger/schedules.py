"""The sweeper's own Django-Q schedule, beside the ``background-maintenance`` cron.

``ledger_schedule_sync`` is idempotent: the cron app's ``sync_cron_schedules`` command calls it
on every deploy; it creates the schedule or puts it back as shipped, keeping its next run.
"""

from django.utils import timezone
from django_q.models import Schedule

SWEEP_SCHEDULE_NAME = "ledger:sweep"
SWEEP_FUNC = "ledger.tasks.sweep"


def ledger_schedule_sync(*, now=None) -> Schedule:
    """Create or update the Schedule that runs the sweeper every minute. Returns it."""
    wanted = {
        "func": SWEEP_FUNC,
        "schedule_type": Schedule.MINUTES,
        "minutes": 1,
        "repeats": -1,
        "args": None,
        "kwargs": None,
        "hook": None,
        "cluster": None,
    }
    schedule, created = Schedule.objects.get_or_create(
        name=SWEEP_SCHEDULE_NAME,
        defaults={**wanted, "next_run": now or timezone.now()},
    )
    if not created:
        changed = [name for name, value in wanted.items() if getattr(schedule, name) != value]
        if changed:
            for name in changed:
                setattr(schedule, name, wanted[name])
            schedule.save(update_fields=changed)
    return schedule
