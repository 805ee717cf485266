"""Probes and metrics (CONTRACT.md "Probes and metrics"): no login, no secrets in bodies.

| route | answers |
| --- | --- |
| ``/healthz`` | liveness, the process alone: 200 |
| ``/readyz`` | database, migrations, broker, each within ``PROBE_DEADLINE_SECONDS``: 200 or 503 |
| ``/healthz/pipeline`` | a cluster seen, no run overdue, webhook backlog young: 200 or 503 |
| ``/metrics`` | Prometheus text; ``METRICS_TOKEN`` set: ``Authorization: Bearer`` required |
"""

from django.contrib.auth.decorators import login_not_required
from django.http import HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST

from cron.metrics_collector import metrics_text, metrics_token_accepted
from ledger.health import (
    check_broker,
    check_cluster,
    check_database,
    check_migrations,
    check_runs_overdue,
    healthy,
    run_checks,
)
from webhooks.health import check_webhook_backlog

READINESS = {"database": check_database, "migrations": check_migrations, "broker": check_broker}
PIPELINE = {"cluster": check_cluster, "runs": check_runs_overdue,
            "webhook_backlog": check_webhook_backlog}
PIPELINE_DEADLINE_SECONDS = 2.0


def checks_report(checks: dict, *, deadline_seconds: float | None = None) -> tuple[bool, dict]:
    """(all ok, the probe's body) for a set of checks."""
    kwargs = {} if deadline_seconds is None else {"deadline_seconds": deadline_seconds}
    results = run_checks(checks, **kwargs)
    ok = healthy(results)
    return ok, {"status": "ok" if ok else "fail",
                "checks": {name: result.as_dict() for name, result in results.items()}}


def _probe(checks: dict, **kwargs) -> JsonResponse:
    ok, body = checks_report(checks, **kwargs)
    return JsonResponse(body, status=200 if ok else 503)


@login_not_required
@never_cache
@require_GET
def healthz(request):
    return JsonResponse({"status": "ok"})


@login_not_required
@never_cache
@require_GET
def readyz(request):
    return _probe(READINESS)


@login_not_required
@never_cache
@require_GET
def pipeline(request):
    return _probe(PIPELINE, deadline_seconds=PIPELINE_DEADLINE_SECONDS)


@login_not_required
@never_cache
@require_GET
def metrics_view(request):
    if not metrics_token_accepted(request.headers.get("Authorization", "")):
        response = JsonResponse({"error": "unauthorized"}, status=401)
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(metrics_text(), content_type=CONTENT_TYPE_LATEST)
