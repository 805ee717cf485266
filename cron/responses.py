"""Rendering a TriggerOutcome as CONTRACT.md's responses table."""

from django.http import JsonResponse
from django.utils import timezone

from cron.keys import iso_millis
from cron.services import Mode, TriggerOutcome
from ledger.models import RunReason, RunStatus


def outcome_response(outcome: TriggerOutcome) -> JsonResponse:
    body = {
        "success": True,
        "mode": outcome.mode.value,
        "enqueued": outcome.enqueued,
        "timestamp": iso_millis(timezone.now()),
        "dispatch": outcome.payload,
    }
    if outcome.mode == Mode.DISPATCH_ONLY:
        return JsonResponse({**body, "taskIds": outcome.task_ids}, status=202)
    if outcome.mode == Mode.DUPLICATE:
        window = outcome.window
        body["existingDispatch"] = {
            "status": window.status,
            "correlationId": window.correlation_id,
            "taskIds": list(window.task_ids),
            "updatedAt": iso_millis(window.updated_at),
        }
        return JsonResponse(body, status=200)
    if outcome.mode == Mode.DISPATCH_FAILED:
        body.update(success=False, retryable=True, enqueueError=outcome.enqueue_error)
        return JsonResponse(body, status=503)
    return _inline_response(outcome, body)


def _inline_response(outcome: TriggerOutcome, body: dict) -> JsonResponse:
    if outcome.enqueue_error:
        body["enqueueError"] = outcome.enqueue_error
    body["runs"] = [
        {"function": run.function, "runId": run.pk, "status": run.status,
         "reason": run.reason, "durationMs": run.duration_ms}
        for run in outcome.runs
    ]
    failed = [run for run in outcome.runs if run.status == RunStatus.FAILED]
    if failed:
        body.update(
            success=False,
            error="inline run failed",
            message="; ".join(f"{run.function}: {_first_line(run.error)}" for run in failed),
        )
        return JsonResponse(body, status=500)
    if any(run.reason == RunReason.LOCKED for run in outcome.runs):
        body.update(skipped=True, reason="locked")
    results = {run.function: run.result or {} for run in outcome.runs}
    merged = next(iter(results.values())) if len(results) == 1 else results
    for key, value in merged.items():
        body.setdefault(key, value)  # the contract's own keys are never overwritten
    return JsonResponse(body, status=200)


def _first_line(text: str) -> str:
    return (text or "").strip().splitlines()[0][:300] if text and text.strip() else "error"
