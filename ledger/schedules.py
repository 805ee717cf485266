"""The sweeper's own Django-Q schedule, beside the ``background-maintenance`` cron.

``ledger_schedule_sync`` is idempotent: it creates the schedule or puts it back as shipped,
keeping its next run. It runs after every ``migrate`` (``sweeper_schedule_after_migrate``,
connected in ``ledger.apps``), so a deployment that migrates has its sweeper with no other step;
``sync_cron_schedules`` calls it too.
"""

from django.db import DEFAULT_DB_ALIAS, connections
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


def sweeper_schedule_after_migrate(*, using=DEFAULT_DB_ALIAS, **kwargs) -> None:
    """``post_migrate``: ensure the sweeper's schedule on the default database, once Django-Q's
    table exists (a ``migrate django_q zero`` leaves nothing to write to)."""
    if using != DEFAULT_DB_ALIAS:
        return
    if Schedule._meta.db_table not in connections[using].introspection.table_names():
        return
    ledger_schedule_sync()
