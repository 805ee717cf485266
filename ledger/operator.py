"""Writes an operator asks for (admin actions, commands): a failed run retried as a new run.
Cancelling queued runs is ``ledger.services.function_runs_cancel``."""

import logging

from ledger.models import FunctionRun, RunStatus
from ledger.services import RunRequest, function_run_create, function_run_send

logger = logging.getLogger(__name__)
RETRYABLE_STATUSES = (RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.SKIPPED)


def function_run_retry(*, run: FunctionRun, source: str, actor: str, now) -> FunctionRun | None:
    """A new run of ``run``'s function with its payload (``source`` and ``retryOf`` set),
    handed to the broker; None when ``run`` is not failed, cancelled or skipped. The old run
    stays as it ended (the ledger keeps every execution). The same dispatch key means the
    idempotency rule still holds: a window whose function succeeded meanwhile is skipped.
    A broker that refuses leaves the new run queued, for the sweeper to send."""
    if run.status not in RETRYABLE_STATUSES:
        return None
    payload = {**(run.payload or {}), "source": source, "retryOf": run.pk}
    retry = function_run_create(request=RunRequest(
        function=run.function, payload=payload, source=source, cron=run.cron,
        dispatch_key=run.dispatch_key, correlation_id=run.correlation_id,
        params=run.params or {}), now=now)
    try:
        function_run_send(run=retry, now=now)
    except Exception:
        logger.exception("retry not sent; the sweeper will send it", extra={
            "action": "run_retry_send_failed", "run_id": retry.pk})
    logger.info("run retried by an operator", extra={
        "action": "run_retried", "run_id": retry.pk, "retry_of": run.pk,
        "function": run.function, "actor": actor, "source": source,
        "correlation_id": run.correlation_id})
    return retry
