"""The email webhook route: authenticate, check the size, call the ingestion service, render."""

import logging

from django.contrib.auth.decorators import login_not_required
from django.db import DatabaseError
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from ledger import metrics
from webhooks import conf
from webhooks.auth import webhook_request_authenticate
from webhooks.exceptions import WebhookBodyTooLarge, WebhooksError
from webhooks.registry import supported_event_types
from webhooks.responses import (
    error_response,
    outcome_response,
    refusal_outcome,
    unavailable_response,
)
from webhooks.services import webhook_event_ingest

logger = logging.getLogger(__name__)
ALLOWED_METHODS = ("GET", "POST")


@csrf_exempt
@login_not_required
def email_webhook_view(request):
    if request.method == "GET":
        return JsonResponse({"status": "ok", "supportedEvents": supported_event_types()})
    if request.method != "POST":
        response = JsonResponse({"success": False, "error": "method not allowed; use POST"},
                                status=405)
        response["Allow"] = ", ".join(ALLOWED_METHODS)
        return response
    body = None

    def read_body() -> bytes:
        nonlocal body
        if body is None:
            body = read_limited_body(request, conf.max_body_bytes())
        return body

    try:
        webhook_request_authenticate(headers=request.headers, query=request.GET,
                                     read_body=read_body)
        outcome = webhook_event_ingest(body=read_body(), headers=request.headers,
                                       now=timezone.now())
    except WebhooksError as error:
        metrics.webhook_received(event_type=metrics.OTHER, outcome=refusal_outcome(error))
        return error_response(error)
    except DatabaseError:
        logger.exception("webhook not stored: database unavailable",
                         extra={"action": "webhook_store_failed"})
        metrics.webhook_received(event_type=metrics.OTHER, outcome="unavailable")
        return unavailable_response()
    metrics.webhook_received(event_type=outcome.event_type, outcome=(
        "duplicate" if outcome.duplicate else outcome.mode.value))
    return outcome_response(outcome)


def read_limited_body(request, limit: int) -> bytes:
    """The body, never buffering more than ``limit`` + 1 bytes: a declared Content-Length over
    the limit is refused before reading, and a body longer than it declared is cut off."""
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        raise WebhookBodyTooLarge
    body = request.read(limit + 1)
    if len(body) > limit:
        raise WebhookBodyTooLarge
    return body
