import json

from django.core.management.base import BaseCommand

from cron.probes import PIPELINE, PIPELINE_DEADLINE_SECONDS, READINESS, checks_report


class Command(BaseCommand):
    help = ("Run the readiness checks (database, migrations, broker) and the pipeline checks "
            "(a cluster seen, no run overdue, webhook backlog young) of /readyz and "
            "/healthz/pipeline. Exits 1 if any fails.")
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", dest="as_json",
                            help="print the result as JSON")

    def handle(self, *args, as_json: bool = False, **options):
        ready_ok, ready = checks_report(READINESS)
        pipeline_ok, pipeline = checks_report(PIPELINE,
                                              deadline_seconds=PIPELINE_DEADLINE_SECONDS)
        ok = ready_ok and pipeline_ok
        if as_json:
            self.stdout.write(json.dumps({"status": "ok" if ok else "fail",
                                          "readiness": ready, "pipeline": pipeline}))
        else:
            for group in (ready, pipeline):
                for name, result in group["checks"].items():
                    mark = "ok  " if result["ok"] else "FAIL"
                    detail = f"  {result['detail']}" if result.get("detail") else ""
                    self.stdout.write(f"{mark} {name}{detail}")
        if not ok:
            raise SystemExit(1)

