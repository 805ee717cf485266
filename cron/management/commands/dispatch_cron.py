from django.core.management.base import BaseCommand, CommandError

from cron.management.commands._common import add_cron_arguments, command_trigger, render
from cron.services import Mode, cron_trigger


class Command(BaseCommand):
    help = (
        "Dispatch a cron to the queue the way its HTTP route does (same window, same dedupe), "
        "whatever its queue flag. Exits 1 if the enqueue failed."
    )

    def add_arguments(self, parser):
        add_cron_arguments(parser)

    def handle(self, *args, name, param, **options):
        outcome = cron_trigger(trigger=command_trigger(name, param), dispatch=True)
        self.stdout.write(render(outcome))
        if outcome.mode == Mode.DISPATCH_FAILED:
            raise CommandError(
                f"Enqueue failed ({outcome.enqueue_error}); the window is not consumed: "
                "fix the broker and run the command again."
            )
        if outcome.mode == Mode.DUPLICATE:
            self.stderr.write(f"{outcome.payload['dispatchKey']} was dispatched already; "
                              "nothing enqueued.")
