from django.core.management.base import BaseCommand

from cron.schedules import cron_schedules_remove, cron_schedules_sync
from ledger.schedules import SWEEP_SCHEDULE_NAME, ledger_schedule_sync


class Command(BaseCommand):
    help = (
        "Create or update Django-Q schedules for every registered cron (for deployments without "
        "an outside scheduler) and the ledger sweeper's schedule (every deployment); --remove "
        "deletes the cron schedules (when an outside scheduler takes over)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--remove", action="store_true",
                            help="delete the cron schedules instead")

    def handle(self, *args, remove, **options):
        if remove:
            self.stdout.write(f"Removed {cron_schedules_remove()} cron schedule(s).")
            return
        ledger_schedule_sync()
        self.stdout.write(f"ledger sweeper: {SWEEP_SCHEDULE_NAME} every minute")
        result = cron_schedules_sync()
        for verb in ("created", "updated", "removed"):
            for name in result[verb]:
                self.stdout.write(f"{verb}: {name}")
        if not any(result.values()):
            self.stdout.write("Schedules already in sync.")
