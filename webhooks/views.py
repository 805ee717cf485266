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
from webhooks.exceptions import WebhookBadRequest, WebhookBodyTooLarge, WebhooksError
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
    """The raw body as bytes, read from the stream (never ``request.body``/``POST``, which obey
    Django's DATA_UPLOAD_MAX_MEMORY_SIZE), never buffering more than ``limit`` + 1 bytes.

    - A declared Content-Length over the limit is refused before reading (413).
    - No Content-Length but ``Transfer-Encoding: chunked``: Django sees an empty body, so the
      server's decoded stream is read to its end when the server says it ends
      (``wsgi.input_terminated``, set by gunicorn); over the limit 413.
    - A body shorter than its Content-Length (the client stopped sending, or the server's
      read timeout fired) is a 400, never a 500.
    """
    meta = request.META
    try:
        declared = int(meta.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        raise WebhookBodyTooLarge
    chunked = (not meta.get("CONTENT_LENGTH")
               and "chunked" in meta.get("HTTP_TRANSFER_ENCODING", "").lower()
               and meta.get("wsgi.input_terminated"))
    try:
        body = _read_to_end(meta["wsgi.input"], limit + 1) if chunked else request.read(limit + 1)
    except OSError as error:  # socket timeout or reset mid-body
        raise WebhookBadRequest(f"body incomplete: {type(error).__name__}") from None
    if len(body) > limit:
        raise WebhookBodyTooLarge
    if len(body) < declared:
        raise WebhookBadRequest(f"body incomplete: {len(body)} of {declared} declared bytes")
    return body


def _read_to_end(stream, size: int) -> bytes:
    parts, remaining = [], size
    while remaining > 0:
        part = stream.read(min(remaining, 65536))
        if not part:
            break
        parts.append(part)
        remaining -= len(part)
    return b"".join(parts)
