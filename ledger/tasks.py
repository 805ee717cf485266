"""Entry points Django-Q calls. Module-level, primitives in, small results out."""

from django.utils import timezone

from ledger.maintenance import maintenance_run
from ledger.runner import execute_run as _execute_run


def execute_run(run_ref: int | str, function: str | None = None) -> dict | None:
    """One delivery of a run: its primary key. Tasks queued by an earlier version carry its task
    id and its function name instead; both are still accepted."""
    run = _execute_run(run_ref)
    return None if run is None else {"run": run.pk, "status": run.status}


def sweep() -> dict:
    """The sweeper's own schedule (every minute; it exists after ``migrate``): every app's
    maintenance steps (runs taken back and sent again, webhook leases rescued and due events
    drained, windows settled, old rows pruned). It belongs to no cron, so no cron's overlap
    policy or pause can stop the recovery of that cron's own runs."""
    return maintenance_run(now=timezone.now())
