"""Rendering a TriggerOutcome as CONTRACT.md's responses table."""

from django.http import JsonResponse
from django.utils import timezone

from cron.keys import iso_millis
from cron.services import Mode, TriggerOutcome
from ledger.models import RunReason, RunStatus


def outcome_response(outcome: TriggerOutcome) -> JsonResponse:
    status, body = outcome_body(outcome)
    return JsonResponse(body, status=status)


def outcome_body(outcome: TriggerOutcome) -> tuple[int, dict]:
    """CONTRACT.md's responses table: (HTTP status, JSON body)."""
    body = {
        "success": True,
        "mode": outcome.mode.value,
        "enqueued": outcome.enqueued,
        "timestamp": iso_millis(timezone.now()),
        "dispatch": outcome.payload,
    }
    if outcome.mode == Mode.DISPATCH_ONLY:
        body.update(taskIds=outcome.task_ids, runs=[_run_summary(run) for run in outcome.runs])
        if outcome.enqueued:
            return 202, body
        # The window is taken but every run was refused by its function's overlap policy
        # (an earlier run is still in progress): nothing was handed over, so no 202.
        reasons = sorted({run.reason for run in outcome.runs})
        return 200, {**body, "skipped": True, "reason": ",".join(reasons)}
    if outcome.mode == Mode.DUPLICATE:
        window = outcome.window
        body["existingDispatch"] = {
            "status": window.status,
            "correlationId": window.correlation_id,
            "taskIds": list(window.task_ids),
            "updatedAt": iso_millis(window.updated_at),
        }
        return 200, body
    if outcome.mode == Mode.PAUSED:
        return 200, body
    if outcome.mode == Mode.DISPATCH_FAILED:
        body.update(success=False, retryable=True, enqueueError=outcome.enqueue_error)
        return 503, body
    return _inline_body(outcome, body)


def _inline_body(outcome: TriggerOutcome, body: dict) -> tuple[int, dict]:
    if outcome.enqueue_error:
        body["enqueueError"] = outcome.enqueue_error
    body["runs"] = [{**_run_summary(run), "durationMs": run.duration_ms}
                    for run in outcome.runs]
    failed = [run for run in outcome.runs if run.status == RunStatus.FAILED]
    if failed:
        body.update(
            success=False,
            error="inline run failed",
            message="; ".join(f"{run.function}: {_first_line(run.error)}" for run in failed),
        )
        return 500, body
    skipped = [run for run in outcome.runs if run.status == RunStatus.SKIPPED]
    if skipped:
        locked = any(run.reason == RunReason.LOCKED for run in skipped)
        body.update(skipped=True, reason="locked" if locked else skipped[0].reason)
    results = {run.function: run.result or {} for run in outcome.runs}
    merged = next(iter(results.values())) if len(results) == 1 else results
    for key, value in merged.items():
        body.setdefault(key, value)  # the contract's own keys are never overwritten
    return 200, body


def _run_summary(run) -> dict:
    return {"function": run.function, "runId": run.pk, "status": run.status,
            "reason": run.reason}


def _first_line(text: str) -> str:
    return (text or "").strip().splitlines()[0][:300] if text and text.strip() else "error"
