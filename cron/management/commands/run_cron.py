from django.core.management.base import BaseCommand, CommandError

from cron.management.commands._common import add_cron_arguments, command_trigger, render
from cron.services import Mode, cron_run_inline, event_payload


class Command(BaseCommand):
    help = (
        "Emergency: run a cron's functions inline now, in this process, through the ledger's "
        "runner (source 'command'). Ignores the queue flags. Exits 1 if a run failed."
    )

    def add_arguments(self, parser):
        add_cron_arguments(parser)

    def handle(self, *args, name, param, **options):
        trigger = command_trigger(name, param)
        outcome = cron_run_inline(trigger=trigger, payload=event_payload(trigger),
                                  mode=Mode.INLINE)
        self.stdout.write(render(outcome))
        failed = [run for run in outcome.runs if run.status == "failed"]
        if failed:
            names = ", ".join(f"{run.function} (run {run.pk})" for run in failed)
            raise CommandError(f"{len(failed)} run(s) failed: {names}. "
                               "See the ledger in the admin for the error.")
