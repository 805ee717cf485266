import uuid

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from cron.management.commands._common import cron_or_error, parse_params, render
from cron.services import Mode, Source, Trigger, cron_trigger


class Command(BaseCommand):
    help = (
        "Dispatch a cron to the queue the way its HTTP route does (same window, same dedupe), "
        "whatever its queue flag. Exits 1 if the enqueue failed."
    )

    def add_arguments(self, parser):
        parser.add_argument("name", help="the cron's name, e.g. background-jobs")
        parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE")

    def handle(self, *args, name, param, **options):
        cron = cron_or_error(name)
        trigger = Trigger(cron=cron, source=Source.COMMAND, params=parse_params(cron, param),
                          correlation_id=f"command:{uuid.uuid4()}", requested_at=timezone.now())
        outcome = cron_trigger(trigger=trigger, dispatch=True)
        self.stdout.write(render(outcome))
        if outcome.mode == Mode.DISPATCH_FAILED:
            raise CommandError(
                f"Enqueue failed ({outcome.enqueue_error}); the window is not consumed: "
                "fix the broker and run the command again."
            )
        if outcome.mode == Mode.DUPLICATE:
            self.stderr.write(f"{outcome.payload['dispatchKey']} was dispatched already; "
                              "nothing enqueued.")
