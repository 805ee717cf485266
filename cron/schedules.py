"""Django-Q Schedule rows for deployments without an outside scheduler.

One row per registered cron, named ``cron:<name>``, calling ``cron.tasks.scheduled_trigger`` on
the cron's schedule; rows for crons no longer registered are removed. Idempotent.
"""

from django.db import transaction
from django_q.models import Schedule

from cron.registry import all_crons

PREFIX = "cron:"
TASK = "cron.tasks.scheduled_trigger"


def cron_schedules_sync() -> dict:
    created, updated, removed = [], [], []
    with transaction.atomic():
        for cron in all_crons():
            name = f"{PREFIX}{cron.name}"
            wanted = {"func": TASK, "args": repr((cron.name,)), "schedule_type": Schedule.CRON,
                      "cron": cron.schedule, "repeats": -1}
            schedule = Schedule.objects.filter(name=name).first()
            if schedule is None:
                Schedule.objects.create(name=name, **wanted)
                created.append(name)
            elif any(getattr(schedule, field) != value for field, value in wanted.items()):
                for field, value in wanted.items():
                    setattr(schedule, field, value)
                schedule.save()
                updated.append(name)
        known = {f"{PREFIX}{cron.name}" for cron in all_crons()}
        for schedule in Schedule.objects.filter(name__startswith=PREFIX).exclude(name__in=known):
            removed.append(schedule.name)
            schedule.delete()
    return {"created": created, "updated": updated, "removed": removed}


def cron_schedules_remove() -> int:
    return Schedule.objects.filter(name__startswith=PREFIX).delete()[0]
