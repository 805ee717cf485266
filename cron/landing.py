"""The landing page at ``/`` and the JSON 404 for unknown paths under ``/api/``: what a new user
finds without reading the code. No login, no secrets: links and the registry's public routes."""

from django.contrib.auth.decorators import login_not_required
from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt

from cron.registry import all_crons

HEALTH_ROUTES = (
    ("/healthz", "liveness: the process answers (no database)"),
    ("/readyz", "readiness: database, migrations, broker"),
    ("/healthz/pipeline", "for uptime monitors: a cluster seen, no run stuck, webhook backlog"),
)


@login_not_required
def landing(request):
    return render(request, "cron/landing.html", {
        "crons": all_crons(),
        "health": HEALTH_ROUTES,
    })


@csrf_exempt
@login_not_required
def api_not_found(request, rest: str = ""):
    """Any path under ``/api/`` no route matched: JSON, like every other answer there."""
    return JsonResponse({"success": False, "error": "not found"}, status=404)
