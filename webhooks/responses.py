"""The webhook route's status rules, in one place (CONTRACT.md "Webhook").

| case | status |
| --- | --- |
| neither token nor signing secret configured (and unauthenticated not allowed) | 503 |
| wrong or missing credentials | 401 |
| body over WEBHOOK_MAX_BODY_BYTES | 413 |
| not JSON, no ``event.type``, a required id missing | 400 |
| stored, queued | 202 |
| stored and processed inline, or stored as ignored (no handler for the type) | 200 |
| database unavailable: not stored, the provider should retry | 503 + Retry-After |
"""

from django.http import JsonResponse

from webhooks.exceptions import (
    WebhookAuthFailed,
    WebhookBadRequest,
    WebhookBodyTooLarge,
    WebhookNotConfigured,
    WebhooksError,
)
from webhooks.services import IngestMode, IngestOutcome

RETRY_AFTER_SECONDS = 30
STATUS_BY_ERROR = (
    (WebhookNotConfigured, 503, "not-configured"),
    (WebhookAuthFailed, 401, "unauthorized"),
    (WebhookBodyTooLarge, 413, "too-large"),
    (WebhookBadRequest, 400, "bad-request"),
)


def refusal_outcome(error: WebhooksError) -> str:
    """The metrics' outcome label of a refused delivery."""
    return next(label for kind, _, label in STATUS_BY_ERROR if isinstance(error, kind))


def error_response(error: WebhooksError) -> JsonResponse:
    status = next(code for kind, code, _ in STATUS_BY_ERROR if isinstance(error, kind))
    return JsonResponse({"success": False, "error": str(error)}, status=status)


def unavailable_response() -> JsonResponse:
    response = JsonResponse({"success": False, "error": "database unavailable; retry later",
                             "retryable": True}, status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def outcome_response(outcome: IngestOutcome) -> JsonResponse:
    body = {
        "success": True,
        "mode": outcome.mode.value,
        "queued": outcome.mode == IngestMode.QUEUED,
        "eventId": outcome.event_id,
        "eventType": outcome.event_type,
        "dedupeKey": outcome.dedupe_key,
        "duplicate": outcome.duplicate,
    }
    if outcome.mode == IngestMode.QUEUED:
        return JsonResponse(body, status=202)
    if outcome.mode == IngestMode.IGNORED:
        body["ignored"] = True
    body["status"] = outcome.status
    return JsonResponse(body, status=200)
