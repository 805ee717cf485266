"""What the runner reports about a run besides the ledger: metrics and log fields.

Two calls in ``ledger.runner.execute_run``: ``run_claimed`` when a worker claimed the run (its
queue wait; the run's fields on every log line until the finish), ``run_finished`` after the
attempt was recorded (counted once terminal; the log fields cleared).
"""

from ledger import metrics
from ledger.log_context import log_fields_clear, log_fields_set


def run_claimed(claim) -> None:
    metrics.run_claimed(claim)
    run = claim.run
    log_fields_set(run_id=run.pk, function=run.function, attempt=run.attempt,
                   correlation_id=run.correlation_id, dispatch_key=run.dispatch_key,
                   cron=run.cron)


def run_finished(run) -> None:
    metrics.run_finished(run)
    log_fields_clear()
