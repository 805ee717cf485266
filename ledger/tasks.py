"""Entry points Django-Q calls. Module-level, primitives in, small results out."""

from django.utils import timezone

from ledger.runner import execute_run as _execute_run
from ledger.sweeper import ledger_sweep


def execute_run(run_ref: int | str) -> dict | None:
    """One delivery of a run: its task id, or its primary key (``ledger.services._send``)."""
    run = _execute_run(run_ref)
    return None if run is None else {"run": run.pk, "status": run.status}


def sweep() -> dict:
    """The sweeper's own schedule (every minute, made by ``sync_cron_schedules``)."""
    return ledger_sweep(now=timezone.now())
