"""The cron routes: authenticate, parse, call the dispatch service, render (CONTRACT.md)."""

import uuid

from django.contrib.auth.decorators import login_not_required
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from cron import keys
from cron.auth import CronNotConfigured, cron_request_authenticated
from cron.registry import cron_by_route
from cron.responses import outcome_response
from cron.services import Source, Trigger, cron_trigger

ALLOWED_METHODS = ("GET", "POST")


def _error(status: int, error: str, **extra) -> JsonResponse:
    return JsonResponse({"success": False, "error": error, **extra}, status=status)


@csrf_exempt
@login_not_required
def cron_view(request, route: str = ""):
    """Authenticate first, whatever the route (an unknown route says nothing to a caller
    without the secret), then find the cron, then check the method."""
    try:
        if not cron_request_authenticated(headers=request.headers):
            return _error(401, "unauthorized")
    except CronNotConfigured:
        return _error(503, "cron endpoint not configured")
    cron = cron_by_route(route)
    if cron is None:
        return _error(404, "unknown cron route")
    if request.method not in ALLOWED_METHODS:
        response = _error(405, "method not allowed; use GET or POST")
        response["Allow"] = ", ".join(ALLOWED_METHODS)
        return response
    params, unknown = parse_params(request.GET, cron.allowed_params)
    if unknown:
        allowed = ", ".join(sorted(cron.allowed_params)) or "none"
        return _error(
            400,
            f"unknown parameter(s): {', '.join(sorted(unknown))}; {cron.name} accepts: {allowed}",
            allowedParams=sorted(cron.allowed_params),
        )
    trigger = Trigger(
        cron=cron,
        source=Source.HTTP,
        params=params,
        correlation_id=correlation_id(request.headers),
        requested_at=timezone.now(),
    )
    return outcome_response(cron_trigger(trigger=trigger))


def parse_params(query, allowed: frozenset[str]) -> tuple[dict, set[str]]:
    """The run's params (last value wins, empty values dropped) and any names not allowed."""
    unknown = {name for name in query if name not in allowed}
    params = {name: query[name] for name in query if name in allowed and query[name] != ""}
    return params, unknown


def correlation_id(headers) -> str:
    for header in ("X-Correlation-Id", "X-Request-Id"):
        value = keys.correlation_id_or_none(headers.get(header))
        if value:
            return value
    return str(uuid.uuid4())
