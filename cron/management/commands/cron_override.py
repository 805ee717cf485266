import getpass

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from cron.exceptions import CronError
from cron.modes import cron_mode
from cron.overrides import MODE_CHOICES, cron_override_set
from cron.registry import get_cron


class Command(BaseCommand):
    help = ("Set or clear a cron's runtime override (pause, force-inline, use-queue; clear "
            "removes it). It beats the environment flags at once and is audited (who, when, "
            "old, new, why).")

    def add_arguments(self, parser):
        parser.add_argument("name", help="the cron's name, e.g. background-jobs")
        parser.add_argument("mode", choices=MODE_CHOICES)
        parser.add_argument("--reason", required=True,
                            help="why (kept in the audit trail; required)")
        parser.add_argument("--actor", default="",
                            help="who, for the audit trail (default: the OS user)")

    def handle(self, *args, name, mode, reason, actor, **options):
        actor = actor or f"{_os_user()} (command)"
        try:
            cron_override_set(cron=name, mode=mode, reason=reason, actor=actor,
                              now=timezone.now(), source="command")
        except CronError as error:
            raise CommandError(str(error)) from None
        decision = cron_mode(get_cron(name))
        self.stdout.write(f"{name}: mode {decision.mode.value} (from {decision.source.value}: "
                          f"{decision.why})")


def _os_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no user name in a minimal container
        return "unknown"
