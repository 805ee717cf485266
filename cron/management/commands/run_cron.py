import uuid

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from cron.management.commands._common import cron_or_error, parse_params, render
from cron.services import Mode, Source, Trigger, cron_run_inline, event_payload


class Command(BaseCommand):
    help = (
        "Emergency: run a cron's functions inline now, in this process, through the ledger's "
        "runner (source 'command'). Ignores the queue flags. Exits 1 if a run failed."
    )

    def add_arguments(self, parser):
        parser.add_argument("name", help="the cron's name, e.g. background-jobs")
        parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                            help="a param the cron allows; repeat for several")

    def handle(self, *args, name, param, **options):
        cron = cron_or_error(name)
        trigger = Trigger(cron=cron, source=Source.COMMAND, params=parse_params(cron, param),
                          correlation_id=f"command:{uuid.uuid4()}", requested_at=timezone.now())
        outcome = cron_run_inline(trigger=trigger, payload=event_payload(trigger),
                                  mode=Mode.INLINE)
        self.stdout.write(render(outcome))
        failed = [run for run in outcome.runs if run.status == "failed"]
        if failed:
            raise CommandError(
                f"{len(failed)} run(s) failed: " + ", ".join(f"{r.function} (run {r.pk})" for r in failed)
                + ". See the ledger in the admin for the error."
            )
