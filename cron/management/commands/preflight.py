import json

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from cron.preflight import preflight_report


class Command(BaseCommand):
    help = ("Before a rollout: every flag's effective value and where it comes from, each "
            "cron's mode, and the checks (emergency fallback off, migrations applied, broker "
            "reachable, a cluster seen recently, webhook and cron auth, the sweeper scheduled, "
            "DEBUG off). Exits 1 naming each problem.")

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="print the report as JSON")

    def handle(self, *args, json: bool, **options):
        report = preflight_report(now=timezone.now())
        if json:
            self.stdout.write(_dumps(report))
        else:
            self._table(report)
        if not report["ok"]:
            raise CommandError(f"preflight failed: {', '.join(report['problems'])}")

    def _table(self, report: dict) -> None:
        self.stdout.write("Checks")
        for check in report["checks"]:
            mark = self.style.SUCCESS("ok  ") if check["ok"] else self.style.ERROR("FAIL")
            self.stdout.write(f"  {mark} {check['name']:<19} {check['detail']}")
        self.stdout.write("Crons (mode now, from)")
        for cron in report["crons"]:
            self.stdout.write(f"  {cron['cron']:<30} {cron['mode']:<14} {cron['source']:<9} "
                              f"{cron['why']}")
        self.stdout.write("Flags (effective value, from)")
        for flag in report["flags"]:
            self.stdout.write(f"  {flag['flag']:<48} {str(flag['value']):<8} {flag['source']}")


def _dumps(report: dict) -> str:
    return json.dumps(report, indent=2, default=str)
