import json

from django.core.management.base import BaseCommand
from django.utils import timezone

from cron.selectors import cron_statuses, pipeline_status
from ledger.display import duration, seconds_text, utc_seconds


class Command(BaseCommand):
    help = ("The admin's status page as a table: each cron's mode now and why, last window and "
            "run, 24 h success rate and p95 duration, queued/running/stuck runs, next window; "
            "then the webhook backlog, the sweeper and when a cluster was last seen. Times UTC.")

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="print it as JSON")

    def handle(self, *args, **options):
        now = timezone.now()
        report = {"generatedAt": now, "crons": cron_statuses(now=now),
                  "pipeline": pipeline_status(now=now)}
        if options["json"]:
            self.stdout.write(json.dumps(report, indent=2, default=_iso))
            return
        self.stdout.write(f"As of {utc_seconds(now)}")
        header = ("cron", "mode (from)", "last window", "last run", "24h ok", "p95",
                  "queued/running", "stuck", "next window")
        rows = [header] + [_row(status, now) for status in report["crons"]]
        widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
        for row in rows:
            self.stdout.write("  ".join(cell.ljust(width) for cell, width in zip(row, widths)))
        for status in report["crons"]:
            if status["lastRun"] and status["lastRun"]["error"]:
                self.stdout.write(f"{status['cron']}: last error: {status['lastRun']['error']}")
        self._pipeline(report["pipeline"])

    def _pipeline(self, pipeline: dict) -> None:
        hooks, cluster, sweeper = pipeline["webhooks"], pipeline["cluster"], pipeline["sweeper"]
        oldest = hooks["oldestDueAgeSeconds"]
        self.stdout.write(
            f"webhooks: {hooks['due']} due (oldest {seconds_text(oldest)}), "
            f"{hooks['waitingForRetry']} waiting for retry, {hooks['processing']} processing, "
            f"{hooks['failed']} failed")
        self.stdout.write(f"runs past their deadline: {pipeline['overdueRuns']}")
        self.stdout.write("sweeper: " + (f"next run {utc_seconds(sweeper['nextRunAt'])}"
                                         if sweeper["scheduled"] else "NOT SCHEDULED (migrate)"))
        self.stdout.write("cluster last seen: " + (
            f"{utc_seconds(cluster['at'])} ({seconds_text(cluster['ageSeconds'])} ago)"
            if cluster["at"] else "never"))


def _row(status: dict, now) -> tuple:
    window, run = status["lastWindow"], status["lastRun"]
    rate = status["successRate24h"]
    return (
        status["cron"],
        f"{status['mode']} ({status['modeSource']})",
        f"{window['status']} {utc_seconds(window['windowStart'])}" if window else "-",
        f"{run['status']} {duration(run['durationMs'])}" if run else "-",
        f"{rate * 100:.1f}% of {status['runs24h']}" if rate is not None else "-",
        duration(status["p95DurationMs24h"]),
        f"{status['queued']}/{status['running']}",
        str(status["overdue"]),
        utc_seconds(status["nextWindowStart"]),
    )


def _iso(value):
    return value.isoformat() if hasattr(value, "isoformat") else str(value)
